"""Checks of the port-forwarding lab: each holds right after the step it names.

Run by `labgen check port-forwarding`, over SSH with sudo, against the lab machine.
"""

import pytest

from generator.checklib import container_ip, ipv4_addresses, rules

CONTAINER = "http-server"


@pytest.mark.step("publish-port")
def test_dnat_sends_port_5000_to_the_container(host):
    """nat DOCKER has the DNAT rule for port 5000 to 172.17.0.2:5000"""
    assert (
        "-A DOCKER ! -i docker0 -p tcp -m tcp --dport 5000 -j DNAT --to-destination 172.17.0.2:5000"
        in rules(host, "nat", "DOCKER")
    )


@pytest.mark.step("publish-port")
def test_masquerade_for_the_containers_own_port(host):
    """nat POSTROUTING masquerades the container's traffic to its own port 5000"""
    assert (
        "-A POSTROUTING -s 172.17.0.2/32 -d 172.17.0.2/32 -p tcp -m tcp --dport 5000 -j MASQUERADE"
        in rules(host, "nat", "POSTROUTING")
    )


@pytest.mark.step("publish-port")
def test_container_sits_on_docker0(host):
    """the server's container is 172.17.0.2 on docker0, whose address is 172.17.0.1/16"""
    assert container_ip(host, CONTAINER) == "172.17.0.2"
    assert "172.17.0.1/16" in ipv4_addresses(host, "docker0")


@pytest.mark.step("curl")
def test_server_answered_localhost_through_the_bridge(host):
    """the server logged a GET from 172.17.0.1, and curl localhost:5000 answers 200"""
    log = host.check_output(f"docker logs {CONTAINER} 2>&1")
    assert '172.17.0.1 - - ' in log and '"GET / HTTP/1.1" 200' in log, log
    code = host.check_output("curl -s -o /dev/null -w '%{http_code}' http://localhost:5000/")
    assert code == "200"
