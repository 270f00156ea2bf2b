"""The kernel walk read from a recorded bpftrace run (28.5 machine, kernel 6.18)."""

import json
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from labgen.inmachine import kernel, kernel_run

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


def test_recorded_script_run_to_eth0_walks_docker0_the_veth_and_the_container() -> None:
    # kernel_run.script's whole output on a 28.5 machine: curl to its eth0 address.
    raw = (DATA / "run-28.5-eth0.txt").read_text()
    walk = kernel_run.read_run(raw, "k2a", "curl -s http://172.30.0.2:5000/")
    assert walk.status == 0
    request = [f for f in walk.flows if f[0].dst == "172.17.0.2"]
    hops = [(h.netns, h.dev, h.direction) for f in request for h in f]
    assert ("machine", "docker0", "out") in hops
    assert ("http-server", "eth0", "in") in hops  # named by docker inspect of its pid
    assert any(dev.startswith("veth") for _, dev, _ in hops)
    assert "NETFILTER_DROP" in walk.reasons.values()
    assert json.loads(json.dumps(walk.to_json()))["flows"]


def test_recorded_localhost_run_keeps_curl_on_lo_and_docker_proxy_across_docker0() -> None:
    raw = (DATA / "run-28.5-localhost.txt").read_text()
    walk = kernel_run.read_run(raw, "k2a", "curl -s localhost:5000")
    curl = [f for f in walk.flows if f[0].src == "127.0.0.1"]
    assert curl and all(h.dev == "lo" for f in curl for h in f)
    proxy = [f for f in walk.flows if f[0].src == "172.17.0.1"]  # docker-proxy's own connection
    assert proxy and any(h.dev == "docker0" for f in proxy for h in f)


def test_a_run_without_its_events_is_an_error_never_an_empty_walk() -> None:
    with pytest.raises(ValueError, match="events"):
        kernel_run.read_run(
            "@@labgen-trace begin status\n0\n\n@@labgen-trace end status\n", "m", "c"
        )


def test_script_quotes_the_command_and_checks_btf_and_bpftrace_first() -> None:
    text = kernel_run.script("curl 'a b' && echo $HOME")
    assert shlex.quote("curl 'a b' && echo $HOME") in text
    assert text.index("/sys/kernel/btf/vmlinux") < text.index("unshare -m")
    assert text.index("command -v bpftrace") < text.index("unshare -m")


def test_script_run_without_bpftrace_exits_missing_saying_what(tmp_path: Path) -> None:
    # The script itself, run here with a PATH that holds no bpftrace: it stops before
    # starting anything, with the status the callers turn into exit 2 and the part named.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("mktemp", "rm"):
        found = shutil.which(tool)
        assert found
        (bin_dir / tool).symlink_to(found)
    proc = subprocess.run(
        ["/bin/bash", "-c", kernel_run.script("true")],
        env={"PATH": str(bin_dir)},
        capture_output=True,
        text=True,
    )
    assert proc.returncode == kernel_run.MISSING
    assert "bpftrace is not installed" in proc.stderr or "no BTF" in proc.stderr
    assert "@@labgen-trace" not in proc.stdout


def test_a_drop_reads_with_its_reason_name_in_text_and_json() -> None:
    events = kernel.parse_events((DATA / "bpftrace-28.5-raw-drop.txt").read_text())
    walk = kernel.walk("k28", "curl 172.17.0.2:5000", events, {MACHINE_NS: "machine"})
    walk.reasons = kernel.drop_reasons((DATA / "kfree_skb-format-6.18.txt").read_text())
    assert "dropped: 10.99.0.2 → 172.17.0.2 at nft_do_chain (NETFILTER_DROP)" in kernel.plain(walk)
    data = json.loads(json.dumps(walk.to_json()))
    assert {d["reason_name"] for d in data["drops"] if d["src"] == "10.99.0.2"} == {
        "NETFILTER_DROP"
    }
    assert "raw" not in data
