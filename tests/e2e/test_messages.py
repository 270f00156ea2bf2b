"""Messages that need a machine (issue 21 item 5): a verify that fails with --destroy
on-success keeps its machine, and says so with its name and how to get in and remove it."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import labgen, labgen_json, show

pytestmark = pytest.mark.e2e

LABS = Path(__file__).parent / "labs"


def test_a_failed_verify_on_success_says_it_kept_the_machine(labgen_home: Path) -> None:
    machine = "verify-20-10-failing-step"
    try:
        proc = labgen("verify", str(LABS / "failing-step"), "--destroy", "on-success")
        assert proc.returncode == 1, show(proc)
        assert f"kept the machine {machine} (--destroy on-success)" in proc.stderr, show(proc)
        kept = next(line for line in proc.stdout.splitlines() if "kept machine" in line)
        assert kept.startswith(f"kept machine {machine} (--destroy on-success):"), kept
        for how in (f"`labgen ssh {machine}`", f"`labgen destroy {machine}`"):
            assert how in kept, kept
        # It is there, as the failed step left it: the first step's marker, and the
        # machine at the step before the one that failed.
        code, machines = labgen_json("status")
        assert code == 0 and [m["instance"] for m in machines] == [machine], machines
        assert machines[0]["state"] == "running" and machines[0]["steps_run"] == ["make-marker"]
        inside = labgen("ssh", machine, "--", "test", "-e", "/tmp/labgen-marker")
        assert inside.returncode == 0, show(inside)
    finally:
        destroyed = labgen("destroy", "--all")
        assert destroyed.returncode == 0, show(destroyed)
    code, machines = labgen_json("status")
    assert code == 0 and machines == [], machines
