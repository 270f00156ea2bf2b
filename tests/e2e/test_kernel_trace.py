"""`labgen trace --kernel` on a real port-forwarding machine: the interfaces and
namespaces each request crossed, as bpftrace saw them, and a drop with its reason.

One machine per engine, the server started by the lab's own steps (`--all` would end
with stop-server: nothing left to reach); bring_up destroys it even when a test fails.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from helpers import labgen, show

pytestmark = pytest.mark.e2e

LAB = "port-forwarding"
ENGINES = ("28.5", "26.1", "20.10")
SECOND_NS = (
    "sudo sh -c 'ip netns add lab2 && ip link add vout type veth peer name vin"
    " && ip link set vin netns lab2 && ip addr add 10.99.0.1/24 dev vout && ip link set vout up"
    " && ip -n lab2 addr add 10.99.0.2/24 dev vin && ip -n lab2 link set vin up"
    " && ip -n lab2 route add default via 10.99.0.1'"
)


def walk(*command: str) -> dict:
    proc = labgen("trace", LAB, "--kernel", "--json", "--", *command)
    assert proc.stdout.strip(), show(proc)
    return json.loads(proc.stdout)


def hops(result: dict, src: str | None = None) -> list[tuple[str, str, str]]:
    """(namespace, interface, direction) of every flow (from `src` only, if given)."""
    return [
        (h["netns"], h["dev"], h["direction"])
        for flow in result["flows"]
        if src is None or flow[0]["src"] == src
        for h in flow
    ]


def machine_sh(line: str) -> str:
    proc = labgen("ssh", LAB, "--", line)
    assert proc.returncode == 0, show(proc)
    return proc.stdout.strip()


@pytest.mark.parametrize("engine", ENGINES)
def test_the_kernel_walk_of_port_forwarding(bring_up: Callable[..., str], engine: str) -> None:
    bring_up(LAB, "--engine", engine)
    ran = labgen("run", LAB, "nat-baseline", "publish-port")
    assert ran.returncode == 0, show(ran)
    eth0 = machine_sh("ip -4 -br addr show dev eth0 | awk '{print $3}' | cut -d/ -f1")
    server = machine_sh("sudo docker inspect -f '{{.NetworkSettings.IPAddress}}' http-server")
    assert server == "172.17.0.2"

    # To eth0's address: DNAT in OUTPUT, out on docker0, across the veth, into the
    # container's eth0; the text names every part.
    text = labgen("trace", LAB, "--kernel", "--", f"curl -s -o /dev/null http://{eth0}:5000/")
    assert text.returncode == 0, show(text)
    for part in ("docker0", "veth", "eth0", "http-server", server):
        assert part in text.stdout, show(text)
    request = hops(walk(f"curl -s -o /dev/null http://{eth0}:5000/"), eth0)
    assert ("machine", "docker0", "out") in request
    assert any(dev.startswith("veth") for ns, dev, _ in request if ns == "machine")
    assert ("http-server", "eth0", "in") in request

    # localhost: curl's own connection never leaves lo (docker-proxy answers it); the
    # proxy's second connection, from docker0's address, is the one that crosses.
    local = walk("curl -s -o /dev/null localhost:5000")
    assert local["status"] == 0
    curl = hops(local, "127.0.0.1")
    assert curl and {dev for _, dev, _ in curl} == {"lo"}
    assert ("machine", "docker0", "out") in hops(local, "172.17.0.1")

    # The hairpin: another container asks eth0's address. Its request goes out of its
    # eth0 and into the machine on docker0, where the DNAT rule (`! -i docker0`) does not
    # apply: docker-proxy's socket answers it, and the proxy's own connection from
    # docker0's address reaches http-server (the userland proxy, every engine's default).
    # The lab's own offline image, never pulled (the machine has no registry).
    hairpin = walk(
        "sudo docker run --rm --pull never python:3.7-slim python3 -c "
        f"\"import urllib.request; urllib.request.urlopen('http://{eth0}:5000/')\""
    )
    assert hairpin["status"] == 0, (hairpin["stderr"], hairpin["stdout"])
    clients = {
        flow[0]["src"]
        for flow in hairpin["flows"]
        if flow[0]["src"].startswith("172.17.0.") and flow[0]["src"] not in (server, "172.17.0.1")
    }
    assert clients, hairpin
    from_client = [hop for src in clients for hop in hops(hairpin, src)]
    assert ("machine", "docker0", "in") in from_client, hairpin
    assert any(dev == "eth0" and way == "out" for _, dev, way in from_client), hairpin
    assert ("http-server", "eth0", "in") in hops(hairpin, "172.17.0.1"), hairpin

    raw = labgen("trace", LAB, "--kernel", "--raw", "--", "curl -s -o /dev/null localhost:5000")
    assert raw.returncode == 0, show(raw)
    assert "tracepoint:net:netif_receive_skb" in raw.stdout

    if engine == "28.5":
        # From a second namespace on the machine's side (not docker0) straight to the
        # container: raw PREROUTING's `! -i docker0 -j DROP` frees it in nft_do_chain.
        machine_sh(SECOND_NS)
        dropped = walk(f"sudo ip netns exec lab2 curl -s -m 2 http://{server}:5000/")
        assert dropped["status"] != 0
        assert ("netns lab2", "vin", "out") in hops(dropped)
        reasons = {d["reason_name"] for d in dropped["drops"] if d["dst"] == server}
        assert reasons == {"NETFILTER_DROP"}, dropped
        assert not any(dev == "docker0" for _, dev, _ in hops(dropped))
