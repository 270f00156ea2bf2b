#!/usr/bin/env bash
# Sets up what `labgen up` needs on a Debian 12 machine, as root; safe to run again:
#   - Debian packages: Docker, Vagrant, debootstrap, an SSH client, Python's venv, iptables,
#     and npm where there is none (building labgen's package installs its terminal
#     front-end, xterm.js, with `npm ci`: hatch_build.py);
#   - a running Docker daemon (systemd's, or a dockerd started here where there is no systemd);
#   - labgen itself, in .venv (pip install ., not editable);
#   - the docker provider's base image, built from Debian packages (about a minute, once).
# It prints one line per stage; apt's, pip's and debootstrap's own output go to the log it
# names ($LABGEN_SETUP_LOG, default /var/log/labgen-setup.log), whose tail it shows on failure.
# The tests need more (Chromium, xterm.js, the docs and dev extras): scripts/setup-tests.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "setup-debian.sh: run it as root (it installs Debian packages and builds an image)" >&2
    exit 2
fi

export DEBIAN_FRONTEND=noninteractive VAGRANT_CHECKPOINT_DISABLE=1
STAGE_PREFIX=setup
. scripts/setup-stage.sh
started=$SECONDS

install_labgen() {
    [ -x .venv/bin/python ] || python3 -m venv .venv
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q .
}
# pip needs nothing apt installs here (python3 and its venv come with Debian), so labgen is
# installed while apt works: the two were a third of the setup's time one after the other.
# Where npm is missing the build needs apt's first, so labgen waits for it.
pip_pid=""
start_pip() {
    echo "== $(date +%T) labgen into .venv (in the background)" >>"$LOG"
    install_labgen >>"$LOG.pip" 2>&1 &
    pip_pid=$!
}
command -v npm >/dev/null 2>&1 && start_pip

need=()
for pkg in docker.io vagrant debootstrap openssh-client python3 python3-venv iptables ca-certificates; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' || need+=("$pkg")
done
# A host with NodeSource's nodejs already has npm (and Debian's npm conflicts with it).
command -v npm >/dev/null 2>&1 || need+=(npm)
if [ ${#need[@]} -gt 0 ]; then
    stage "apt-get update" apt-get -o DPkg::Lock::Timeout=600 update -q
    stage "installing ${need[*]}" apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${need[@]}"
fi
[ -n "$pip_pid" ] || start_pip

start_dockerd() {
    if [ -d /run/systemd/system ]; then
        systemctl start docker
    else
        setsid nohup dockerd >/var/log/dockerd.log 2>&1 </dev/null &
    fi
    for _ in $(seq 60); do
        docker info >/dev/null 2>&1 && return 0
        sleep 1
    done
    echo "dockerd did not start; see /var/log/dockerd.log"
    return 1
}
if ! docker info >/dev/null 2>&1; then
    stage "starting dockerd (its log: /var/log/dockerd.log)" start_dockerd
fi

wait_for_pip() {
    local status=0
    wait "$pip_pid" || status=$?
    cat "$LOG.pip" && rm -f "$LOG.pip"
    return "$status"
}
stage "labgen into .venv" wait_for_pip
stage "the base image of the default Docker engine, from Debian packages" .venv/bin/labgen box build
echo "setup: done in $((SECONDS - started)) s; labgen is .venv/bin/labgen (the log: $LOG)"
