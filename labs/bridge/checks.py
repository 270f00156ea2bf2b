"""Checks of the bridge lab: each holds right after the step it names.

Run by `labgen check bridge`, over SSH with sudo, against the lab machine.
docker0 and its address exist from the moment dockerd starts, so no check
asserts them alone: each ties them to what the step changed (a veth port that
appears when the container starts and disappears when it stops).
"""

from __future__ import annotations

from typing import Any

import pytest

from labgen.checklib import (
    brctl_show,
    bridge_ports,
    container_ip,
    container_pid,
    ipv4_addresses,
    link_kind,
    links,
    veth_peer,
)

CONTAINER = "nstest"
BRIDGE = "docker0"


def veth_pair(host: Any, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The container's eth0 (seen in its own namespace) and the machine-side end of its pair.

    eth0's `link_index` is the index of its peer in the machine's namespace: the
    number after the `@if` that `ip a` prints.
    """
    inside = {link["ifname"]: link for link in links(host, pid=container_pid(host, name))}
    assert "eth0" in inside, f"{name} has no eth0: {sorted(inside)}"
    eth0 = inside["eth0"]
    return eth0, veth_peer(host, eth0)


@pytest.mark.step("start-container", until="stop-container")
def test_docker0_is_a_bridge_with_the_container_behind_it(host):
    """docker0 is a bridge with 172.17.0.1/16, and nstest (172.17.0.2) hangs on it by a veth"""
    [docker0] = [link for link in links(host) if link["ifname"] == BRIDGE]
    assert link_kind(docker0) == "bridge"
    assert "172.17.0.1/16" in ipv4_addresses(host, BRIDGE)
    address = container_ip(host, CONTAINER)
    assert address == "172.17.0.2", f"{CONTAINER} on the default bridge has address {address!r}"
    _, peer = veth_pair(host, CONTAINER)
    assert peer["ifname"] in bridge_ports(host, BRIDGE)


@pytest.mark.step("start-container", until="stop-container")
def test_veth_pair_joins_the_containers_eth0_to_docker0(host):
    """nstest's eth0 and a veth whose master is docker0 are the two ends of one pair (ip -j link)"""
    eth0, peer = veth_pair(host, CONTAINER)
    assert link_kind(peer) == "veth"
    assert peer["link_index"] == eth0["ifindex"], "the two ends do not point at each other"
    assert peer.get("master") == BRIDGE, f"{peer['ifname']}'s master is {peer.get('master')!r}"
    assert peer["ifname"].startswith("veth")


@pytest.mark.step("start-container", until="stop-container")
def test_brctl_lists_the_containers_veth_on_docker0(host):
    """brctl show lists nstest's veth among docker0's interfaces"""
    _, peer = veth_pair(host, CONTAINER)
    bridges = brctl_show(host)
    assert BRIDGE in bridges, f"brctl show has no {BRIDGE}: {bridges}"
    assert peer["ifname"] in bridges[BRIDGE], bridges


@pytest.mark.step("stop-container")
def test_stopping_the_container_took_its_veth_off_docker0(host):
    """nstest has stopped, and its veth is gone: no port on docker0 in ip -j link or brctl show"""
    assert bridge_ports(host, BRIDGE) == []
    assert brctl_show(host).get(BRIDGE) == []
    names = [link["ifname"] for link in links(host)]
    leftover = [name for name in names if name.startswith("veth")]
    assert leftover == [], f"veth interfaces still on the machine: {leftover}"
    # Stopped: the container is still there (not removed, and not one that never ran).
    status = host.run(f"docker inspect -f '{{{{.State.Status}}}}' {CONTAINER}")
    assert status.rc == 0, f"no container {CONTAINER!r}: {status.stderr.strip()}"
    assert status.stdout.strip() == "exited"
