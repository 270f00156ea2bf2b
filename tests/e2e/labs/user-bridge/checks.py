"""Checks of the user-bridge lab (a test lab, not the seed's): each holds right after
the step it names."""

from __future__ import annotations

import json

import pytest
from labgen.checklib import bridge_ports, container_ip, ipv4_addresses

NETWORK = "labnet"


def network_bridge(host) -> str | None:
    """The Linux bridge of network labnet (br- and 12 digits of its id), if it exists."""
    found = host.run(f"docker network inspect {NETWORK} --format '{{{{json .Id}}}}'")
    if found.rc != 0:
        return None
    return "br-" + json.loads(found.stdout)[:12]


@pytest.mark.step("create-network")
def test_the_network_has_a_bridge_of_its_own(host):
    """labnet's bridge br-<id> exists with 10.30.0.1/24"""
    bridge = network_bridge(host)
    assert bridge is not None, f"Docker has no network {NETWORK}"
    assert "10.30.0.1/24" in ipv4_addresses(host, bridge)


@pytest.mark.step("start-alpha", until="remove-alpha")
def test_alpha_hangs_on_the_networks_bridge(host):
    """alpha has 10.30.0.2 on labnet, and its veth is a port of labnet's bridge"""
    assert container_ip(host, "alpha", network=NETWORK) == "10.30.0.2"
    bridge = network_bridge(host)
    assert bridge is not None and bridge_ports(host, bridge), f"{bridge} has no port"


@pytest.mark.step("remove-alpha")
def test_alpha_and_its_port_are_gone(host):
    """alpha is gone, and labnet's bridge has no port left"""
    assert host.run("docker container inspect alpha").rc != 0, "alpha still exists"
    bridge = network_bridge(host)
    assert bridge is not None, f"Docker has no network {NETWORK}"
    assert not bridge_ports(host, bridge), f"{bridge} still has ports"
