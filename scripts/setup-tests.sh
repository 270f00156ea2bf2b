#!/usr/bin/env bash
# Everything the test suite needs on a Debian 12 machine, as root; safe to run again:
# what `labgen up` needs (scripts/setup-debian.sh), then tmux (the guide's terminal test),
# Graphviz (labgen draw), Chromium and xterm.js (the workshop and its browser tests, through
# scripts/setup-workshop.sh), and labgen again with the docs and dev extras (mkdocs, ruff,
# mypy, Playwright). Output goes to the same log as setup-debian.sh's.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-debian.sh

export DEBIAN_FRONTEND=noninteractive
STAGE_PREFIX=setup-tests
. scripts/setup-stage.sh
started=$SECONDS

need=()
for pkg in tmux graphviz; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
    stage "apt-get update" apt-get -o DPkg::Lock::Timeout=600 update -q
    stage "installing ${need[*]}" apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${need[@]}"
fi
# xterm.js lands in the package's vendor folder before the reinstall, whose build
# (hatch_build.py) then takes it from there, as it matches package-lock.json, without npm.
stage "Chromium, npm and xterm.js" scripts/setup-workshop.sh .venv/bin/python
stage "labgen with its docs and dev extras" .venv/bin/python -m pip install -q '.[docs,dev]'
echo "setup-tests: done in $((SECONDS - started)) s"
