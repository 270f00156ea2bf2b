"""`labgen trace` on a real port-forwarding machine, on every engine: the path of each request.

One machine per engine (CI time): publish-port once, then every assertion on it, from the
host (`labgen trace`) and inside the machine (`labgen-lab trace`, what the lab's steps
use). The bring_up fixture destroys the machine even when a test fails.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from helpers import labgen, show

pytestmark = pytest.mark.e2e

LAB = "port-forwarding"
ENGINES = ("20.10", "26.1", "28.5")
OUTPUT_JUMP = "-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER"
PREROUTING_JUMP = "-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER"
DNAT = "-A DOCKER ! -i docker0 -p tcp -m tcp --dport 5000 -j DNAT --to-destination 172.17.0.2:5000"
RETURN = "-A DOCKER -i docker0 -j RETURN"
MASQUERADE = (
    "-A POSTROUTING -s 172.17.0.2/32 -d 172.17.0.2/32 -p tcp -m tcp --dport 5000 -j MASQUERADE"
)
ETH0 = "$(ip -4 -br addr show dev eth0 | awk '{print $3}' | cut -d/ -f1)"
FROM_CONTAINER = (
    "docker run --rm python:3.7-slim python3 -c "
    "\"import urllib.request as u; print(u.urlopen('http://172.17.0.1:5000/').status)\""
)
CODE = "curl -s -o /dev/null -w '%{http_code}'"


def traced(*args: str) -> dict:
    proc = labgen("trace", LAB, "--json", *args)
    assert proc.returncode == 0, show(proc)
    return json.loads(proc.stdout)


def rules(result: dict) -> list[str]:
    return [h["rule"] for h in result["path"]["hits"] if h["rule"] is not None]


def policies(result: dict) -> list[str]:
    return [h["where"] for h in result["path"]["hits"] if h["rule"] is None]


def machine_sh(line: str) -> str:
    proc = labgen("ssh", LAB, "--", line)
    assert proc.returncode == 0, show(proc)
    return proc.stdout


@pytest.mark.parametrize("engine", ENGINES)
def test_the_port_forwarding_story(bring_up: Callable[..., str], engine: str) -> None:
    bring_up(LAB, "--engine", engine)
    ran = labgen("run", LAB, "nat-baseline", "publish-port")
    assert ran.returncode == 0, show(ran)
    nat_before = machine_sh("sudo iptables -t nat -S")

    # localhost: docker-proxy answers; no rule, at most chain policies (counted from
    # iptables 1.8.11 on: not on 20.10's 1.8.9, which the trace says in a note).
    localhost = traced("--", f"{CODE} localhost:5000")
    assert localhost["stdout"] == "200"
    assert rules(localhost) == []
    if engine == "20.10":
        assert localhost["iptables"].startswith("1.8.9")
        assert policies(localhost) == []
        notes = localhost["path"]["notes"]
        assert any("does not count packets at chain policies" in n for n in notes), notes
    else:
        assert "nat OUTPUT policy ACCEPT" in policies(localhost), localhost["path"]

    # eth0's address: OUTPUT jumps to DOCKER, DNAT once per connection.
    eth0 = traced("--", f"{CODE} http://{ETH0}:5000")
    assert eth0["stdout"] == "200"
    assert rules(eth0) == [OUTPUT_JUMP, DNAT]
    hits = {h["rule"]: h for h in eth0["path"]["hits"]}
    assert hits[DNAT]["packets"] == 1, "nat sees the first packet of a connection only"
    assert hits[DNAT]["depth"] == 1 and hits[OUTPUT_JUMP]["hook"] == "OUTPUT"
    twice = traced("--", f"for i in 1 2; do curl -s -o /dev/null http://{ETH0}:5000; done")
    assert {h["rule"]: h["packets"] for h in twice["path"]["hits"]}[DNAT] == 2

    # The hairpin: another container on docker0 enters at PREROUTING and RETURNs before
    # DNAT; docker-proxy takes it. Before 28 the hairpin MASQUERADE rule is there but
    # counts nothing; 28 writes none.
    hairpin = traced("--", FROM_CONTAINER)
    assert hairpin["stdout"].strip() == "200"
    assert rules(hairpin) == [PREROUTING_JUMP, RETURN]
    hairpin_rule = MASQUERADE in machine_sh("sudo iptables -t nat -S POSTROUTING")
    assert hairpin_rule == (engine != "28.5") and MASQUERADE not in rules(hairpin)

    # Nothing was zeroed: the DNAT rule's counter holds all three connections, and
    # the trace left the rules as they were.
    saved = machine_sh("sudo iptables-save -c -t nat")
    dnat_line = next(line for line in saved.splitlines() if DNAT in line)
    assert dnat_line.startswith("[3:"), dnat_line
    assert machine_sh("sudo iptables -t nat -S") == nat_before

    # For people: the table names the rule and the count; the exit status is the command's.
    human = labgen("trace", LAB, "--", f"curl -s http://{ETH0}:5000/nope; exit 3")
    assert human.returncode == 3, show(human)
    assert "DNAT" in human.stdout and "+1" in human.stdout

    # Inside the machine, as the lab's steps trace: plain text, the same path, and each
    # run kept as JSON for the checks.
    line = f"curl -s -o /dev/null http://{ETH0}:5000/?via=e2e"
    inside = labgen("ssh", LAB, "--", "labgen-lab trace --", line)
    assert inside.returncode == 0, show(inside)
    assert DNAT in inside.stdout and OUTPUT_JUMP in inside.stdout, inside.stdout
    kept = machine_sh("tail -n 1 /var/tmp/labgen-trace/traces.jsonl")
    assert rules(json.loads(kept)) == [OUTPUT_JUMP, DNAT]
    bad = labgen("ssh", LAB, "--", "labgen-lab trace --no-such-option -- true")
    assert bad.returncode == 2 and "unknown option" in bad.stderr, show(bad)

    # --packets: each packet's walk; the TRACE rules are gone afterwards, even when the
    # command fails.
    walked = traced("--packets", "--", f"curl -s -o /dev/null http://{ETH0}:5000")
    walks = walked["packets"]
    met = [w for w in walks if any(s["kind"] == "rule" for s in w["steps"])]
    assert len(met) == 1, walks
    assert [s["chain"] for s in met[0]["steps"]] == ["OUTPUT", "DOCKER"]
    assert met[0]["steps"][1]["rule"] == DNAT
    assert len(walks) > 5, "every packet of the connection is seen (raw and nat hooks)"
    failed = labgen("trace", LAB, "--packets", "--", "curl -s localhost:1; false")
    assert failed.returncode == 1, show(failed)
    raw = machine_sh("sudo iptables -t raw -S")
    assert "LABGEN-TRACE" not in raw and "TRACE" not in raw, raw


def test_trace_refuses_no_command_and_unknown_machines() -> None:
    assert labgen("trace", "no-such-machine", "--", "true").returncode == 2
    assert labgen("trace", LAB).returncode == 2
