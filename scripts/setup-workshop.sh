#!/bin/sh
# What `labgen workshop` and its browser tests need on a fresh Debian 12 machine (as root):
# Chromium for the browser tests, npm for the terminal front-end, and xterm.js itself.
#
# xterm.js (the npm registry's @xterm/xterm 6.x, and @xterm/addon-fit) is installed here
# into the package's gitignored vendor folder, never fetched by a page from a CDN and
# never copied into the repository: the attendee page must work with no internet, and
# Debian's own libjs-xterm is the old 3.8.
#
# Usage: scripts/setup-workshop.sh [PYTHON]   (PYTHON: the venv's, for Playwright)
set -eu

REPO=$(cd "$(dirname "$0")/.." && pwd)
VENDOR="$REPO/generator/labgen/workshop/static/vendor"
PYTHON=${1:-"$REPO/.venv/bin/python"}
XTERM="@xterm/xterm@6"
FIT="@xterm/addon-fit@0.11"

export DEBIAN_FRONTEND=noninteractive
missing=""
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
# A host with NodeSource's nodejs already has npm (and Debian's npm conflicts with it).
command -v npm >/dev/null 2>&1 || missing="$missing npm"
if [ -n "$missing" ]; then
    apt-get update -q
    # shellcheck disable=SC2086  # a list of package names
    apt-get install -y -q --no-install-recommends $missing
fi

# npm installs into a scratch prefix; only the three files the pages load (and the
# licence) are copied into the vendor folder, so the wheel carries no node_modules.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
npm install --prefix "$work" --no-audit --no-fund --no-save --loglevel=error "$XTERM" "$FIT"
mkdir -p "$VENDOR"
cp "$work/node_modules/@xterm/xterm/lib/xterm.js" \
   "$work/node_modules/@xterm/xterm/css/xterm.css" \
   "$work/node_modules/@xterm/addon-fit/lib/addon-fit.js" "$VENDOR/"
cp "$work/node_modules/@xterm/xterm/LICENSE" "$VENDOR/LICENSE.xterm"
node -e 'const p=require(process.argv[1]);console.log(p.name+" "+p.version)' \
    "$work/node_modules/@xterm/xterm/package.json" > "$VENDOR/VERSION"
echo "xterm.js: $(cat "$VENDOR/VERSION") in $VENDOR"

# The server and the browser tests' Python side (the venv's, when there is one).
if [ -x "$PYTHON" ]; then
    "$PYTHON" -m pip install -q starlette 'uvicorn[standard]' playwright
fi
