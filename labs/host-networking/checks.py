"""Checks of the host-networking lab: each holds right after the step it names.

Run by `labgen check host-networking`, over SSH with sudo, against the lab machine.

The "nothing happened" facts of --net=host (no NAT rule, no veth on docker0) are
already true on a fresh machine, so each is checked together with what the step
does: the container's own python3 listening on the machine's port 5000, in the
machine's network namespace. Otherwise such a check would pass before its step.
"""

import pytest

from labgen.checklib import (
    bridge_ports,
    container_ip,
    container_log,
    container_pid,
    listeners,
    rules,
)

CONTAINER = "http-server"
PORT = 5000


def assert_server_in_host_namespace(host):
    """The step's effect: the container's python3 owns the machine's 0.0.0.0:5000."""
    pid = container_pid(host, CONTAINER)
    mode = host.check_output(f"docker inspect -f '{{{{.HostConfig.NetworkMode}}}}' {CONTAINER}")
    assert mode == "host", f"{CONTAINER} runs with network mode {mode!r}, not host"
    netns = host.check_output(f"readlink /proc/{pid}/ns/net /proc/self/ns/net").split()
    assert netns[0] == netns[1], f"the server's netns {netns[0]} is not the machine's {netns[1]}"
    owners = listeners(host, PORT)
    assert ("python3", pid) in owners, f"the server (pid {pid}) does not own port {PORT}: {owners}"
    return pid


@pytest.mark.step("host-network")
def test_server_listens_on_the_machines_own_port(host):
    """the container's python3 itself listens on the machine's 0.0.0.0:5000 (no docker-proxy)"""
    pid = assert_server_in_host_namespace(host)
    assert host.socket(f"tcp://0.0.0.0:{PORT}").is_listening
    owners = listeners(host, PORT)
    assert owners == [("python3", pid)], f"port {PORT} has other listeners: {owners}"


@pytest.mark.step("host-network")
def test_no_nat_rule_for_port_5000(host):
    """with the server on the machine's port 5000, nat has no DNAT and no MASQUERADE for it"""
    assert_server_in_host_namespace(host)
    nat = rules(host, "nat")
    assert [r for r in nat if "-j DNAT" in r] == [], nat
    assert [r for r in nat if "-j MASQUERADE" in r and f"--dport {PORT}" in r] == [], nat
    assert [r for r in nat if str(PORT) in r] == [], nat


@pytest.mark.step("host-network")
def test_no_veth_on_docker0(host):
    """with the server in the machine's network namespace, nothing is plugged into docker0"""
    assert_server_in_host_namespace(host)
    assert container_ip(host, CONTAINER) is None  # not on the bridge network at all
    ports = bridge_ports(host, "docker0")
    assert ports == [], f"docker0 has ports: {ports}"


@pytest.mark.step("curl")
def test_server_saw_the_request_come_from_127_0_0_1(host):
    """the server logged a GET from 127.0.0.1, and curl localhost:5000 answers 200"""
    # The log first: this check's own curl below must not be what makes it pass.
    log = container_log(host, CONTAINER)
    requests = [line for line in log if '"GET / HTTP/1.1" 200' in line]
    assert requests, "no GET / in the server's log yet"
    others = [line for line in requests if not line.startswith("127.0.0.1 - - ")]
    assert others == [], f"the server saw requests from another address: {others}"
    code = host.check_output(f"curl -s -o /dev/null -w '%{{http_code}}' http://localhost:{PORT}/")
    assert code == "200"
