#!/usr/bin/env bash
# Everything the test suite needs on a Debian 12 machine, as root; safe to run again:
# what `labgen up` needs (scripts/setup-debian.sh), then tmux (the guide's terminal test),
# Graphviz (labgen draw), Chromium and xterm.js (the workshop and its browser tests, through
# scripts/setup-workshop.sh), and labgen again with the docs and dev extras (mkdocs, ruff,
# mypy, Playwright). Output goes to the same log as setup-debian.sh's.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-debian.sh

LOG=${LABGEN_SETUP_LOG:-/var/log/labgen-setup.log}
export DEBIAN_FRONTEND=noninteractive
started=$SECONDS
stage() {
    local what=$1 t0=$SECONDS
    shift
    printf 'setup-tests: %s ... ' "$what"
    echo "== $(date +%T) $what: $*" >>"$LOG"
    if "$@" >>"$LOG" 2>&1; then
        echo "done ($((SECONDS - t0)) s)"
    else
        echo "FAILED"
        echo "setup-tests: the last lines of $LOG:" >&2
        tail -n 25 "$LOG" >&2
        exit 1
    fi
}

need=()
for pkg in tmux graphviz; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
    stage "apt-get update" apt-get update -q
    stage "installing ${need[*]}" apt-get install -y -q --no-install-recommends "${need[@]}"
fi
# xterm.js lands in the package's vendor folder before the reinstall, whose wheel carries it.
stage "Chromium, npm and xterm.js" scripts/setup-workshop.sh .venv/bin/python
stage "labgen with its docs and dev extras" .venv/bin/python -m pip install -q '.[docs,dev]'
echo "setup-tests: done in $((SECONDS - started)) s"
