"""The network-state snapshot and its diff, from raw outputs recorded on real lab machines.

The recorded files (tests/unit/data/snapshot/, see its README) are what
SNAPSHOT_COMMAND printed on port-forwarding and netns machines between steps.
"""

from __future__ import annotations

import io
import json
import re
import shlex
import subprocess
from pathlib import Path

import pytest
from helpers import PUBLISH_ACCEPT as ACCEPT
from helpers import PUBLISH_DNAT as DNAT
from helpers import PUBLISH_MASQUERADE as MASQUERADE
from labgen.network import snapshot
from labgen.network.diff import diff, render_diff
from labgen.network.snapshot import KINDS, Snapshot, SnapshotError, parse_snapshot

DATA = Path(__file__).resolve().parent / "data" / "snapshot"

# The recorded machine's container veth (its name is random, its peer eth0 was index 3).
PF_VETH = "veth70f9266@if3 (veth, peer in netns 1) master docker0 up mtu 1500"
NS_VETH = "vethfec39f1@if3 (veth, peer in netns 1) master docker0 up mtu 1500"
DOCKER_PROXY = "listening tcp 0.0.0.0:5000 (docker-proxy)"


def raw(name: str) -> str:
    return (DATA / f"{name}.txt").read_text(encoding="utf-8")


def snap(name: str) -> Snapshot:
    return parse_snapshot(raw(name))


# -- what a step changed, on recorded machines -------------------------------------------


def test_publish_port_adds_the_dnat_and_masquerade_rules_a_veth_and_docker_proxy() -> None:
    d = diff(
        snap("port-forwarding-before-publish-port"), snap("port-forwarding-after-publish-port")
    )

    assert d.to_dict() == {
        "rules": {"added": [ACCEPT, DNAT, MASQUERADE], "removed": []},
        "interfaces": {"added": [PF_VETH], "removed": []},
        "listeners": {"added": [DOCKER_PROXY], "removed": []},
    }
    assert render_diff(d) == [
        f"+ {ACCEPT}",
        f"+ {DNAT}",
        f"+ {MASQUERADE}",
        f"+ {PF_VETH}",
        f"+ {DOCKER_PROXY}",
    ]


def test_publish_port_hides_what_moved_by_itself() -> None:
    """The raw outputs differ in carrier state, a route's linkdown flag, counters and
    timers, pids; none of it is a change of the configuration."""
    before, after = (
        raw("port-forwarding-before-publish-port"),
        raw("port-forwarding-after-publish-port"),
    )
    # The noise is really there in the raw data ...
    assert '"flags":["linkdown"]' in before and '"flags":["linkdown"]' not in after
    assert '"operstate":"DOWN"' in before
    assert _legacy_counters(before) != _legacy_counters(after)
    # ... and absent from the diff.
    d = diff(parse_snapshot(before), parse_snapshot(after))
    assert d.added("addresses") == [] and d.added("routes") == [] and d.removed() == []
    assert not any(re.search(r"\[\d+:\d+\]|timer|operstate|pid=", line) for line in render_diff(d))


def test_counters_and_timers_alone_give_an_empty_diff() -> None:
    """curl, `iptables -Z` and the count steps move only counters, timers and queues."""
    after_publish = raw("port-forwarding-after-publish-port")
    after_counting = raw("port-forwarding-after-count-eth0")
    assert after_publish != after_counting
    assert _legacy_counters(after_publish) != _legacy_counters(after_counting)
    assert ":PREROUTING ACCEPT [3:180]" in after_counting  # the nf_tables nat table counted too

    d = diff(parse_snapshot(after_publish), parse_snapshot(after_counting))

    assert d.is_empty
    assert render_diff(d) == []


def test_stop_server_removes_what_publish_port_added() -> None:
    published = snap("port-forwarding-after-publish-port")
    stopped = snap("port-forwarding-after-stop-server")

    d = diff(published, stopped)

    assert d.removed() == [ACCEPT, DNAT, MASQUERADE, PF_VETH, DOCKER_PROXY]
    assert d.added() == []
    assert render_diff(d)[0] == f"- {ACCEPT}"
    assert diff(snap("port-forwarding-before-publish-port"), stopped).is_empty


def test_run_container_adds_a_veth_on_docker0_and_no_namespace_name() -> None:
    d = diff(snap("netns-fresh"), snap("netns-after-run-container"))

    assert d.to_dict() == {"interfaces": {"added": [NS_VETH], "removed": []}}


def test_link_netns_adds_the_namespace_name_and_nothing_else() -> None:
    d = diff(snap("netns-after-run-container"), snap("netns-after-link-netns"))

    assert d.to_dict() == {"namespaces": {"added": ["netns nstest (id 1)"], "removed": []}}
    assert render_diff(d) == ["+ netns nstest (id 1)"]


def test_a_recorded_snapshot_reads_as_the_machine_shows_it() -> None:
    s = snap("port-forwarding-after-publish-port")

    assert "nat chain DOCKER" in s.rules
    assert "nat chain POSTROUTING policy ACCEPT" in s.rules
    assert "nat PREROUTING: -A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER" in s.rules
    assert "legacy nat chain PREROUTING policy ACCEPT" in s.rules  # the outer Docker's leftover
    assert s.interfaces == {
        "lo (loopback) up mtu 65536",
        "docker0 (bridge) up mtu 1500",
        "eth0@if133 (veth, peer in netns 0) up mtu 1500",
        PF_VETH,
    }
    assert s.addresses == {
        "lo inet 127.0.0.1/8",
        "docker0 inet 172.17.0.1/16",
        "eth0 inet 172.30.0.2/24",
    }
    assert "route 172.17.0.0/16 dev docker0 proto kernel scope link src 172.17.0.1" in s.routes
    assert "route default via 172.30.0.1 dev eth0" in s.routes
    assert s.namespaces == frozenset()  # /var/run/netns does not exist: `ip` prints nothing
    # The outer Docker's DNS listeners on 127.0.0.11 (no process visible) are left out.
    assert s.listeners == {
        "listening tcp 0.0.0.0:22 (sshd)",
        "listening tcp [::]:22 (sshd)",
        DOCKER_PROXY,
    }


def _legacy_counters(text: str) -> list[str]:
    legacy = text.split("@@labgen-snapshot begin iptables-legacy", 1)[1]
    return re.findall(r"\[\d+:\d+\]", legacy.split("@@labgen-snapshot end", 1)[0])


# -- the parsers, on small made-up inputs ------------------------------------------------


def make_raw(**sections: str) -> str:
    """A raw snapshot: the required sections (empty unless given), all with status 0."""
    defaults = {name: "" for name in ("iptables", "ip6tables", "links", "routes", "netns")}
    defaults["listeners"] = ""
    defaults.update(sections)
    return "".join(
        f"@@labgen-snapshot begin {name}\n{body}\n\n@@labgen-snapshot end {name} 0\n"
        for name, body in defaults.items()
    )


def test_iptables_counters_comments_and_position_do_not_matter() -> None:
    one = """# Generated by iptables-save v1.8.9 on Mon Jan  1 00:00:00 2026
*nat
:PREROUTING ACCEPT [10:600]
:DOCKER - [0:0]
-A PREROUTING -j DOCKER
-A DOCKER -i docker0 -j RETURN
COMMIT
"""
    two = """# Generated by iptables-save v1.8.9 on Tue Jan  2 00:00:00 2026
*nat
:PREROUTING ACCEPT [99:9999]
:DOCKER - [5:300]
[7:420] -A DOCKER -i docker0 -j RETURN
[3:180] -A PREROUTING -j DOCKER
COMMIT
"""
    assert diff(
        parse_snapshot(make_raw(iptables=one)), parse_snapshot(make_raw(iptables=two))
    ).is_empty


def test_iptables_items_name_family_table_and_chain() -> None:
    rules = "*nat\n:POSTROUTING ACCEPT [0:0]\n:DOCKER - [0:0]\n-A DOCKER -j RETURN\nCOMMIT\n"
    s = parse_snapshot(make_raw(iptables=rules, ip6tables=rules, **{"iptables-legacy": rules}))
    assert s.rules == {
        "nat chain POSTROUTING policy ACCEPT",
        "nat chain DOCKER",
        "nat DOCKER: -A DOCKER -j RETURN",
        "ip6 nat chain POSTROUTING policy ACCEPT",
        "ip6 nat chain DOCKER",
        "ip6 nat DOCKER: -A DOCKER -j RETURN",
        "legacy nat chain POSTROUTING policy ACCEPT",
        "legacy nat chain DOCKER",
        "legacy nat DOCKER: -A DOCKER -j RETURN",
    }


def test_a_policy_change_and_a_duplicated_rule_are_changes() -> None:
    before = "*filter\n:FORWARD ACCEPT [0:0]\n-A FORWARD -j DROP\nCOMMIT\n"
    after = "*filter\n:FORWARD DROP [0:0]\n-A FORWARD -j DROP\n-A FORWARD -j DROP\nCOMMIT\n"
    d = diff(parse_snapshot(make_raw(iptables=before)), parse_snapshot(make_raw(iptables=after)))
    assert render_diff(d) == [
        "- filter chain FORWARD policy ACCEPT",
        "+ filter chain FORWARD policy DROP",
        "+ filter FORWARD: -A FORWARD -j DROP #2",
    ]


def test_a_new_chain_is_shown_before_its_rules() -> None:
    after = "*nat\n:DOCKER - [0:0]\n:A - [0:0]\n-A DOCKER -j RETURN\n-A A -j RETURN\nCOMMIT\n"
    d = diff(parse_snapshot(make_raw()), parse_snapshot(make_raw(iptables=after)))
    assert render_diff(d) == [
        "+ nat chain A",
        "+ nat chain DOCKER",
        "+ nat A: -A A -j RETURN",
        "+ nat DOCKER: -A DOCKER -j RETURN",
    ]


def _link(**fields: object) -> dict[str, object]:
    base: dict[str, object] = {
        "ifindex": 7,
        "ifname": "veth1",
        "flags": ["BROADCAST", "MULTICAST", "UP", "LOWER_UP"],
        "mtu": 1500,
        "qdisc": "noqueue",
        "operstate": "UP",
        "address": "66:69:86:65:ab:40",
        "promiscuity": 1,
        "link_index": 6,
        "link_netnsid": 1,
        "master": "docker0",
        "linkinfo": {
            "info_kind": "veth",
            "info_slave_kind": "bridge",
            "info_slave_data": {"state": "forwarding", "forward_delay_timer": 14.43},
        },
        "addr_info": [],
    }
    base.update(fields)
    return base


def _links(*links: dict[str, object]) -> str:
    return json.dumps(list(links))


def test_carrier_mac_qdisc_promiscuity_and_port_state_do_not_matter() -> None:
    settling = _link(
        flags=["NO-CARRIER", "BROADCAST", "MULTICAST", "UP"],
        operstate="LOWERLAYERDOWN",
        qdisc="noop",
        address="02:42:00:00:00:01",
        promiscuity=0,
        linkinfo={"info_kind": "veth", "info_slave_data": {"state": "disabled"}},
    )
    a = parse_snapshot(make_raw(links=_links(settling)))
    b = parse_snapshot(make_raw(links=_links(_link())))
    assert diff(a, b).is_empty
    assert b.interfaces == {"veth1@if6 (veth, peer in netns 1) master docker0 up mtu 1500"}


def test_admin_state_mtu_and_master_are_changes() -> None:
    before = parse_snapshot(make_raw(links=_links(_link())))
    after = parse_snapshot(
        make_raw(links=_links(_link(flags=["BROADCAST"], mtu=1400, master=None)))
    )
    assert render_diff(diff(before, after)) == [
        "- veth1@if6 (veth, peer in netns 1) master docker0 up mtu 1500",
        "+ veth1@if6 (veth, peer in netns 1) down mtu 1400",
    ]


def test_naming_the_peer_namespace_is_no_change_of_the_link() -> None:
    """`ip` names the peer's namespace once /var/run/netns has it; the id is the same."""
    before = parse_snapshot(make_raw(links=_links(_link())))
    named = _link(link_netns="nstest")
    del named["link_netnsid"]
    after = parse_snapshot(
        make_raw(links=_links(named), netns=json.dumps([{"name": "nstest", "id": 1}]))
    )
    assert diff(before, after).to_dict() == {
        "namespaces": {"added": ["netns nstest (id 1)"], "removed": []}
    }


def test_a_veth_pair_in_one_namespace_names_its_peer() -> None:
    pair = [
        {
            "ifname": "veth0",
            "link": "veth1",
            "flags": [],
            "mtu": 1500,
            "linkinfo": {"info_kind": "veth"},
        },
        {
            "ifname": "veth1",
            "link": "veth0",
            "flags": ["UP"],
            "mtu": 1500,
            "linkinfo": {"info_kind": "veth"},
        },
    ]
    s = parse_snapshot(make_raw(links=json.dumps(pair)))
    assert s.interfaces == {"veth0@veth1 (veth) down mtu 1500", "veth1@veth0 (veth) up mtu 1500"}


def test_link_local_and_temporary_addresses_and_lifetimes_do_not_matter() -> None:
    def with_addrs(*addrs: dict[str, object]) -> Snapshot:
        return parse_snapshot(make_raw(links=_links(_link(ifname="br0", addr_info=list(addrs)))))

    v4 = {
        "family": "inet",
        "local": "10.0.0.1",
        "prefixlen": 24,
        "label": "br0",
        "valid_life_time": 4294967295,
    }
    v6 = {"family": "inet6", "local": "2001:db8::1", "prefixlen": 64, "scope": "global"}
    plain = with_addrs(v4, v6)
    busy = with_addrs(
        {**v4, "valid_life_time": 3600, "dynamic": True},
        {**v6, "tentative": True},
        {"family": "inet6", "local": "fe80::1", "prefixlen": 64, "scope": "link"},
        {
            "family": "inet6",
            "local": "2001:db8::9",
            "prefixlen": 64,
            "scope": "global",
            "temporary": True,
        },
    )
    assert diff(plain, busy).is_empty
    assert plain.addresses == {"br0 inet 10.0.0.1/24", "br0 inet6 2001:db8::1/64"}


def test_a_routes_linkdown_flag_does_not_matter() -> None:
    route = {
        "dst": "172.17.0.0/16",
        "dev": "docker0",
        "protocol": "kernel",
        "scope": "link",
        "prefsrc": "172.17.0.1",
    }
    down = parse_snapshot(make_raw(routes=json.dumps([{**route, "flags": ["linkdown"]}])))
    up = parse_snapshot(make_raw(routes=json.dumps([{**route, "flags": []}])))
    assert diff(down, up).is_empty
    assert up.routes == {"route 172.17.0.0/16 dev docker0 proto kernel scope link src 172.17.0.1"}


def test_listeners_keep_process_names_not_pids_or_queues() -> None:
    before = (
        'tcp LISTEN 0 4096 0.0.0.0:5000 0.0.0.0:* users:(("docker-proxy",pid=1079,fd=4))\n'
        "udp UNCONN 0 0 127.0.0.11:46761 0.0.0.0:*\n"
        'udp UNCONN 0 0 0.0.0.0:68 0.0.0.0:* users:(("dhclient",pid=5,fd=6))\n'
    )
    after = (
        'tcp LISTEN 3 4096 0.0.0.0:5000 0.0.0.0:* users:(("docker-proxy",pid=2001,fd=7))\n'
        "udp UNCONN 0 0 127.0.0.11:51234 0.0.0.0:*\n"
        'udp UNCONN 0 0 0.0.0.0:68 0.0.0.0:* users:(("dhclient",pid=5,fd=6))\n'
    )
    a = parse_snapshot(make_raw(listeners=before))
    b = parse_snapshot(make_raw(listeners=after))
    assert diff(a, b).is_empty
    assert a.listeners == {
        "listening tcp 0.0.0.0:5000 (docker-proxy)",
        "listening udp 0.0.0.0:68 (dhclient)",
    }


def test_a_listener_on_127_0_0_11_with_a_process_is_kept() -> None:
    line = 'udp UNCONN 0 0 127.0.0.11:53 0.0.0.0:* users:(("dnsmasq",pid=9,fd=4))\n'
    assert parse_snapshot(make_raw(listeners=line)).listeners == {
        "listening udp 127.0.0.11:53 (dnsmasq)"
    }


def test_no_namespaces_directory_means_no_namespaces() -> None:
    assert parse_snapshot(make_raw(netns="")).namespaces == frozenset()
    named = json.dumps([{"name": "b"}, {"name": "a", "id": 0}])
    assert parse_snapshot(make_raw(netns=named)).namespaces == {"netns a (id 0)", "netns b"}


# -- bad input, and the command itself ---------------------------------------------------


def test_a_failed_section_is_an_error_not_an_empty_state() -> None:
    text = make_raw().replace("end iptables 0", "end iptables 4")
    with pytest.raises(SnapshotError, match="iptables failed"):
        parse_snapshot(text)


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "no section iptables"),
        ("@@labgen-snapshot begin iptables\n*nat\n", "cut short"),
        (make_raw(links="not json"), "links section is not JSON"),
        (make_raw(links="{}"), "links section is not a JSON list"),
        ("@@labgen-snapshot bogus\n", "unexpected line"),
    ],
)
def test_bad_snapshots_are_refused(text: str, message: str) -> None:
    with pytest.raises(SnapshotError, match=message):
        parse_snapshot(text)


def test_diff_helpers() -> None:
    d = diff(
        snap("port-forwarding-before-publish-port"), snap("port-forwarding-after-publish-port")
    )
    assert not d.is_empty
    assert d.added("listeners") == [DOCKER_PROXY]
    assert d.added("namespaces") == []
    assert [c.kind for c in d.changes] == [k for k in KINDS if k in d.to_dict()]
    with pytest.raises(ValueError, match="unknown kind"):
        Snapshot().of("sockets")


def test_the_command_is_one_sudo_call_whose_script_parses() -> None:
    words = shlex.split(snapshot.SNAPSHOT_COMMAND)
    assert words[:4] == ["sudo", "-n", "sh", "-c"] and len(words) == 5
    proc = subprocess.run(["sh", "-n", "-c", words[4]], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    for tool in (
        "iptables-save",
        "ip6tables-save",
        "ip -d -j addr",
        "ip -j route",
        "ip -j netns list",
        "ss -H -l -t -u -n -p",
    ):
        assert tool in words[4]


def test_take_snapshot_runs_the_command_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def fake_run(client: object, command: str, stdout: io.BytesIO, stderr: io.BytesIO) -> int:
        calls.append(command)
        stdout.write(raw("netns-after-link-netns").encode())
        return 0

    monkeypatch.setattr(snapshot.ssh, "run", fake_run)
    s = snapshot.take_snapshot(object())  # type: ignore[arg-type]
    assert calls == [snapshot.SNAPSHOT_COMMAND]
    assert s == snap("netns-after-link-netns")


def test_take_snapshot_reports_a_failed_command(monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_run(client: object, command: str, stdout: io.BytesIO, stderr: io.BytesIO) -> int:
        stderr.write(b"sudo: a password is required\n")
        return 1

    monkeypatch.setattr(snapshot.ssh, "run", fake_run)
    with pytest.raises(SnapshotError, match="exit 1.*password is required"):
        snapshot.take_snapshot(object())  # type: ignore[arg-type]
