#!/bin/sh
# What `labgen workshop` and its browser tests need on a fresh Debian 12 machine (as root):
# Chromium for the browser tests, npm for the terminal front-end, and xterm.js itself.
#
# xterm.js (the npm registry's @xterm/xterm and @xterm/addon-fit, at the versions and
# integrity hashes of package-lock.json) is installed by `npm ci` into the package's
# gitignored vendor folder, never fetched by a page from a CDN and never copied into the
# repository: the attendee page must work with no internet, and Debian's own libjs-xterm is
# the old 3.8. hatch_build.py does it, the build hook that puts the same files into wheels
# and sdists: one lock, one list of files, for checkouts and packages alike.
#
# Usage: scripts/setup-workshop.sh [PYTHON]   (PYTHON: the venv's, for Playwright)
set -eu

REPO=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${1:-"$REPO/.venv/bin/python"}

export DEBIAN_FRONTEND=noninteractive
missing=""
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
# A host with NodeSource's nodejs already has npm (and Debian's npm conflicts with it).
command -v npm >/dev/null 2>&1 || missing="$missing npm"
if [ -n "$missing" ]; then
    apt-get -o DPkg::Lock::Timeout=600 update -q
    # shellcheck disable=SC2086  # a list of package names
    apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends $missing
fi

# npm ci installs into a scratch folder; only the files the pages load (and the licences)
# are copied into the vendor folder, with their provenance (hatch_build.py says which).
python3 "$REPO/hatch_build.py"

# The server and the browser tests' Python side (the venv's, when there is one).
if [ -x "$PYTHON" ]; then
    "$PYTHON" -m pip install -q starlette 'uvicorn[standard]' playwright
fi
