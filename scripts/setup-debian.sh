#!/usr/bin/env bash
# Sets up labgen on a Debian 12 machine, as root, and can be run again safely:
#   - Debian packages: Docker, Vagrant, debootstrap, an SSH client, Python's venv;
#   - a running Docker daemon (systemd's, or a dockerd started here where there is no systemd);
#   - labgen itself, in .venv (pip install ., not editable);
#   - the docker provider's base image, built from Debian packages (about a minute, once).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "setup-debian.sh: run it as root (it installs Debian packages and builds an image)" >&2
    exit 2
fi

export DEBIAN_FRONTEND=noninteractive
need=()
for pkg in docker.io vagrant debootstrap openssh-client python3 python3-venv iptables ca-certificates \
        tmux graphviz; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
    echo "setup: installing ${need[*]}"
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${need[@]}"
fi

if ! docker info >/dev/null 2>&1; then
    if [ -d /run/systemd/system ]; then
        systemctl start docker
    else
        echo "setup: starting dockerd (log: /var/log/dockerd.log)"
        setsid nohup dockerd >/var/log/dockerd.log 2>&1 </dev/null &
    fi
    for _ in $(seq 60); do
        docker info >/dev/null 2>&1 && break
        sleep 1
    done
    docker info >/dev/null 2>&1 || { echo "setup: dockerd did not start; see /var/log/dockerd.log" >&2; exit 1; }
fi

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
# Chromium, and xterm.js into the package's vendor folder: before `pip install .`,
# whose wheel carries it.
scripts/setup-workshop.sh .venv/bin/python
.venv/bin/python -m pip install -q '.[docs]'  # the docs extra builds the documentation site

export VAGRANT_CHECKPOINT_DISABLE=1
.venv/bin/labgen box build
echo "setup: done; labgen is .venv/bin/labgen"
