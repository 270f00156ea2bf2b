"""The warm pool on real machines: a claimed machine is the lab's, indistinguishable from
a freshly made one; claimed once; a restarted machine is never handed out as it is.

Each test destroys what it made (the fixture's `destroy --all` counts pooled machines
too), and the leak check at the end of the suite looks again.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from helpers import labgen, labgen_json, show
from labgen.core import resources
from labgen.docs import recordings

pytestmark = pytest.mark.e2e

# What a user would compare between two machines of one lab: every table's rules, the
# links and addresses, the listeners, Docker's settings and images, the host name and
# the lab's files. The machine's own address (its docker network's) comes first, to be
# set aside: two machines never share it.
STATE = r"""
ip -4 -o addr show dev eth0 | awk '{print $4}' | cut -d/ -f1
for t in nat filter raw mangle; do echo "== $t"; sudo iptables-save -t $t | grep -v '^#'; done
echo "== links"; ip -o link | sed 's/^[0-9]*: //; s/link\/ether [0-9a-f:]*//; s/ brd [0-9a-f:]*//'
echo "== addresses"; ip -o addr | awk '{print $2, $3, $4}'
echo "== listeners"; sudo ss -ltnuH | awk '{print $1, $5}' | sort
echo "== daemon.json"; cat /etc/docker/daemon.json 2>/dev/null || echo none
echo "== images"; docker images --format '{{.Repository}}:{{.Tag}}' | sort
echo "== containers"; docker ps -a --format '{{.Names}}'
echo "== hostname"; hostname; cat /etc/hostname
grep -v localhost /etc/hosts | grep -v '^f\|^::' | awk '{print $2}'
echo "== lab files"; cd /opt/labgen
find . -path ./images -prune -o -type f -print | sort | xargs sha256sum
echo "== helper"; readlink /usr/local/bin/labgen-lab
"""


def machine_state(machine: str) -> str:
    """The state above, normalised as recordings are, and the machine's address named."""
    proc = labgen("ssh", machine, "--", STATE)
    assert proc.returncode == 0, show(proc)
    own, _, rest = proc.stdout.partition("\n")
    text, _ = recordings.normalise(rest.replace(own.strip(), "<this machine>"))
    return re.sub(r"\[\d+:\d+\]", "[counters]", text)


def pooled_containers() -> list[str]:
    labels = ["--filter", f"label=org.labgen.home={resources.home_tag()}"]
    out = subprocess.run(
        ["docker", "ps", "-a", *labels, "--format", '{{.Label "org.labgen.instance"}}'],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return sorted(name for name in out.split() if name.startswith("pool-"))


@pytest.fixture
def everything_destroyed(labgen_home: Path) -> Iterator[None]:
    """Whatever the test made, pooled machines included, is destroyed afterwards."""
    try:
        yield
    finally:
        destroyed = labgen("destroy", "--all", "--yes")
        assert destroyed.returncode == 0, show(destroyed)
        assert pooled_containers() == []


@pytest.mark.parametrize(
    "lab, engine",
    [("bridge", "20.10"), ("port-forwarding-noproxy", "26.1"), ("port-forwarding", "28.5")],
)
def test_a_claimed_machine_is_a_fresh_machine(
    everything_destroyed: None, lab: str, engine: str
) -> None:
    """Fill one, claim it, make one fresh: the two machines' state is the same, and the
    claimed one says it came from the pool; then the lab's steps and checks pass on it.
    One lab per engine, between them every kind of claim: busybox (the other substitute
    removed), python:3.7-slim, and daemon.json (noproxy: dockerd restarted at claim)."""
    filled = labgen("pool", "fill", "--engine", engine, "-n", "1")
    assert filled.returncode == 0, show(filled)
    code, pooled = labgen_json("pool", "status")
    assert code == 0 and [p["ready"] for p in pooled] == [True], pooled

    claimed = labgen("up", lab, "--name", "claimed", "--engine", engine)
    assert claimed.returncode == 0, show(claimed)
    assert "from the warm pool" in claimed.stdout, show(claimed)
    assert labgen_json("pool", "status")[1] == []  # claimed once: the pool is empty now

    fresh = labgen("up", lab, "--name", "fresh", "--engine", engine)
    assert fresh.returncode == 0, show(fresh)
    assert "from the warm pool" not in fresh.stdout

    assert machine_state("claimed") == machine_state("fresh")
    # The claimed machine's lab works as the fresh one's: all its steps and checks.
    walked = labgen("run", "claimed", "--all")
    assert walked.returncode == 0, show(walked)
    checked = labgen("check", "claimed")
    assert checked.returncode == 0, show(checked)

    gone = labgen("destroy", "claimed", "--yes")
    assert gone.returncode == 0, show(gone)
    assert pooled_containers() == []  # destroyed with the lab, never back in the pool
    assert labgen_json("pool", "status")[1] == []


def test_a_restarted_pooled_machine_is_not_handed_out(everything_destroyed: None) -> None:
    """`docker restart` of a pooled machine: its images are gone (a tmpfs) and its dockerd
    is another; `up` destroys it and makes a fresh machine instead."""
    assert labgen("pool", "fill", "-n", "1").returncode == 0
    (name,) = pooled_containers()
    container = resources.machine_id(name)
    subprocess.run(["docker", "restart", "-t", "1", container], check=True, capture_output=True)
    code, pooled = labgen_json("pool", "status")
    assert pooled[0]["ready"] is False and "restarted" in pooled[0]["trouble"], pooled

    proc = labgen("up", "bridge")
    assert proc.returncode == 0, show(proc)
    assert f"pooled machine {name} was restarted" in proc.stdout + proc.stderr, show(proc)
    assert "from the warm pool" not in proc.stdout
    assert pooled_containers() == []
    walked = labgen("run", "bridge", "--all")
    assert walked.returncode == 0, show(walked)


def test_a_restarted_lab_machine_is_provisioned_again(bring_up: Callable[..., str]) -> None:
    """Regression (issue 18, item 6): `docker restart` of a lab machine, then `labgen up`
    said "already running; reusing it" and `run --all` failed at start-container (exit
    125: the busybox image was gone and dockerd looked for it on Docker Hub)."""
    bring_up("bridge")
    container = resources.machine_id("bridge")
    subprocess.run(["docker", "restart", "-t", "1", container], check=True, capture_output=True)
    again = labgen("up", "bridge")
    assert again.returncode == 0, show(again)
    assert "reusing it" not in again.stdout + again.stderr, show(again)
    assert "provisioning it again" in again.stdout + again.stderr, show(again)
    walked = labgen("run", "bridge", "--all")
    assert walked.returncode == 0, show(walked)


def test_a_missing_image_fails_at_once_and_says_how_it_comes_back(
    bring_up: Callable[..., str],
) -> None:
    """Issue 18, item 6: a lab's robot forms never pull. With the lab's image gone from
    the machine, start-container fails naming the image and `labgen up`, without
    docker's "Unable to find image ... locally" (the line before a pull); then `labgen
    up` sees it missing and provisions the machine again."""
    bring_up("bridge")
    container = resources.machine_id("bridge")
    removed = subprocess.run(
        ["docker", "exec", container, "docker", "rmi", "busybox:latest"],
        capture_output=True,
        text=True,
    )
    assert removed.returncode == 0, removed.stderr
    failed = labgen("run", "bridge", "start-container")
    both = failed.stdout + failed.stderr
    assert failed.returncode != 0, show(failed)
    assert "Unable to find image" not in both, show(failed)
    assert "image busybox:latest is not on this machine" in both, show(failed)
    assert "`labgen up bridge`" in both, show(failed)
    again = labgen("up", "bridge")
    assert again.returncode == 0, show(again)
    assert "provisioning it again" in again.stdout + again.stderr, show(again)
    walked = labgen("run", "bridge", "--all")
    assert walked.returncode == 0, show(walked)


def test_verify_makes_the_next_runs_machine_ahead_and_passes_strict_on_it(
    everything_destroyed: None, labgen_home: Path
) -> None:
    """Issue 18, items 3 and 5: while the first run (one job) goes on a fresh machine,
    verify makes the second run's machine in the pool; the second run claims it and
    passes --strict against the committed recordings; nothing is left in the pool."""
    code, reports = labgen_json("verify", "bridge", "netns", "-j", "1", "--strict")
    assert code == 0, reports
    assert [(r["lab"], r["ok"], r["claimed"]) for r in reports] == [
        ("bridge", True, False),
        ("netns", True, True),
    ]
    assert all(r["recordings"] == "compared" and not r["drift"] for r in reports), reports
    assert pooled_containers() == []
    assert list((labgen_home / "instances").iterdir()) == []


def test_pool_commands_refuse_bad_input(labgen_home: Path) -> None:
    proc = labgen("pool", "fill", "--engine", "19.03")
    assert proc.returncode == 2 and "19.03" in proc.stderr, show(proc)
    assert "Traceback" not in proc.stderr
    proc = labgen("up", "bridge", "--name", "pool-mine")
    assert proc.returncode == 2 and "pool" in proc.stderr, show(proc)
    assert not (labgen_home / "instances" / "pool-mine").exists()


def kernel_trace_is_off(seat: str) -> None:
    """An attendee's `labgen-lab trace --kernel` in `seat` is refused (exit 2), saying
    the instructor turned it off: seats get it only with `workshop up --kernel-trace`."""
    refused = labgen("ssh", seat, "--", "labgen-lab", "trace", "--kernel", "--", "true")
    assert refused.returncode == 2, show(refused)
    assert "turned off on this machine by the instructor" in refused.stderr, show(refused)


def test_a_workshop_reset_hands_the_seat_a_spare(everything_destroyed: None) -> None:
    """`workshop up --spares 1` leaves one pooled machine ready; a seat whose machine
    was killed shows as unreachable in `workshop status`; the instructor's reset (the
    function the grid's button runs) gives the seat that spare, destroys the dead
    machine behind it, and the pool is refilled; `workshop down` and `pool drain` leave
    nothing."""
    from labgen.core.context import Context
    from labgen.machine.instance import Instance
    from labgen.workshop import seats

    up = labgen("workshop", "up", "bridge", "--seats", "1", "--spares", "1")
    assert up.returncode == 0, show(up)
    kernel_trace_is_off("bridge-01")  # a pooled machine claimed as a seat gets the gate
    code, pooled = labgen_json("pool", "status")
    assert [p["ready"] for p in pooled] == [True], pooled
    spare = pooled[0]["name"]
    old = Instance("bridge-01").load().made_as_name
    killed = subprocess.run(
        ["docker", "kill", resources.machine_id(old)], capture_output=True, text=True
    )
    assert killed.returncode == 0, killed.stderr
    code, rooms = labgen_json("workshop", "status", "bridge")
    seen = [(s["seat"], s["state"]) for s in rooms[0]["seats"]]
    assert seen == [("bridge-01", "unreachable")], rooms

    events: list[seats.SeatEvent] = []
    lab_path = str(Path(resources.labs_dir()) / "bridge")
    final = seats.reset_seat(Context(), lab_path, "bridge-01", events.append)
    assert final.state == seats.READY, events
    assert Instance("bridge-01").load().made_as == spare  # the spare, claimed
    assert (
        subprocess.run(  # the old machine is gone, not left beside the new one
            ["docker", "inspect", resources.machine_id(old)], capture_output=True
        ).returncode
        != 0
    )
    walked = labgen("run", "bridge-01", "--all")
    assert walked.returncode == 0, show(walked)
    kernel_trace_is_off("bridge-01")  # and so does the spare a reset hands it

    assert seats.keep_spares(Context(), lab_path, 1) != []  # refilled behind the reset
    assert len(labgen_json("pool", "status")[1]) == 1
    down = labgen("workshop", "down", "bridge")
    assert down.returncode == 0, show(down)
    drained = labgen("pool", "drain")
    assert drained.returncode == 0, show(drained)
    assert pooled_containers() == []
