"""Never half-made: `up` survives restarts, kills, races, Ctrl-C and orphans (real machines).

Each test ends with nothing of its machines left: no container, network or instance dir
(the leak check at the end of the suite looks again).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import labgen, labgen_json, show
from labgen.core import resources

pytestmark = pytest.mark.e2e


def docker_ids(kind: str, instance: str) -> list[str]:
    """Containers or networks of `instance` under this test's labgen home, by label."""
    ls = ["ps", "-a"] if kind == "container" else ["network", "ls"]
    labels = [
        f"label=org.labgen.home={resources.home_tag()}",
        f"label=org.labgen.instance={instance}",
    ]
    args = ["docker", *ls, "-q", *(a for label in labels for a in ("--filter", label))]
    return subprocess.run(args, capture_output=True, text=True, check=True).stdout.split()


def nothing_left(home: Path, instance: str) -> list[str]:
    left = [f"container {c}" for c in docker_ids("container", instance)]
    left += [f"network {n}" for n in docker_ids("network", instance)]
    if (home / "instances" / instance).exists():
        left.append("instance dir")
    left += [f"process {pid} working in {cwd}" for pid, cwd in processes_under(home)]
    return left


def processes_under(home: Path) -> list[tuple[str, str]]:
    """Processes whose working directory is under `home` (a Vagrant labgen left running)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cwd = os.readlink(proc / "cwd")
        except OSError:
            continue
        if proc.name.isdigit() and cwd.startswith(str(home)):
            found.append((proc.name, cwd))
    return found


@pytest.mark.parametrize("how", ["stop", "kill"])
def test_a_stopped_or_killed_machine_comes_back_with_docker(
    bring_up: Callable[..., str], how: str
) -> None:
    """`docker stop`/`kill` of the machine, then `labgen up`: started and provisioned again,
    its dockerd runs, the lab's images are back, the steps run again from the start."""
    lab = bring_up("bridge")
    assert labgen("run", lab, "start-container").returncode == 0
    subprocess.run(["docker", how, resources.machine_id(lab)], check=True, capture_output=True)
    code, rows = labgen_json("status")
    assert rows[0]["state"] != "running", rows

    again = labgen("up", lab)
    assert again.returncode == 0, show(again)
    assert "provisioning again" in again.stderr
    code, rows = labgen_json("status")
    assert rows[0]["state"] == "running" and rows[0]["steps_run"] == [], rows
    run = labgen("run", lab, "--all")
    assert run.returncode == 0, show(run)
    assert labgen("check", lab).returncode == 0


def test_a_dead_dockerd_inside_is_seen_and_mended(bring_up: Callable[..., str]) -> None:
    lab = bring_up("bridge")
    labgen("ssh", lab, "--", "sudo pkill -x dockerd; while pgrep -x dockerd; do sleep 0.1; done")
    code, rows = labgen_json("status")
    assert rows[0]["state"] == "running, but its dockerd does not answer", rows
    again = labgen("up", lab)
    assert again.returncode == 0, show(again)
    assert "provisioning it again" in again.stderr
    assert labgen("ssh", lab, "--", "docker info >/dev/null").returncode == 0


def test_two_ups_of_one_lab_at_once(labgen_home: Path) -> None:
    """One wins; the other says the machine is busy (exit 2); nothing is duplicated."""
    env = dict(os.environ)
    cmd = [sys.executable, "-m", "labgen", "up", "netns"]
    try:
        procs = [
            subprocess.Popen(
                cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
            for _ in range(2)
        ]
        outs = [(p.wait(timeout=600), p.stderr.read() if p.stderr else "") for p in procs]
        codes = sorted(code for code, _ in outs)
        assert codes == [0, 2], outs
        loser = next(err for code, err in outs if code == 2)
        assert "is busy: another labgen" in loser
        assert len(docker_ids("network", "netns")) == 1
        assert len(docker_ids("container", "netns")) == 1
    finally:
        destroyed = labgen("destroy", "--all")
        assert destroyed.returncode == 0, show(destroyed)
    assert nothing_left(labgen_home, "netns") == []


# Moments of a real up, by the progress line after which the signal is sent: the
# render, Vagrant starting, the container made, provisioning under way.
MOMENTS = [
    "rendered ",
    "vagrant up --provider",
    "Container created",
    "Running provisioner: install",
]


@pytest.mark.parametrize("moment", MOMENTS)
def test_ctrl_c_during_up_leaves_nothing(labgen_home: Path, moment: str) -> None:
    """SIGINT to labgen at moments of a real up: exit 130, and no container, network,
    instance dir or Vagrant process left; the next up works."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "labgen", "up", "bridge"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        seen = []
        for line in proc.stderr:
            seen.append(line)
            if moment in line:
                proc.send_signal(signal.SIGINT)
                break
        rest = proc.stderr.read()
        code = proc.wait(timeout=180)
        err = "".join(seen) + rest
        assert any(moment in line for line in seen), err
        assert code == 130, err
        assert "Traceback" not in err and "interrupted" in err
        assert nothing_left(labgen_home, "bridge") == []
        up = labgen("up", "bridge")
        assert up.returncode == 0, show(up)
    finally:
        if proc.poll() is None:
            proc.kill()
        labgen("destroy", "--all")
    assert nothing_left(labgen_home, "bridge") == []


def test_an_orphan_is_shown_and_destroyed(labgen_home: Path, bring_up: Callable[..., str]) -> None:
    """An instance dir deleted by hand: status shows the orphan, destroy removes it, and a
    new up of the lab is not blocked by it."""
    lab = bring_up("bridge")
    subprocess.run(["rm", "-rf", str(labgen_home / "instances" / lab)], check=True)
    code, rows = labgen_json("status")
    assert [(r["instance"], r["state"].split()[0]) for r in rows] == [(lab, "orphan")], rows
    destroyed = labgen("destroy", lab)
    assert destroyed.returncode == 0, show(destroyed)
    assert nothing_left(labgen_home, lab) == []

    bring_up(lab)  # an orphan left again: up removes what an earlier machine left
    subprocess.run(["rm", "-rf", str(labgen_home / "instances" / lab)], check=True)
    again = labgen("up", lab)
    assert again.returncode == 0, show(again)
    assert "left by an earlier bridge" in again.stderr


def test_ctrl_c_during_a_verify_step_ends_it_and_leaves_nothing(labgen_home: Path) -> None:
    """SIGINT while a step runs on the machine: the worker thread waiting on SSH gives up,
    the machine is destroyed, exit 130. Before, the main thread got KeyboardInterrupt
    and then waited for the worker, which waited for the ten-minute step."""
    lab = Path(__file__).parent / "labs" / "hanging-step"
    machine = "verify-20-10-hanging-step"
    proc = subprocess.Popen(
        [sys.executable, "-m", "labgen", "verify", str(lab)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for _ in range(600):  # the step is running once its sleep is on the machine
            found = subprocess.run(
                ["docker", "exec", resources.machine_id(machine), "pgrep", "-f", "sleep 600"],
                capture_output=True,
            )
            if found.returncode == 0 or proc.poll() is not None:
                break
            time.sleep(0.5)
        assert found.returncode == 0, "the step never started"
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=180)  # a guard against the old hang, not a timing
        err = proc.stderr.read() if proc.stderr else ""
        assert code == 130, err
        assert "Traceback" not in err and "interrupted" in err
        assert nothing_left(labgen_home, machine) == []
    finally:
        if proc.poll() is None:
            proc.kill()
        labgen("destroy", "--all")
    assert nothing_left(labgen_home, machine) == []
