"""Checks of the port-forwarding-noproxy lab: each holds right after the step it names.

Run by `labgen check port-forwarding-noproxy`, over SSH with sudo, against the lab machine.
"""

import re

import pytest

from labgen.checklib import container_ip, container_log, ipv4_addresses, listeners, rule_counters, rules

CONTAINER = "http-server"
DNAT_RULE = "-A DOCKER -p tcp -m tcp --dport 5000 -j DNAT --to-destination 172.17.0.2:5000"
HAIRPIN_RULE = (
    "-A POSTROUTING -s 172.17.0.2/32 -d 172.17.0.2/32 -p tcp -m tcp --dport 5000 -j MASQUERADE"
)
LOCAL_OUTPUT_RULE = "-A OUTPUT -m addrtype --dst-type LOCAL -j DOCKER"
LOCAL_MASQUERADE_RULE = "-A POSTROUTING -o docker0 -m addrtype --src-type LOCAL -j MASQUERADE"


def requests_from(log, client, target):
    """Log lines of GET `target` (a regex) answered 200, sent from address `client`."""
    pattern = re.compile(re.escape(client) + r' - - \[[^]]*\] "GET ' + target + r' HTTP/1\.[01]" 200 ')
    return [line for line in log if pattern.match(line)]


@pytest.mark.step("publish-port", until="stop-server")
def test_every_local_address_meets_the_dnat_rule(host):
    """OUTPUT jumps to DOCKER for every local address (127.0.0.0/8 too), and DOCKER DNATs
    port 5000 to 172.17.0.2:5000 from any interface, docker0 included"""
    nat = rules(host, "nat")
    assert LOCAL_OUTPUT_RULE in nat, "OUTPUT still excludes 127.0.0.0/8: is the proxy off?"
    assert DNAT_RULE in nat
    assert "-A DOCKER -i docker0 -j RETURN" not in nat


@pytest.mark.step("publish-port", until="stop-server")
def test_masquerade_for_local_sources_and_the_hairpin(host):
    """POSTROUTING masquerades local sources leaving through docker0, and the container's
    traffic to its own port 5000 (on every engine)"""
    postrouting = rules(host, "nat", "POSTROUTING")
    assert LOCAL_MASQUERADE_RULE in postrouting
    assert HAIRPIN_RULE in postrouting


@pytest.mark.step("publish-port", until="stop-server")
def test_dockerd_holds_port_5000_and_no_proxy_runs(host):
    """dockerd itself listens on port 5000; no docker-proxy runs"""
    owners = [name for name, _ in listeners(host, 5000)]
    assert owners and set(owners) == {"dockerd"}, owners
    assert not host.process.filter(comm="docker-proxy")


@pytest.mark.step("count-localhost", until="stop-server")
def test_localhost_request_went_through_dnat_and_was_masqueraded(host):
    """the request to localhost was counted by DNAT and logged from 172.17.0.1"""
    log = container_log(host, CONTAINER)
    assert requests_from(log, "172.17.0.1", re.escape("/?via=localhost")), log[-5:]
    counters = rule_counters(host, "nat")
    assert counters.get(DNAT_RULE, (0, 0))[0] >= 1, counters.get(DNAT_RULE)
    assert counters.get(LOCAL_MASQUERADE_RULE, (0, 0))[0] >= 1


@pytest.mark.step("count-eth0", until="stop-server")
def test_eth0_request_was_masqueraded_too(host):
    """the request to eth0's address went through DNAT and reached the server from
    172.17.0.1, not from eth0's address"""
    addr = ipv4_addresses(host, "eth0")[0].split("/")[0]
    log = container_log(host, CONTAINER)
    assert requests_from(log, "172.17.0.1", re.escape("/?via=eth0")), log[-5:]
    assert not requests_from(log, addr, re.escape("/?via=eth0"))
    assert rule_counters(host, "nat").get(DNAT_RULE, (0, 0))[0] >= 2


@pytest.mark.step("stop-server")
def test_stopping_frees_the_port_and_removes_the_rules(host):
    """http-server is gone, with its DNAT and hairpin rules and dockerd's hold on port 5000"""
    assert container_ip(host, CONTAINER) is None, f"{CONTAINER} is still running"
    nat = rules(host, "nat")
    assert DNAT_RULE not in nat and HAIRPIN_RULE not in nat
    assert LOCAL_OUTPUT_RULE in nat, "dockerd's own rules stay"
    assert not listeners(host, 5000)
    events = host.check_output(
        'docker events --since 0 --until "$(date +%s.%N)" --filter type=container '
        f"--filter event=stop --filter container={CONTAINER} --format '{{{{.Actor.Attributes.name}}}}'"
    )
    assert CONTAINER in events.split(), "Docker recorded no stop of the server"
