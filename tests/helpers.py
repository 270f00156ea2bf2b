"""Running `labgen` the way a user does: a child process, its output and exit status."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

# Every labgen home a test used, and those of tests that bring up machines: the leak
# check looks for containers and networks of all, and for instance dirs of the latter
# (unit tests make fake instance dirs on purpose, to test how labgen reads them).
# Here, not in a conftest: tests/e2e/conftest.py would shadow that module's name.
HOMES: list[Path] = []
MACHINE_HOMES: list[Path] = []


def labgen(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """`labgen ARGS` in a child process, with this test's LABGEN_HOME."""
    return subprocess.run(
        [sys.executable, "-m", "labgen", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dict(os.environ),
        stdin=subprocess.DEVNULL,
    )


def labgen_json(*args: str) -> tuple[int, Any]:
    proc = labgen(*args, "--json")
    assert proc.stdout.strip(), f"no JSON from labgen {' '.join(args)}: {proc.stderr}"
    return proc.returncode, json.loads(proc.stdout)


def show(proc: subprocess.CompletedProcess[str]) -> str:
    return f"exit {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"


# The rules `docker run -p 5000:5000` adds for the first container (Docker 20.10), as
# the network-state snapshot names them: "<table> <chain>: <rule>".
PUBLISH_DNAT = (
    "nat DOCKER: -A DOCKER ! -i docker0 -p tcp -m tcp --dport 5000 "
    "-j DNAT --to-destination 172.17.0.2:5000"
)
PUBLISH_MASQUERADE = (
    "nat POSTROUTING: -A POSTROUTING -s 172.17.0.2/32 -d 172.17.0.2/32 "
    "-p tcp -m tcp --dport 5000 -j MASQUERADE"
)
PUBLISH_ACCEPT = (
    "filter DOCKER: -A DOCKER -d 172.17.0.2/32 ! -i docker0 -o docker0 "
    "-p tcp -m tcp --dport 5000 -j ACCEPT"
)


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Debian's Chromium for the browser tests, with what this host's closed network needs
# (the machine notes): no background calls home.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def launch_chromium(pw: Any, folder: Path, **options: Any) -> Any:
    """Debian's headless Chromium with a fresh profile under `folder` (a Playwright
    persistent context, 1280x1000 unless `options` say otherwise)."""
    settings: dict[str, Any] = {"viewport": {"width": 1280, "height": 1000}, **options}
    return pw.chromium.launch_persistent_context(
        tempfile.mkdtemp(prefix="chromium-", dir=folder),
        executable_path=CHROMIUM,
        args=CHROMIUM_FLAGS,
        headless=True,
        **settings,
    )
