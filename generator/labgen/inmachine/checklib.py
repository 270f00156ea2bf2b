"""Helpers for lab checks: the seed's recurring questions, asked through testinfra's host.

Most take testinfra's `host` fixture; each quotes what it puts in a command. Those that
need something to be there (a running container, an interface) fail the check with an
AssertionError that says what is missing.

This module also runs inside the lab machine (`labgen-lab check`), on Debian's
Python 3.11 with testinfra 7: the standard library only.
"""

from __future__ import annotations

import json
import re
import shlex
from typing import Any

__all__ = [
    "rules",
    "rule_counters",
    "links",
    "link_kind",
    "interface",
    "ipv4_of",
    "ipv4_addresses",
    "veth_peer",
    "bridge_ports",
    "brctl_show",
    "listeners",
    "container_pid",
    "container_ip",
    "container_log",
]


def _in_netns(cmd: str, pid: int | None = None, netns: str | None = None) -> str:
    """`cmd` run in the network namespace of process `pid`, or of the named `netns`."""
    if pid is not None and netns is not None:
        raise ValueError("give pid or netns, not both")
    if pid is not None:
        return f"nsenter -t {shlex.quote(str(pid))} -n {cmd}"
    if netns is not None:
        return f"ip netns exec {shlex.quote(netns)} {cmd}"
    return cmd


def rules(host: Any, table: str, chain: str | None = None) -> list[str]:
    """`iptables -t TABLE -S [CHAIN]` as a list of rules, without iptables' warnings.

    >>> "-P PREROUTING ACCEPT" in rules(host, "nat", "PREROUTING")
    True
    """
    return [r for r in host.iptables.rules(table, chain) if not r.startswith("#")]


def rule_counters(host: Any, table: str) -> dict[str, tuple[int, int]]:
    """`iptables-save -c -t TABLE`: {rule as `iptables -S` prints it: (packets, bytes)}.

    >>> rule_counters(host, "nat")["-A DOCKER -i docker0 -j RETURN"]
    (0, 0)
    """
    counters: dict[str, tuple[int, int]] = {}
    for line in host.check_output(f"iptables-save -c -t {shlex.quote(table)}").splitlines():
        match = re.fullmatch(r"\[(\d+):(\d+)\] (-A .+)", line.strip())
        if match:
            counters[match.group(3)] = (int(match.group(1)), int(match.group(2)))
    return counters


def links(host: Any, *, pid: int | None = None, netns: str | None = None) -> list[dict[str, Any]]:
    """`ip -j -d link`: every interface with its index, kind, master, link index (veth peer).

    With `pid`, the interfaces of that process's network namespace (nsenter); with
    `netns`, those of a namespace `ip netns` knows by that name.

    >>> [i["ifname"] for i in links(host, pid=container_pid(host, "nstest"))]
    ['lo', 'eth0']
    """
    cmd = _in_netns("ip -j -d link show", pid, netns)
    return list(json.loads(host.check_output(cmd)))


def link_kind(link: dict[str, Any]) -> str | None:
    """The kind of an interface from `ip -j -d` (veth, bridge...); None for a plain device.

    >>> link_kind(interface(host, "docker0"))
    'bridge'
    """
    kind = link.get("linkinfo", {}).get("info_kind")
    return None if kind is None else str(kind)


def interface(
    host: Any, dev: str, *, pid: int | None = None, netns: str | None = None
) -> dict[str, Any]:
    """`ip -j -d addr show dev DEV`: one interface's details and addresses; fails if it is missing.

    `pid` and `netns` choose the network namespace as for `links`.

    >>> ipv4_of(interface(host, "eth0", netns="nstest"))
    ['172.17.0.2/16']
    """
    cmd = _in_netns(f"ip -j -d addr show dev {shlex.quote(dev)}", pid, netns)
    result = host.run(cmd)
    if result.rc != 0:
        raise AssertionError(f"`{cmd}` failed: {result.stderr.strip()}")
    (iface,) = json.loads(result.stdout)
    return dict(iface)


def ipv4_of(iface: dict[str, Any]) -> list[str]:
    """The IPv4 addresses of an interface from `ip -j addr`, as 'a.b.c.d/len'.

    >>> ipv4_of(interface(host, "docker0"))
    ['172.17.0.1/16']
    """
    return [
        f"{a['local']}/{a['prefixlen']}"
        for a in iface.get("addr_info", [])
        if a.get("family") == "inet"
    ]


def ipv4_addresses(host: Any, dev: str) -> list[str]:
    """The IPv4 addresses of `dev` as 'a.b.c.d/len'; empty when it does not exist.

    >>> ipv4_addresses(host, "docker0")
    ['172.17.0.1/16']
    """
    cmd = host.run(f"ip -j -4 addr show dev {shlex.quote(dev)}")
    if cmd.rc != 0:
        return []
    return [address for iface in json.loads(cmd.stdout) for address in ipv4_of(iface)]


def veth_peer(host: Any, iface: dict[str, Any]) -> dict[str, Any]:
    """The machine-side end of the veth pair `iface` (seen in another namespace) belongs to.

    `iface`'s `link_index` is its peer's index on the machine, the N of `eth0@ifN`;
    fails unless both ends are veths and name each other.

    >>> veth_peer(host, interface(host, "eth0", netns="nstest"))["master"]
    'docker0'
    """
    name = iface.get("ifname")
    kind = link_kind(iface)
    if kind != "veth":
        raise AssertionError(f"{name} is {kind!r}, not one end of a veth pair")
    n = iface.get("link_index")
    if not n:
        raise AssertionError(f"{name} names no peer interface (no @ifN)")
    by_index = {link["ifindex"]: link for link in links(host)}
    if n not in by_index:
        raise AssertionError(f"{name}@if{n}, but the machine has no interface {n}")
    peer = by_index[n]
    peer_kind = link_kind(peer)
    if peer_kind != "veth":
        raise AssertionError(f"interface {n} ({peer['ifname']}) is a {peer_kind}, not a veth")
    if peer.get("link_index") != iface.get("ifindex"):
        raise AssertionError(
            f"{peer['ifname']} pairs with interface {peer.get('link_index')}, "
            f"not with {name} (index {iface.get('ifindex')})"
        )
    return peer


def bridge_ports(host: Any, bridge: str) -> list[str]:
    """Names of the interfaces whose master is `bridge`, by `ip -j link`.

    >>> bridge_ports(host, "docker0")
    ['veth1443075']
    """
    return [link["ifname"] for link in links(host) if link.get("master") == bridge]


def brctl_show(host: Any) -> dict[str, list[str]]:
    """`brctl show` as {bridge: [interfaces]}.

    Read by whitespace-separated fields, never by column: a line that starts
    with a name opens a bridge (name, id, STP, then its first interface if it
    has any); an indented line carries one more interface of the bridge above.

    >>> brctl_show(host)
    {'docker0': ['veth1443075']}
    """
    bridges: dict[str, list[str]] = {}
    current: str | None = None
    for line in host.check_output("brctl show").splitlines():
        fields = line.split()
        if not fields or line.startswith("bridge name"):
            continue
        if not line[0].isspace():
            current = fields[0]
            bridges[current] = fields[3:]
        elif current is not None:
            bridges[current].extend(fields)
    return bridges


def listeners(host: Any, port: int) -> list[tuple[str, int]]:
    """(process name, pid) of every process with a TCP socket listening on `port`.

    From `ss -ltnp`'s users:(("name",pid=N,fd=M)) field, read in the machine's own
    network namespace (where the checks' shell runs).

    >>> listeners(host, 5000)
    [('docker-proxy', 4242)]
    """
    out = host.check_output(f"ss -H -ltnp {shlex.quote(f'sport = :{port}')}")
    return [(name, int(pid)) for name, pid in re.findall(r'\("([^"]+)",pid=(\d+)', out)]


def container_pid(host: Any, name: str) -> int:
    """PID on the machine of the running container's main process; fails if it does not run.

    >>> container_pid(host, "nstest")
    4242
    """
    fmt = "{{.State.Pid}}"
    cmd = host.run(f"docker inspect -f {shlex.quote(fmt)} {shlex.quote(name)}")
    if cmd.rc != 0:
        raise AssertionError(f"no container {name!r}: {cmd.stderr.strip()}")
    pid = cmd.stdout.strip()
    if not pid.isdigit() or int(pid) == 0:
        raise AssertionError(f"container {name!r} is not running")
    return int(pid)


def container_ip(host: Any, name: str, network: str = "bridge") -> str | None:
    """The container's address on a Docker network, or None when it is not running.

    >>> container_ip(host, "nstest")
    '172.17.0.2'
    """
    fmt = "{{(index .NetworkSettings.Networks " + json.dumps(network) + ").IPAddress}}"
    cmd = host.run(f"docker inspect -f {shlex.quote(fmt)} {shlex.quote(name)}")
    if cmd.rc != 0:
        return None
    return str(cmd.stdout).strip() or None


def container_log(host: Any, name: str) -> list[str]:
    """The lines the container has logged (stdout and stderr), or [] when it is gone.

    >>> container_log(host, "http-server")[-1]
    '172.17.0.1 - - [01/Jan/2024 12:00:00] "GET / HTTP/1.1" 200 -'
    """
    cmd = host.run(f"docker logs {shlex.quote(name)} 2>&1")
    return list(cmd.stdout.splitlines()) if cmd.rc == 0 else []
