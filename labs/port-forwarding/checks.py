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
OUTPUT_JUMP = "-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER"
PREROUTING_JUMP = "-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER"
RETURN_RULE = "-A DOCKER -i docker0 -j RETURN"
# Where `labgen-lab trace` keeps every run, one JSON object a line (labgen.trace_lab):
# what the learner's own trace showed, read back rather than measured again.
TRACE_LOG = "/var/tmp/labgen-trace/traces.jsonl"


def requests_from(log, client, target=r"/\S*"):
    """Log lines of GET `target` (a regex) answered 200, sent from address `client`."""
    pattern = re.compile(
        re.escape(client) + r' - - \[[^]]*\] "GET ' + target + r' HTTP/1\.[01]" 200 '
    )
    return [line for line in log if pattern.match(line)]


def last_trace(host, marker):
    """The latest trace `labgen-lab trace` recorded of a command containing `marker`."""
    log = host.file(TRACE_LOG)
    assert log.exists, f"no trace was run ({TRACE_LOG} is missing)"
    traces = [json.loads(line) for line in log.content_string.splitlines() if line.strip()]
    mine = [trace for trace in traces if marker in trace["command"]]
    assert mine, f"no trace of a command with {marker!r} in {TRACE_LOG}"
    return mine[-1]


def rules_met(trace):
    """The rules (iptables-save text) whose counters the traced command moved, in order."""
    return [hit["rule"] for hit in trace["path"]["hits"] if hit["rule"] is not None]


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


@pytest.mark.step("count-localhost", until="stop-server")
def test_localhost_request_did_not_touch_the_dnat_rule(host):
    """the trace of the request to localhost met no DNAT rule (logged from 172.17.0.1)"""
    trace = last_trace(host, "via=localhost")
    assert trace["status"] == 0, f"the traced request failed: {trace['stderr']}"
    met = rules_met(trace)
    assert DNAT_RULE not in met and OUTPUT_JUMP not in met, f"the trace met {met}"
    seen = requests_from(container_log(host, CONTAINER), "172.17.0.1", re.escape("/?via=localhost"))
    assert seen, "the server logged no GET /?via=localhost from 172.17.0.1"


@pytest.mark.step("count-eth0", until="stop-server")
def test_eth0_request_went_through_the_dnat_rule(host):
    """the trace of a request to eth0's address met OUTPUT's jump and DNAT, once; the
    server logged eth0's address"""
    trace = last_trace(host, "via=eth0")
    assert trace["status"] == 0, f"the traced request failed: {trace['stderr']}"
    counted = {hit["rule"]: hit["packets"] for hit in trace["path"]["hits"] if hit["rule"]}
    assert counted.get(OUTPUT_JUMP) == 1, f"the trace met {counted}"
    assert counted.get(DNAT_RULE) == 1, f"one connection, one DNAT count; the trace met {counted}"
    addr = eth0_address(host)
    seen = requests_from(container_log(host, CONTAINER), addr, re.escape("/?via=eth0"))
    assert seen, f"the server logged no GET /?via=eth0 from {addr}"


@pytest.mark.step("count-hairpin", until="stop-server")
def test_hairpin_request_returned_to_docker_proxy(host):
    """the trace of a request from another container met PREROUTING's jump and docker0's
    RETURN, not DNAT; the server logged 172.17.0.1 (docker-proxy)"""
    trace = last_trace(host, "via=hairpin")
    assert trace["status"] == 0, f"the traced request failed: {trace['stderr']}"
    assert trace["stdout"].strip() == "200", trace["stdout"]
    met = rules_met(trace)
    assert PREROUTING_JUMP in met and RETURN_RULE in met, f"the trace met {met}"
    assert DNAT_RULE not in met, f"the trace met {met}"
    seen = requests_from(container_log(host, CONTAINER), "172.17.0.1", re.escape("/?via=hairpin"))
    assert seen, "the server logged no GET /?via=hairpin from 172.17.0.1"


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
