# Sourced by setup-debian.sh and setup-tests.sh: LOG, and `stage WHAT CMD...`, which runs
# CMD with its output in the log, says how long it took, and on failure shows the log's
# last lines and where the rest is. $STAGE_PREFIX names the script on its lines.
LOG=${LABGEN_SETUP_LOG:-/var/log/labgen-setup.log}
: >>"$LOG"

stage() {
    local what=$1 t0=$SECONDS
    shift
    printf '%s: %s ... ' "$STAGE_PREFIX" "$what"
    echo "== $(date +%T) $what: $*" >>"$LOG"
    if "$@" >>"$LOG" 2>&1; then
        echo "done ($((SECONDS - t0)) s)"
    else
        echo "FAILED"
        echo "$STAGE_PREFIX: the last lines of $LOG:" >&2
        tail -n 25 "$LOG" >&2
        exit 1
    fi
}
