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

from labgen.checklib import container_pid, interface, ipv4_of, veth_peer

CONTAINER = "nstest"
NETNS_LINK = "/var/run/netns/nstest"


def _netns_inode(host: Any, path: str) -> str | None:
    """'device:inode' of the namespace `path` leads to (following links), or None."""
    cmd = host.run(f"stat -L -c %d:%i {shlex.quote(path)}")
    return cmd.stdout.strip() if cmd.rc == 0 else None


def _netns_names(host: Any) -> list[dict[str, Any]]:
    """`ip -j netns list`: [{"name": ..., "id": ...}]; it prints nothing without /var/run/netns."""
    out = host.check_output("ip -j netns list").strip()
    return list(json.loads(out)) if out else []


def _host_peer_of(host: Any, eth0: dict[str, Any]) -> dict[str, Any]:
    """The host-side end of eth0's veth pair (the two ends name each other), a port of docker0."""
    peer = veth_peer(host, eth0)
    assert peer.get("master") == "docker0", f"{peer['ifname']} is not a port of docker0"
    return peer


@pytest.mark.step("run-container", until="link-netns")
def test_container_has_a_namespace_ip_netns_does_not_list(host):
    """nstest has a network namespace of its own, kept by Docker, not listed by `ip netns`"""
    pid = container_pid(host, CONTAINER)
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
    pid = container_pid(host, CONTAINER)
    eth0 = interface(host, "eth0", pid=pid)
    assert "172.17.0.2/16" in ipv4_of(eth0), ipv4_of(eth0)
    _host_peer_of(host, eth0)


@pytest.mark.step("link-netns")
def test_netns_link_points_to_the_containers_namespace(host):
    """/var/run/netns/nstest links to /proc/PID/ns/net of nstest: the same namespace (inode)"""
    pid = container_pid(host, CONTAINER)
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
    eth0 = interface(host, "eth0", netns=CONTAINER)
    assert "172.17.0.2/16" in ipv4_of(eth0), ipv4_of(eth0)
    peer = _host_peer_of(host, eth0)
    # `ip netns` prints "nstest (id: K)": K is the id the machine's namespace
    # gave the container's, the same as the host veth's link-netnsid.
    ids = {ns["name"]: ns.get("id") for ns in _netns_names(host)}
    assert ids.get(CONTAINER) == peer.get("link_netnsid"), (ids, peer.get("link_netnsid"))
