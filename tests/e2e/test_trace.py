"""`labgen trace` on a real port-forwarding machine: the path of each request.

One machine for the module's story (it takes publish-port once); destroyed even when a
test fails (the bring_up fixture).
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from helpers import labgen, show

pytestmark = pytest.mark.e2e

OUTPUT_JUMP = "-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER"
PREROUTING_JUMP = "-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER"
DNAT = "-A DOCKER ! -i docker0 -p tcp -m tcp --dport 5000 -j DNAT --to-destination 172.17.0.2:5000"
RETURN = "-A DOCKER -i docker0 -j RETURN"
ETH0 = "$(ip -4 -br addr show dev eth0 | awk '{print $3}' | cut -d/ -f1)"
FROM_CONTAINER = (
    "docker run --rm python:3.7-slim python3 -c "
    "\"import urllib.request as u; print(u.urlopen('http://172.17.0.1:5000/').status)\""
)


def traced(*args: str) -> dict:
    proc = labgen("trace", "port-forwarding", "--json", *args)
    assert proc.returncode == 0, show(proc)
    return json.loads(proc.stdout)


def rules(result: dict) -> list[str]:
    return [h["rule"] for h in result["path"]["hits"] if h["rule"] is not None]


def test_the_port_forwarding_story(bring_up: Callable[[str], str]) -> None:
    bring_up("port-forwarding")
    ran = labgen("run", "port-forwarding", "nat-baseline", "publish-port")
    assert ran.returncode == 0, show(ran)

    localhost = traced("--", "curl -s -o /dev/null -w '%{http_code}' localhost:5000")
    assert localhost["stdout"] == "200"
    assert DNAT not in rules(localhost) and rules(localhost) == []

    eth0 = traced("--", f"curl -s -o /dev/null -w '%{{http_code}}' http://{ETH0}:5000")
    assert eth0["stdout"] == "200"
    assert rules(eth0) == [OUTPUT_JUMP, DNAT]
    hits = {h["rule"]: h for h in eth0["path"]["hits"]}
    assert hits[DNAT]["packets"] == 1, "nat sees the first packet of a connection only"
    assert hits[DNAT]["depth"] == 1 and hits[OUTPUT_JUMP]["hook"] == "OUTPUT"

    twice = traced("--", f"for i in 1 2; do curl -s -o /dev/null http://{ETH0}:5000; done")
    assert {h["rule"]: h["packets"] for h in twice["path"]["hits"]}[DNAT] == 2

    hairpin = traced("--", FROM_CONTAINER)
    assert hairpin["stdout"].strip() == "200"
    assert rules(hairpin) == [PREROUTING_JUMP, RETURN]

    # Nothing was zeroed: the DNAT rule's counter holds all three connections.
    proc = labgen("ssh", "port-forwarding", "--", "sudo", "iptables-save", "-c", "-t", "nat")
    assert proc.returncode == 0, show(proc)
    dnat_line = next(line for line in proc.stdout.splitlines() if DNAT in line)
    assert dnat_line.startswith("[3:"), dnat_line

    # For people: the table names the rule and the count; the exit status is the command's.
    human = labgen("trace", "port-forwarding", "--", f"curl -s http://{ETH0}:5000/nope; exit 3")
    assert human.returncode == 3, show(human)
    assert "DNAT" in human.stdout and "+1" in human.stdout


def test_packets_walk_and_trace_rules_removed_even_on_failure(
    bring_up: Callable[[str], str],
) -> None:
    bring_up("port-forwarding")
    ran = labgen("run", "port-forwarding", "nat-baseline", "publish-port")
    assert ran.returncode == 0, show(ran)
    result = traced("--packets", "--", f"curl -s -o /dev/null http://{ETH0}:5000")
    walks = result["packets"]
    met = [w for w in walks if any(s["kind"] == "rule" for s in w["steps"])]
    assert len(met) == 1, walks
    assert [s["chain"] for s in met[0]["steps"]] == ["OUTPUT", "DOCKER"]
    assert met[0]["steps"][1]["rule"] == DNAT
    assert len(walks) > 5, "every packet of the connection is seen (raw and nat hooks)"

    failed = labgen("trace", "port-forwarding", "--packets", "--", "curl -s localhost:1; false")
    assert failed.returncode == 1, show(failed)
    raw = labgen("ssh", "port-forwarding", "--", "sudo", "iptables", "-t", "raw", "-S")
    assert raw.returncode == 0, show(raw)
    assert "LABGEN-TRACE" not in raw.stdout and "TRACE" not in raw.stdout, raw.stdout


def test_trace_refuses_no_command_and_unknown_machines() -> None:
    assert labgen("trace", "no-such-machine", "--", "true").returncode == 2
    assert labgen("trace", "port-forwarding").returncode == 2
