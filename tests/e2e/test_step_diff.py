"""End to end: what a step changed, read from real lab machines before and after it.

Each test brings its lab's machine up with the CLI, snapshots it over SSH around the
steps it runs with `labgen run`, and destroys the machine in a `finally`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import PUBLISH_ACCEPT as ACCEPT
from helpers import PUBLISH_DNAT as DNAT
from helpers import PUBLISH_MASQUERADE as MASQUERADE
from helpers import labgen, show
from labgen.machine import ssh
from labgen.network.diff import diff, render_diff
from labgen.network.snapshot import take_snapshot

pytestmark = pytest.mark.e2e

CONTAINER_VETH = re.compile(
    r"veth[0-9a-f]{7}@if\d+ \(veth, peer in netns \d+\) master docker0 up mtu 1500"
)
# Nothing that moves by itself may reach a diff line.
VOLATILE = re.compile(r"\[\d+:\d+\]|pid=|timer|operstate|LOWER_UP|NO-CARRIER|linkdown|fe80:")


@pytest.fixture
def machine(
    request: pytest.FixtureRequest, bring_up: Callable[[str], str], labgen_home: Path
) -> Path:
    """The lab's machine, brought up with the CLI; its ssh-config."""
    lab = bring_up(request.param)
    return labgen_home / "instances" / lab / "ssh-config"


def run_steps(lab: str, *steps: str) -> None:
    proc = labgen("run", lab, *steps)
    assert proc.returncode == 0, show(proc)


@pytest.mark.parametrize("machine", ["port-forwarding"], indirect=True)
def test_publish_port_diff_shows_the_nat_rules_the_veth_and_docker_proxy(machine: Path) -> None:
    with ssh.connect(machine) as client:
        run_steps("port-forwarding", "nat-baseline")
        before = take_snapshot(client)
        run_steps("port-forwarding", "publish-port")
        after = take_snapshot(client)
        # Requests, traced or not, move counters only: no change at all.
        run_steps("port-forwarding", "curl", "count-localhost", "count-eth0")
        counted = take_snapshot(client)

    d = diff(before, after)
    lines = render_diff(d)
    shown = "\n".join(lines)
    assert d.added("rules") == [ACCEPT, DNAT, MASQUERADE], shown
    [veth] = d.added("interfaces")
    assert CONTAINER_VETH.fullmatch(veth), shown
    assert d.added("listeners") == ["listening tcp 0.0.0.0:5000 (docker-proxy)"], shown
    assert d.removed() == [], shown
    assert sorted(d.to_dict()) == ["interfaces", "listeners", "rules"], shown
    assert f"+ {DNAT}" in lines and f"+ {MASQUERADE}" in lines
    assert not any(VOLATILE.search(line) for line in lines), shown

    quiet = diff(after, counted)
    assert quiet.is_empty, "\n".join(render_diff(quiet))


@pytest.mark.parametrize("machine", ["netns"], indirect=True)
def test_link_netns_diff_shows_the_named_namespace_only(machine: Path) -> None:
    with ssh.connect(machine) as client:
        fresh = take_snapshot(client)
        run_steps("netns", "netns-list", "run-container")
        running = take_snapshot(client)
        run_steps("netns", "link-netns")
        linked = take_snapshot(client)

    started = diff(fresh, running)
    assert list(started.to_dict()) == ["interfaces"], "\n".join(render_diff(started))
    [veth] = started.added("interfaces")
    assert CONTAINER_VETH.fullmatch(veth)
    assert started.removed() == []

    d = diff(running, linked)
    lines = render_diff(d)
    assert len(lines) == 1 and re.fullmatch(r"\+ netns nstest \(id \d+\)", lines[0]), lines
    # The id is the one the veth's peer namespace already had.
    named = re.search(r"\(id (\d+)\)", lines[0])
    assert named is not None
    assert f"(veth, peer in netns {named.group(1)})" in veth
