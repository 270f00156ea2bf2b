"""Checks of the bridge lab: each holds right after the step it names.

Run by `labgen check bridge`, over SSH with sudo, against the lab machine.
docker0 and its address exist from the moment dockerd starts, so no check
asserts them alone: each ties them to what the step changed (a veth port that
appears when the container starts and disappears when it stops).
"""

from __future__ import annotations

import json
import shlex
from typing import Any

import pytest

from generator.checklib import container_ip, ipv4_addresses

CONTAINER = "nstest"
BRIDGE = "docker0"


def detailed_links(host: Any, netns_of_pid: str | None = None) -> list[dict[str, Any]]:
    """`ip -j -d link`: interfaces with their kind (linkinfo.info_kind), master and peer index.

    With `netns_of_pid`, the interfaces of that process's network namespace (nsenter).
    """
    cmd = "ip -j -d link show"
    if netns_of_pid is not None:
        cmd = f"nsenter -t {shlex.quote(netns_of_pid)} -n {cmd}"
    return list(json.loads(host.check_output(cmd)))


def kind(link: dict[str, Any]) -> str | None:
    return link.get("linkinfo", {}).get("info_kind")


def ports_of(host: Any, bridge: str) -> list[str]:
    """Names of the interfaces whose master is `bridge`, by `ip -j link`."""
    return [link["ifname"] for link in detailed_links(host) if link.get("master") == bridge]


def brctl_show(host: Any) -> dict[str, list[str]]:
    """`brctl show` as {bridge: [interfaces]}.

    Read by whitespace-separated fields, never by column: a line that starts
    with a name opens a bridge (name, id, STP, then its first interface if it
    has any); an indented line carries one more interface of the bridge above.
    """
    bridges: dict[str, list[str]] = {}
    current: str | None = None
    for line in host.check_output("brctl show").splitlines():
        fields = line.split()
        if not fields or line.startswith("bridge name"):
            continue
        if not line[0].isspace():
            current = fields[0]
            bridges[current] = fields[3:]
        elif current is not None:
            bridges[current].extend(fields)
    return bridges


def veth_pair(host: Any, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The container's eth0 (seen in its own namespace) and the machine-side end of its pair.

    eth0's `link_index` is the index of its peer in the machine's namespace: the
    number after the `@if` that `ip a` prints.
    """
    pid = host.run(f"docker inspect -f '{{{{.State.Pid}}}}' {shlex.quote(name)}")
    assert pid.rc == 0, f"no container {name!r}: {pid.stderr.strip()}"
    pid_text = pid.stdout.strip()
    assert pid_text not in ("", "0"), f"container {name!r} is not running"
    inside = {link["ifname"]: link for link in detailed_links(host, pid_text)}
    assert "eth0" in inside, f"{name} has no eth0: {sorted(inside)}"
    eth0 = inside["eth0"]
    assert kind(eth0) == "veth", f"{name}'s eth0 is {kind(eth0)!r}, not one end of a veth pair"
    by_index = {link["ifindex"]: link for link in detailed_links(host)}
    peer = by_index.get(eth0.get("link_index"))
    assert peer is not None, f"eth0's peer (index {eth0.get('link_index')}) is not on the machine"
    return eth0, peer


@pytest.mark.step("start-container", until="stop-container")
def test_docker0_is_a_bridge_with_the_container_behind_it(host):
    """docker0 is a bridge with 172.17.0.1/16, and nstest (172.17.0.2) hangs on it by a veth"""
    [docker0] = [link for link in detailed_links(host) if link["ifname"] == BRIDGE]
    assert kind(docker0) == "bridge"
    assert "172.17.0.1/16" in ipv4_addresses(host, BRIDGE)
    address = container_ip(host, CONTAINER)
    assert address == "172.17.0.2", f"{CONTAINER} on the default bridge has address {address!r}"
    _, peer = veth_pair(host, CONTAINER)
    assert peer["ifname"] in ports_of(host, BRIDGE)


@pytest.mark.step("start-container", until="stop-container")
def test_veth_pair_joins_the_containers_eth0_to_docker0(host):
    """nstest's eth0 and a veth whose master is docker0 are the two ends of one pair (ip -j link)"""
    eth0, peer = veth_pair(host, CONTAINER)
    assert kind(peer) == "veth"
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
    assert ports_of(host, BRIDGE) == []
    assert brctl_show(host).get(BRIDGE) == []
    names = [link["ifname"] for link in detailed_links(host)]
    leftover = [name for name in names if name.startswith("veth")]
    assert leftover == [], f"veth interfaces still on the machine: {leftover}"
    # Stopped: the container is still there (not removed, and not one that never ran).
    status = host.run(f"docker inspect -f '{{{{.State.Status}}}}' {CONTAINER}")
    assert status.rc == 0, f"no container {CONTAINER!r}: {status.stderr.strip()}"
    assert status.stdout.strip() == "exited"
