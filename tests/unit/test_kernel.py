"""The kernel walk read from a recorded bpftrace run (28.5 machine, kernel 6.18)."""

from pathlib import Path

from labgen.inmachine import kernel

DATA = Path(__file__).parent / "data" / "kernel"
MACHINE_NS = 4026532186  # the machine's netns in that run
CONTAINER_NS = 4026532260  # http-server's


def test_recorded_localhost_request_walks_lo_docker0_and_the_veth() -> None:
    text = (DATA / "bpftrace-28.5-localhost.txt").read_text()
    events = kernel.parse_events(text)
    assert len(events) == sum(line.startswith("tracepoint:") for line in text.splitlines())
    names = {MACHINE_NS: "machine", CONTAINER_NS: "http-server"}
    walk = kernel.walk("k28", "curl -s localhost:5000", events, names)
    devices = {(h.netns, h.dev) for flow in walk.flows for h in flow}
    assert ("machine", "lo") in devices
    assert ("machine", "docker0") in devices
    assert ("http-server", "eth0") in devices
    # The host's own namespace (its bridge to the machine) is seen by the probes, never shown.
    assert walk.hidden > 0
    assert all(h.netns in names.values() for flow in walk.flows for h in flow)
    assert "br-" not in str(walk.to_json())


def test_policy_is_on_without_a_file_and_off_when_written() -> None:
    assert kernel.enabled(None)
    assert not kernel.enabled("off\n")
    assert kernel.POLICY_FILE in kernel.policy_command(False)


def test_recorded_eth0_request_is_dnated_across_docker0_and_the_veth_into_the_container() -> None:
    # The full program's output: curl to the machine's eth0 address (172.30.0.2) port 5000.
    events = kernel.parse_events((DATA / "bpftrace-28.5-eth0.txt").read_text())
    names = {MACHINE_NS: "machine", CONTAINER_NS: "http-server"}
    walk = kernel.walk("k28", "curl -s http://172.30.0.2:5000/", events, names)
    to_server = [f for f in walk.flows if f[0].dst == "172.17.0.2"]
    hops = [(h.netns, h.dev, h.direction) for f in to_server for h in f]
    assert ("machine", "docker0", "out") in hops
    assert ("http-server", "eth0", "in") in hops
    syn = [e for e in events if e.netns == CONTAINER_NS and e.dport == 5000]
    assert syn and syn[0].src == "172.30.0.2"  # DNAT rewrote the destination, not the source
    # Other machines' and the host's events of the same run (300 kept of 2.9k), none shown.
    assert walk.hidden >= 300
    assert all(h.netns in names.values() for f in walk.flows for h in f)


def test_recorded_raw_drop_on_28_5_is_a_netfilter_drop_in_the_machine() -> None:
    # 28.5: from a second namespace (veth on the machine's side, not on docker0) to
    # 172.17.0.2:5000; raw PREROUTING's `-d 172.17.0.2/32 ! -i docker0 -j DROP` drops it.
    events = kernel.parse_events((DATA / "bpftrace-28.5-raw-drop.txt").read_text())
    reasons = kernel.drop_reasons((DATA / "kfree_skb-format-6.18.txt").read_text())
    walk = kernel.walk("k28", "curl 172.17.0.2:5000", events, {MACHINE_NS: "machine"})
    drops = [d for d in walk.drops if d.src == "10.99.0.2" and d.dst == "172.17.0.2"]
    assert drops, "the SYN and its retry were dropped"
    assert {reasons[d.reason] for d in drops} == {"NETFILTER_DROP"}
    assert {d.location for d in drops} == {"nft_do_chain"}
    # It arrived on the machine's vout and went no further: never on docker0.
    hops = [(h.dev, h.direction) for f in walk.flows for h in f]
    assert ("vout", "in") in hops and not any(dev == "docker0" for dev, _ in hops)
