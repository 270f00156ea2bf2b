"""End to end, for real: Vagrant's docker provider, a dockerd inside, iptables, SSH.

That each step's checks fail before it and pass after it is verify's job:
test_verify.py runs `labgen verify --all` on every lab.

Every test that brings a machine up destroys it in a `finally`, pass or fail.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import labgen, labgen_json, show
from labgen.core.lab import iter_labs

pytestmark = pytest.mark.e2e

LABS = sorted(lab.name for lab in iter_labs())


@pytest.mark.parametrize("machine", LABS, indirect=True)
def test_up_run_check_destroy(machine: str, labgen_home: Path) -> None:
    """The learner's path: up, (checks not yet), run --all, checks pass."""
    code, before = labgen_json("check", machine)
    assert code == 1, before
    failing = [r for r in before["results"] if r["outcome"] != "passed"]
    assert failing, "right after up, the lab's checks must not pass"
    assert all(r["step"] for r in failing)

    run = labgen("run", machine, "--all")
    assert run.returncode == 0, show(run)

    code, after = labgen_json("check", machine)
    assert code == 0, json.dumps(after, indent=2)
    assert after["results"] and all(r["outcome"] == "passed" for r in after["results"])

    code, rows = labgen_json("status")
    assert code == 0
    assert [(r["instance"], r["state"]) for r in rows] == [(machine, "running")]


@pytest.mark.parametrize("machine", ["port-forwarding"], indirect=True)
def test_second_up_reuses_the_running_machine(machine: str, labgen_home: Path) -> None:
    state = json.loads((labgen_home / "instances" / machine / "instance.json").read_text())
    again = labgen("up", machine)
    assert again.returncode == 0, show(again)
    assert "already" in again.stdout + again.stderr
    state_after = json.loads((labgen_home / "instances" / machine / "instance.json").read_text())
    assert state_after["created"] == state["created"]


@pytest.mark.parametrize("machine", ["port-forwarding"], indirect=True)
def test_machine_matches_the_seed_and_trusts_only_its_own_key(
    machine: str, labgen_home: Path
) -> None:
    """docker0 is 172.17.0.1/16 whatever the host uses; the insecure Vagrant key is refused."""
    addr = labgen("ssh", machine, "--", "ip", "-4", "-o", "addr", "show", "docker0")
    assert addr.returncode == 0, show(addr)
    assert "172.17.0.1/16" in addr.stdout

    nat = labgen("ssh", machine, "--", "sudo", "iptables", "-t", "nat", "-S")
    assert nat.returncode == 0, show(nat)
    chains = [line.split()[1] for line in nat.stdout.splitlines() if line[:2] in ("-P", "-N")]
    assert chains == ["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING", "DOCKER"]

    keys = labgen("ssh", machine, "--", "cat", ".ssh/authorized_keys")
    assert keys.returncode == 0, show(keys)
    own = (labgen_home / "instances" / machine / "keys" / "id_ed25519.pub").read_text().split()
    assert keys.stdout.split()[:2] == own[:2]
    assert "vagrant insecure public key" not in keys.stdout

    exit_status = labgen("ssh", machine, "--", "exit 7")  # one shell line, as ssh runs it
    assert exit_status.returncode == 7


def test_a_lab_changed_after_up_is_flagged(tmp_path: Path, bring_up: Callable[[str], str]) -> None:
    """Editing a lab after its machine was made: check still runs, and says so."""
    made = labgen("new", "edited", "--dir", str(tmp_path))
    assert made.returncode == 0, show(made)
    bring_up(str(tmp_path / "edited"))
    quiet = labgen("check", "edited")
    assert "changed since" not in quiet.stderr, show(quiet)

    checks = tmp_path / "edited" / "checks.py"
    checks.write_text(checks.read_text() + "\n# an edit after up\n")
    warned = labgen("check", "edited")
    assert "lab 'edited' changed since machine 'edited' was made" in warned.stderr, show(warned)
    assert warned.returncode == 1  # its start-container step has not run: not there yet
