"""Checks of the netns lab: each holds right after the step it names.

Run by `labgen check netns`, over SSH with sudo (as root), against the lab machine.

Only two steps change the machine: `run-container` (Docker makes a network
namespace, a veth pair and eth0's address) and `link-netns` (the learner names
that namespace for `ip netns`). The other steps only look, so no check is tied to
them: a check of theirs would already pass before they run.
"""

from __future__ import annotations

import json
import shlex
from typing import Any

import pytest

from generator.checklib import links

CONTAINER = "nstest"
NETNS_LINK = "/var/run/netns/nstest"


def _pid(host: Any) -> int:
    """PID (on the machine) of the running container's main process; 0 when it does not run."""
    cmd = host.run(
        "docker inspect -f '{{if .State.Running}}{{.State.Pid}}{{else}}0{{end}}' " + CONTAINER
    )
    return int(cmd.stdout.strip() or 0) if cmd.rc == 0 else 0


def _running_pid(host: Any) -> int:
    pid = _pid(host)
    assert pid > 0, f"container {CONTAINER} is not running"
    return pid


def _netns_inode(host: Any, path: str) -> str | None:
    """'device:inode' of the namespace `path` leads to (following links), or None."""
    cmd = host.run(f"stat -L -c %d:%i {shlex.quote(path)}")
    return cmd.stdout.strip() if cmd.rc == 0 else None


def _netns_names(host: Any) -> list[dict[str, Any]]:
    """`ip -j netns list`: [{"name": ..., "id": ...}]; it prints nothing without /var/run/netns."""
    out = host.check_output("ip -j netns list").strip()
    return list(json.loads(out)) if out else []


def _eth0(host: Any, enter: str) -> dict[str, Any]:
    """eth0 as `ip -j -d addr` shows it when run through `enter` (a command prefix)."""
    cmd = host.run(f"{enter} ip -j -d addr show dev eth0")
    assert cmd.rc == 0, f"`{enter} ip addr show dev eth0` failed: {cmd.stderr.strip()}"
    (eth0,) = json.loads(cmd.stdout)
    return eth0


def _ipv4(iface: dict[str, Any]) -> list[str]:
    return [
        f"{a['local']}/{a['prefixlen']}"
        for a in iface.get("addr_info", [])
        if a.get("family") == "inet"
    ]


def _host_peer_of(host: Any, eth0: dict[str, Any]) -> dict[str, Any]:
    """The host-side end of eth0's veth pair, after checking that the two ends name each other."""
    assert eth0.get("linkinfo", {}).get("info_kind") == "veth", "eth0 is not a veth"
    n = eth0.get("link_index")
    assert n, "eth0 names no peer interface (no @ifN)"
    details = {i["ifindex"]: i for i in json.loads(host.check_output("ip -j -d link show"))}
    by_index = {i["ifindex"]: i for i in links(host)}
    assert n in by_index, f"eth0@if{n}, but the machine has no interface {n}"
    peer = by_index[n]
    kind = details.get(n, {}).get("linkinfo", {}).get("info_kind")
    assert kind == "veth", f"interface {n} ({peer['ifname']}) is a {kind}, not a veth"
    assert peer.get("master") == "docker0", f"{peer['ifname']} is not a port of docker0"
    assert peer.get("link_index") == eth0["ifindex"], (
        f"{peer['ifname']} pairs with interface {peer.get('link_index')}, "
        f"not with eth0 (index {eth0['ifindex']})"
    )
    return peer


@pytest.mark.step("run-container", until="link-netns")
def test_container_has_a_namespace_ip_netns_does_not_list(host):
    """nstest has a network namespace of its own, kept by Docker, not listed by `ip netns`"""
    pid = _running_pid(host)
    mine = _netns_inode(host, f"/proc/{pid}/ns/net")
    assert mine and mine != _netns_inode(host, "/proc/1/ns/net"), (
        "the container shares the machine's network namespace"
    )
    sandbox = host.check_output("docker inspect -f '{{.NetworkSettings.SandboxKey}}' " + CONTAINER)
    assert _netns_inode(host, sandbox) == mine, f"Docker's {sandbox} is another namespace"
    assert _netns_names(host) == [], "`ip netns list` is not empty"


@pytest.mark.step("run-container")
def test_veth_pair_joins_the_containers_eth0_to_docker0(host):
    """in nstest's namespace, eth0 has 172.17.0.2/16 and is a veth whose peer is on docker0"""
    pid = _running_pid(host)
    eth0 = _eth0(host, f"nsenter --net=/proc/{pid}/ns/net")
    assert "172.17.0.2/16" in _ipv4(eth0), _ipv4(eth0)
    _host_peer_of(host, eth0)


@pytest.mark.step("link-netns")
def test_netns_link_points_to_the_containers_namespace(host):
    """/var/run/netns/nstest links to /proc/PID/ns/net of nstest: the same namespace (inode)"""
    pid = _running_pid(host)
    target = host.run(f"readlink {NETNS_LINK}")
    assert target.rc == 0, f"{NETNS_LINK} is not a symbolic link"
    assert target.stdout.strip() == f"/proc/{pid}/ns/net", target.stdout.strip()
    mine = _netns_inode(host, f"/proc/{pid}/ns/net")
    assert mine and _netns_inode(host, NETNS_LINK) == mine


@pytest.mark.step("link-netns")
def test_ip_netns_lists_nstest(host):
    """`ip netns` lists nstest"""
    names = [ns["name"] for ns in _netns_names(host)]
    assert CONTAINER in names, names


@pytest.mark.step("link-netns")
def test_eth0_seen_through_nstest_is_the_peer_of_a_docker0_veth(host):
    """through nstest, eth0@ifN has 172.17.0.2/16; host interface N is its veth peer on docker0"""
    eth0 = _eth0(host, f"ip netns exec {CONTAINER}")
    assert "172.17.0.2/16" in _ipv4(eth0), _ipv4(eth0)
    peer = _host_peer_of(host, eth0)
    # `ip netns` prints "nstest (id: K)": K is the id the machine's namespace
    # gave the container's, the same as the host veth's link-netnsid.
    ids = {ns["name"]: ns.get("id") for ns in _netns_names(host)}
    assert ids.get(CONTAINER) == peer.get("link_netnsid"), (ids, peer.get("link_netnsid"))
