"""Checks of the port-forwarding lab: each holds right after the step it names.

Run by `labgen check port-forwarding`, over SSH with sudo, against the lab machine.
"""

import json
import re

import pytest

from labgen.checklib import (
    container_ip,
    container_log,
    ipv4_addresses,
    listeners,
    rule_counters,
    rules,
)

CONTAINER = "http-server"
DNAT_RULE = (
    "-A DOCKER ! -i docker0 -p tcp -m tcp --dport 5000 -j DNAT --to-destination 172.17.0.2:5000"
)
MASQUERADE_RULE = (
    "-A POSTROUTING -s 172.17.0.2/32 -d 172.17.0.2/32 -p tcp -m tcp --dport 5000 -j MASQUERADE"
)
ACCEPT_RULE = (
    "-A DOCKER -d 172.17.0.2/32 ! -i docker0 -o docker0 -p tcp -m tcp --dport 5000 -j ACCEPT"
)
# Docker 28 and later: only docker0 may reach the container's address directly.
RAW_DROP_RULE = "-A PREROUTING -d 172.17.0.2/32 ! -i docker0 -j DROP"


def requests_from(log, client, target=r"/\S*"):
    """Log lines of GET `target` (a regex) answered 200, sent from address `client`."""
    pattern = re.compile(
        re.escape(client) + r' - - \[[^]]*\] "GET ' + target + r' HTTP/1\.[01]" 200 '
    )
    return [line for line in log if pattern.match(line)]


def eth0_address(host):
    """The machine's own first IPv4 address on eth0 (no prefix length)."""
    addresses = ipv4_addresses(host, "eth0")
    assert addresses, "eth0 has no IPv4 address"
    return addresses[0].split("/")[0]


@pytest.mark.step("publish-port", until="stop-server")
def test_dnat_sends_port_5000_to_the_container(host):
    """nat DOCKER has the DNAT rule for port 5000 to 172.17.0.2:5000"""
    assert DNAT_RULE in rules(host, "nat", "DOCKER")


@pytest.mark.step("publish-port", until="stop-server")
def test_rules_for_the_containers_own_address(host, engine):
    """the container's own address: a hairpin MASQUERADE for its port 5000 (Docker before 28);
    no hairpin rule but a raw-table DROP for direct access from outside docker0 (28 and later)"""
    masquerade = MASQUERADE_RULE in rules(host, "nat", "POSTROUTING")
    if engine < "28.0":
        assert masquerade, "no hairpin MASQUERADE for port 5000 in nat POSTROUTING"
    else:
        assert not masquerade, f"Docker {engine} with docker-proxy should write no hairpin rule"
        assert RAW_DROP_RULE in rules(host, "raw", "PREROUTING")


@pytest.mark.step("publish-port", until="stop-server")
def test_filter_lets_port_5000_through_to_the_container(host, engine):
    """filter DOCKER accepts port 5000 for the container, reached from FORWARD (through
    DOCKER-FORWARD and DOCKER-BRIDGE on Docker 28 and later)"""
    assert ACCEPT_RULE in rules(host, "filter", "DOCKER")
    forward = rules(host, "filter", "FORWARD")
    if engine < "28.0":
        assert "-A FORWARD -o docker0 -j DOCKER" in forward
    else:
        assert "-A FORWARD -j DOCKER-FORWARD" in forward
        assert "-A DOCKER-FORWARD -j DOCKER-BRIDGE" in rules(host, "filter", "DOCKER-FORWARD")
        assert "-A DOCKER-BRIDGE -o docker0 -j DOCKER" in rules(host, "filter", "DOCKER-BRIDGE")


@pytest.mark.step("publish-port", until="stop-server")
def test_container_sits_on_docker0(host):
    """the server's container is 172.17.0.2 on docker0, whose address is 172.17.0.1/16"""
    assert container_ip(host, CONTAINER) == "172.17.0.2"
    assert "172.17.0.1/16" in ipv4_addresses(host, "docker0")


@pytest.mark.step("publish-port", until="stop-server")
def test_docker_proxy_listens_on_port_5000(host):
    """docker-proxy listens on the machine's port 5000 (ss -ltnp)"""
    owners = listeners(host, 5000)
    assert "docker-proxy" in [name for name, _ in owners], owners


@pytest.mark.step("curl", until="stop-server")
def test_server_answered_localhost_through_the_bridge(host):
    """the server logged a GET from 172.17.0.1, and curl localhost:5000 answers 200"""
    log = "\n".join(container_log(host, CONTAINER))
    assert "172.17.0.1 - - " in log and '"GET / HTTP/1.1" 200' in log, log
    code = host.check_output("curl -s -o /dev/null -w '%{http_code}' http://localhost:5000/")
    assert code == "200"


@pytest.mark.step("count-localhost", until="count-eth0")
def test_localhost_request_did_not_touch_the_dnat_rule(host):
    """the request to localhost (logged from 172.17.0.1) left the DNAT rule's counter at 0"""
    seen = requests_from(container_log(host, CONTAINER), "172.17.0.1", re.escape("/?via=localhost"))
    assert seen, "the server logged no GET /?via=localhost from 172.17.0.1"
    counters = rule_counters(host, "nat")
    assert DNAT_RULE in counters, "the DNAT rule for port 5000 is missing"
    assert counters[DNAT_RULE][0] == 0, f"DNAT counted {counters[DNAT_RULE]} (packets, bytes)"


@pytest.mark.step("count-eth0", until="stop-server")
def test_eth0_request_went_through_the_dnat_rule(host):
    """a request to eth0's address went through DNAT: counted, logged with eth0's address"""
    addr = eth0_address(host)
    seen = requests_from(container_log(host, CONTAINER), addr)
    assert seen, f"the server logged no GET from {addr}"
    counters = rule_counters(host, "nat")
    assert DNAT_RULE in counters, "the DNAT rule for port 5000 is missing"
    assert counters[DNAT_RULE][0] >= 1, f"DNAT counted {counters[DNAT_RULE]} (packets, bytes)"


@pytest.mark.step("stop-server")
def test_stopping_the_server_removed_its_rules(host, engine):
    """http-server was stopped, and its rules are gone (DNAT, MASQUERADE, filter ACCEPT,
    and on Docker 28 the raw DROP)"""
    assert container_ip(host, CONTAINER) is None, f"{CONTAINER} is still running"
    assert DNAT_RULE not in rules(host, "nat", "DOCKER")
    assert MASQUERADE_RULE not in rules(host, "nat", "POSTROUTING")
    assert ACCEPT_RULE not in rules(host, "filter", "DOCKER")
    if engine >= "28.0":
        assert RAW_DROP_RULE not in rules(host, "raw", "PREROUTING")
    # On a fresh machine the rules are absent too: Docker's event log (kept in
    # memory since dockerd started) tells that the container ran and was stopped.
    # An --until with nanoseconds includes the events of this very second.
    cmd = (
        'docker events --since 0 --until "$(date +%s.%N)"'
        f" --filter type=container --filter event=stop --filter container={CONTAINER}"
        " --format '{{json .Actor.Attributes}}'"
    )
    stopped = [json.loads(line) for line in host.check_output(cmd).splitlines() if line]
    assert any(a.get("name") == CONTAINER for a in stopped), (
        f"Docker recorded no stop of {CONTAINER}"
    )
