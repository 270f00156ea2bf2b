"""Issue 14 on real machines: checks that never ran are never a pass; verify finds what
lint finds before any machine starts; `labgen ssh LAB -- CMD` behaves as ssh does."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import labgen, show

pytestmark = pytest.mark.e2e

LABS = Path(__file__).parent / "labs"

GOOD_CHECKS = """\
import pytest


@pytest.mark.step("make-marker")
def test_marker_exists(host):
    \"\"\"the step made /tmp/labgen-marker\"\"\"
    assert host.file("/tmp/labgen-marker").exists
"""
NO_IMPORT = "import no_such_module\n" + GOOD_CHECKS
SYNTAX_ERROR = GOOD_CHECKS.replace(".exists\n", ".exists(\n")


def small_lab(parent: Path, name: str, checks: str) -> Path:
    """A one-step lab with busybox, whose checks.py is `checks`."""
    folder = parent / name
    shutil.copytree(LABS / "checks-do-not-import", folder)
    lab_file = folder / "lab.yaml"
    text = lab_file.read_text(encoding="utf-8")
    text = text.replace("name: checks-do-not-import", f"name: {name}")
    text = text.replace(
        'engine: {version: "20.10"}', 'engine: {version: "20.10"}\nimages: [busybox]'
    )
    lab_file.write_text(text, encoding="utf-8")
    (folder / "checks.py").write_text(checks, encoding="utf-8")
    return folder


def instances_left(labgen_home: Path) -> list[str]:
    instances = labgen_home / "instances"
    return sorted(p.name for p in instances.iterdir()) if instances.is_dir() else []


def labgen_containers(labgen_home: Path) -> list[str]:
    """Containers of this test's labgen home, running or not."""
    from labgen.core import resources

    assert resources.labgen_home() == labgen_home.resolve()
    tag = resources.home_tag()
    proc = subprocess.run(
        ["docker", "ps", "-a", "-q", "--filter", f"label=org.labgen.home={tag}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return proc.stdout.split()


# --- item 1 -----------------------------------------------------------------------------


def test_checks_that_do_not_load_fail_check(tmp_path: Path, bring_up: Callable[[str], str]) -> None:
    """`labgen check` of a machine whose checks.py does not import, or does not parse:
    exit 1, saying the checks did not run; --json has ok false."""
    folder = small_lab(tmp_path, "hardening-check", GOOD_CHECKS)
    bring_up(str(folder))
    control = labgen("check", "hardening-check")
    assert control.returncode == 1, show(control)  # the step has not run: not there yet
    assert "did not run" not in control.stdout

    for broken, error in ((NO_IMPORT, "no_such_module"), (SYNTAX_ERROR, "never closed")):
        (folder / "checks.py").write_text(broken, encoding="utf-8")
        proc = labgen("check", "hardening-check")
        assert proc.returncode == 1, show(proc)
        assert "the checks did not run" in proc.stdout, show(proc)
        assert error in proc.stdout
        assert "no checks apply" not in proc.stdout
        assert "Traceback (most recent call last)" not in proc.stderr

        as_json = labgen("check", "hardening-check", "--json")
        assert as_json.returncode == 1, show(as_json)
        data = json.loads(as_json.stdout)
        assert data["ok"] is False and data["results"] == []
        assert any(error in p for p in data["problems"]), data


@pytest.mark.parametrize("checks", [NO_IMPORT, SYNTAX_ERROR], ids=["import", "syntax"])
def test_verify_of_checks_that_do_not_load_starts_nothing(
    tmp_path: Path, labgen_home: Path, checks: str
) -> None:
    """Lint runs first in verify: exit 2, the file and line named, never PASSED, no machine."""
    folder = small_lab(tmp_path, "hardening-verify", checks)
    proc = labgen("verify", str(folder))
    assert proc.returncode == 2, show(proc)
    assert "PASSED" not in proc.stdout
    assert f"{folder / 'checks.py'}:" in proc.stderr, show(proc)
    assert "Traceback" not in proc.stderr
    assert instances_left(labgen_home) == []
    assert labgen_containers(labgen_home) == []

    lint = labgen("lint", str(folder))
    assert lint.returncode == 2, show(lint)


# --- item 8 -----------------------------------------------------------------------------


def test_verify_of_a_check_naming_a_missing_step_exits_2_at_once(labgen_home: Path) -> None:
    folder = LABS / "check-names-missing-step"
    started = time.monotonic()
    proc = labgen("verify", str(folder))
    elapsed = time.monotonic() - started
    assert proc.returncode == 2, show(proc)
    assert "'no-such-step'" in proc.stderr and f"{folder / 'checks.py'}:10:" in proc.stderr
    assert elapsed < 5, f"verify took {elapsed:.1f} s to refuse"
    assert instances_left(labgen_home) == []
    assert labgen_containers(labgen_home) == []


# --- item 10: labgen ssh LAB -- CMD -----------------------------------------------------


def test_ssh_command_line_and_terminal(tmp_path: Path, bring_up: Callable[[str], str]) -> None:
    folder = small_lab(tmp_path, "hardening-ssh", GOOD_CHECKS)
    bring_up(str(folder))

    # One command line through the remote shell, as with ssh.
    pipe = labgen("ssh", "hardening-ssh", "--", "sudo iptables -t nat -S | grep -c '^-N DOCKER'")
    assert pipe.returncode == 0, show(pipe)
    assert pipe.stdout.strip() == "1"
    words = labgen("ssh", "hardening-ssh", "--", "echo", "a", "|", "tr", "a", "b")
    assert words.stdout.strip() == "b", show(words)
    status = labgen("ssh", "hardening-ssh", "--", "exit 7")
    assert status.returncode == 7, show(status)

    # No terminal here: none there (as ssh without -t), and stdin reaches the command.
    no_tty = labgen("ssh", "hardening-ssh", "--", "tty")
    assert no_tty.returncode == 1 and no_tty.stdout.strip() == "not a tty", show(no_tty)
    piped = subprocess.run(
        [sys.executable, "-m", "labgen", "ssh", "hardening-ssh", "--", "wc -l"],
        input="one\ntwo\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert piped.stdout.strip() == "2", piped

    # A terminal here: a pseudo-terminal there, so `docker run -it` works.
    controller, terminal = os.openpty()
    try:
        interactive = subprocess.run(
            [
                sys.executable,
                "-m",
                "labgen",
                "ssh",
                "hardening-ssh",
                "--",
                "tty && docker run -it --rm busybox sh -c 'tty && echo inside'",
            ],
            stdin=terminal,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        os.close(terminal)
        os.close(controller)
    assert interactive.returncode == 0, interactive
    lines = interactive.stdout.split()
    assert lines[0].startswith("/dev/pts/") and lines[-1] == "inside", interactive
    assert "the input device is not a TTY" not in interactive.stdout + interactive.stderr
