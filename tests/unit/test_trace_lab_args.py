"""`labgen-lab trace`'s command line (argparse), run as the lab machine runs it: a bare
python3 on the modules render.py ships, with the exit statuses its help promises."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from labgen.inmachine import trace_lab
from labgen.machine import render


def labgen_lab_trace(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`labgen-lab trace ARGS` as labgen-lab.sh runs it: `python3 -m labgen.trace_lab`."""
    package = tmp_path / "labgen"
    package.mkdir(exist_ok=True)
    (package / "__init__.py").write_text("")
    source = Path(trace_lab.__file__).parent
    for module in [m.name for m in render.in_machine_modules() if m.name.startswith("trace")]:
        (package / module).write_text((source / module).read_text())
    return subprocess.run(
        [sys.executable, "-S", "-m", "labgen.trace_lab", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )


@pytest.mark.parametrize("args", [["--help"], ["-h"], ["--packets", "--help"], ["--json", "-h"]])
def test_help_exits_0(tmp_path: Path, args: list[str]) -> None:
    """Regression: `labgen-lab trace --packets --help` exited 1 (an unknown command)."""
    proc = labgen_lab_trace(tmp_path, *args)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: labgen-lab trace")
    assert "--packets" in proc.stdout and "exit status" in proc.stdout


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["curl", "x"], "the command goes after --"),
        (["--pack", "--", "true"], "unknown option --pack"),
        (["--packets"], "which command?"),
    ],
)
def test_bad_usage_exits_2(tmp_path: Path, args: list[str], says: str) -> None:
    proc = labgen_lab_trace(tmp_path, *args)
    assert proc.returncode == 2, proc.stderr
    assert "labgen-lab trace: error: " in proc.stderr and says in proc.stderr
    assert proc.stdout == ""


def test_the_command_keeps_its_own_options() -> None:
    """After --, `--help` and a second `--` are the command's, not the trace's."""
    assert trace_lab.parse_args(["--json", "--", "grep", "--", "--help", "f"]) == (
        "grep -- --help f",
        False,
        True,
    )
