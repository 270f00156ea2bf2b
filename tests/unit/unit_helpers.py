"""Helpers shared by the unit tests (imported by name; pytest puts this folder on sys.path)."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labgen.machine import providers
from labgen.machine.providers.docker import DockerSettings

UNIT = Path(__file__).resolve().parent
REPO = UNIT.parent.parent
BROKEN_LABS = UNIT / "broken_labs"

# Resolved when the tests are collected, before any test changes PATH.
ORIGINAL_PATH = os.environ.get("PATH", "")
REAL_VAGRANT = shutil.which("vagrant")
REAL_RUBY = shutil.which("ruby")
GUARDED_TOOLS = ("vagrant", "docker", "VBoxManage", "virsh", "ssh")

# The `render_lab` fixture: render_lab(lab, instance="unit", docker=None) -> rendered dir.
RenderFn = Callable[..., Path]


def fake_tool(path: Path, log: Path, exit_code: int, stdout: str = "", listing: str = "") -> None:
    """A shell script at `path` that appends its name and arguments to `log`; arguments
    matching `listing` (a shell case pattern) answer an empty listing with success."""
    lines = ["#!/bin/sh", f'printf "%s\\n" "$(basename "$0") $*" >> {shlex.quote(str(log))}']
    if listing:
        lines.append(f'case "$*" in {listing}) exit 0 ;; esac')
    if stdout:
        lines.append(f"printf '%s\\n' {shlex.quote(stdout)}")
    if exit_code:
        lines.append('echo "labgen unit tests: $(basename "$0") must not run here" >&2')
    lines.append(f"exit {exit_code}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    path.chmod(0o755)


@dataclass(frozen=True)
class Outcome:
    """What a user sees of one `labgen` run."""

    returncode: int
    stdout: str
    stderr: str


def run_labgen(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> Outcome:
    """`labgen ARGS` in a child process, as a user runs it (wide terminal, no colour)."""
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from labgen.cli.main import main; sys.exit(main(prog_name='labgen'))",
            *args,
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "250", "NO_COLOR": "1", "TERM": "dumb", **(env or {})},
        cwd=cwd,
        timeout=120,
    )
    return Outcome(proc.returncode, proc.stdout, proc.stderr)


def docker_settings(**overrides: Any) -> dict[str, object]:
    """Every provider's settings for its block, the docker block's host facts chosen by
    hand (no Docker is asked), the others as labgen computes them (they ask no host)."""
    values: dict[str, Any] = {
        "image": "labgen/base:unit-test",
        "network": "labgen-unit-abc123",
        "subnet": "172.30.7.0/24",
        "ssh_port": 2299,
        "privileged": False,
        "nameservers": ["192.0.2.53", "2001:db8::53"],
    }
    values.update(overrides)
    return {
        name: DockerSettings(**values)
        if name == "docker"
        else providers.get(name).settings("unit", live=False, others=())
        for name in providers.names()
    }


def instances_left(home: Path) -> list[str]:
    """Everything under LABGEN_HOME/instances, hidden render directories included."""
    root = home / "instances"
    return sorted(p.name for p in root.iterdir()) if root.is_dir() else []


def bundled_lab_names() -> list[str]:
    """The lab folders shipped in labs/ (found on disk, not from labgen's own listing)."""
    return sorted(p.name for p in (REPO / "labs").iterdir() if (p / "lab.yaml").is_file())


def invoke_labgen(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> Outcome:
    """`labgen ARGS` in this process (click's CliRunner): fast, same exit and streams.

    An exception that escapes the CLI is what a user would see as a traceback, so it
    is rendered into stderr as one.
    """
    from click.testing import CliRunner
    from labgen.cli import main as cli

    old = os.getcwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        result = CliRunner().invoke(cli.main, list(args), prog_name="labgen", env=env)
    finally:
        os.chdir(old)
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        assert result.exc_info is not None
        stderr += "Traceback (most recent call last):\n" + "".join(
            traceback.format_exception(*result.exc_info)
        )
    return Outcome(result.exit_code, result.stdout, stderr)
