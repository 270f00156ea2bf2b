"""The check helpers on a real machine, and the scaffold that verify calls red.

One machine, one story: user-bridge's network labnet with two busybox containers,
alpha and beta. The helpers read rules and counters inside a container's namespace,
its neighbours and the machine's, and ask Docker's embedded DNS for a name, from this
process over SSH (as `labgen check` does) and inside the machine (as `labgen-lab
check` does); a missing chain or table fails with a message, never a testinfra dump.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import testinfra
from helpers import labgen, show
from labgen.inmachine import checklib as c
from labgen.machine.instance import Instance

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
USER_BRIDGE = REPO / "tests" / "e2e" / "labs" / "user-bridge"
MACHINE = "checklib"


def ssh(*command: str) -> str:
    proc = labgen("ssh", MACHINE, "--", *command)
    assert proc.returncode == 0, show(proc)
    return proc.stdout


def refusal(call: Callable[[], Any]) -> str:
    """The message of the AssertionError `call` fails a check with."""
    with pytest.raises(AssertionError) as failed:
        call()
    message = str(failed.value)
    assert "CommandResult" not in message and "Unexpected exit code" not in message
    return message


def test_helpers_read_a_containers_namespace_and_ask_its_dns(
    bring_up: Callable[..., str],
) -> None:
    bring_up(str(USER_BRIDGE), "--name", MACHINE)
    ran = labgen("run", MACHINE, "create-network", "start-alpha")
    assert ran.returncode == 0, show(ran)
    ssh("docker run --pull never -d -t --name beta --network labnet busybox")
    ssh("docker exec alpha ping -c 1 -W 2 10.30.0.1")
    host = testinfra.get_host(
        "paramiko://default", ssh_config=str(Instance(MACHINE).ssh_config), sudo=True
    )
    alpha, beta = c.container_pid(host, "alpha"), c.container_pid(host, "beta")
    alpha_ip = c.container_ip(host, "alpha", network="labnet")
    beta_ip = c.container_ip(host, "beta", network="labnet")
    assert alpha_ip and beta_ip and alpha_ip != beta_ip

    # The embedded DNS is a DNAT in each container's own nat table, not the machine's.
    dns = [r for r in c.rules(host, "nat", "DOCKER_OUTPUT", pid=beta) if "udp --dport 53" in r]
    assert len(dns) == 1 and "-j DNAT --to-destination 127.0.0.11:" in dns[0], dns
    packets = c.rule_counters(host, "nat", pid=beta)[dns[0]][0]
    assert c.resolve(host, "alpha", pid=beta) == [alpha_ip]
    # One question is one packet through the DNAT: what a check that asks moves.
    assert c.rule_counters(host, "nat", pid=beta)[dns[0]][0] == packets + 1
    assert c.resolve(host, "beta", pid=alpha) == [beta_ip]
    assert c.resolve(host, "alpha", "AAAA", pid=beta) == []  # labnet has no IPv6

    # alpha's ping left each side's MAC in the other's neighbour table.
    bridge = next(p for p in c.links(host) if p["ifname"].startswith("br-"))["ifname"]
    alpha_eth0 = c.interface(host, "eth0", pid=alpha)
    inside = c.neighbour_macs(c.neighbours(host, "eth0", pid=alpha))
    assert inside["10.30.0.1"] == c.interface(host, bridge)["address"]
    assert c.neighbour_macs(c.neighbours(host, bridge))[alpha_ip] == alpha_eth0["address"]

    _missing_things_are_named(host, alpha, beta)
    _the_helpers_run_inside_the_machine(alpha_ip)


def _missing_things_are_named(host: Any, alpha: int, beta: int) -> None:
    """What does not exist, or does not answer, fails the check saying so."""
    # Docker 20.10 has no DOCKER-BRIDGE chain (28.x does): iptables-nft says "incompatible".
    message = refusal(lambda: c.rules(host, "filter", "DOCKER-BRIDGE"))
    assert message.startswith(
        "table 'filter' has no chain 'DOCKER-BRIDGE' in the machine's network namespace; "
        "its chains are: INPUT, FORWARD, OUTPUT, DOCKER"
    ), message
    message = refusal(lambda: c.rules(host, "nat", "DOCKER_OUTPUT"))
    assert "table 'nat' has no chain 'DOCKER_OUTPUT' in the machine's" in message, message
    message = refusal(lambda: c.rule_counters(host, "nosuch", pid=alpha))
    assert message.startswith(
        f"there is no iptables table 'nosuch' in the network namespace of pid {alpha}"
    )
    message = refusal(lambda: c.rules(host, "nosuch", netns="nosuch-ns"))
    assert "'nosuch-ns'" in message, message
    message = refusal(lambda: c.neighbours(host, "eth9", pid=alpha))
    assert 'Cannot find device "eth9"' in message, message
    message = refusal(lambda: c.resolve(host, "alpha", pid=beta, server="127.0.0.1"))
    assert message == (
        f"no DNS answer for 'alpha' in the network namespace of pid {beta}: "
        "no answer from 127.0.0.1: Connection refused"
    )
    message = refusal(lambda: c.resolve(host, "alpha", server="10.30.0.2", timeout=1))
    assert message.startswith("no DNS answer for 'alpha' in the machine's network namespace")


def _the_helpers_run_inside_the_machine(alpha_ip: str) -> None:
    """The copy in the machine, on Debian's Python and testinfra (`labgen-lab check`)."""
    script = (
        "import json, sys; sys.path.insert(0, '/opt/labgen/user-bridge'); import testinfra; "
        "from labgen import checklib as c; h = testinfra.get_host('local://'); "
        "beta = c.container_pid(h, 'beta'); "
        "print(json.dumps([c.resolve(h, 'alpha', pid=beta), "
        "c.neighbour_macs(c.neighbours(h, 'eth0', pid=c.container_pid(h, 'alpha')))]))"
    )
    answered, neighbours = json.loads(ssh(f"sudo python3 -c {json.dumps(script)}"))
    assert answered == [alpha_ip]
    assert "10.30.0.1" in neighbours


def test_a_new_lab_verifies_red_until_its_check_is_written(tmp_path: Path) -> None:
    """`labgen new` as made: lint passes, verify fails naming the check to write. The
    same lab with the placeholder line deleted verifies green: the red was the line's."""
    made = labgen("new", "scaffold", "--dir", str(tmp_path))
    assert made.returncode == 0, show(made)
    lint = labgen("lint", str(tmp_path / "scaffold"))
    assert lint.returncode == 0, show(lint)
    written = tmp_path / "scaffold-written"
    shutil.copytree(tmp_path / "scaffold", written)
    lab_yaml = written / "lab.yaml"
    lab_yaml.write_text(
        lab_yaml.read_text().replace("name: scaffold ", "name: scaffold-written ", 1)
    )
    checks = written / "checks.py"
    kept = [
        line for line in checks.read_text().splitlines() if "pytest.fail(NOT_WRITTEN" not in line
    ]
    checks.write_text("\n".join(kept) + "\n")

    proc = labgen("verify", str(tmp_path / "scaffold"), str(written), "-j", "2", "--json")
    assert proc.returncode == 1, show(proc)
    reports = {r["lab"]: r for r in json.loads(proc.stdout)}
    red = reports["scaffold"]
    assert red["ok"] is False and red["error"] == "", red
    start, look = red["steps"]
    assert (start["status"], look["status"]) == ("fail", "skipped"), red["steps"]
    assert "check test_container_demo_hangs_on_docker0[" in start["reason"]
    assert "not written yet: assert on what step start-container leaves" in start["reason"]
    green = reports["scaffold-written"]
    assert green["ok"] is True, green
    assert [s["status"] for s in green["steps"]] == ["pass", "ran"]
    assert red["destroyed"] and green["destroyed"]
