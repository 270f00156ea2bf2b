"""Helpers for lab checks: the seed's recurring questions, asked through testinfra's host.

Most take testinfra's `host` fixture; each quotes what it puts in a command. Those that
need something to be there (a running container, an interface, a chain) fail the check
with an AssertionError that says what is missing.

The helpers that read a network's state take `pid=` (the network namespace of that
process, entered with nsenter: a container's, from `container_pid`) or `netns=` (a
namespace `ip netns` knows by name); without either they read the machine's own.

This module also runs inside the lab machine (`labgen-lab check`), on Debian's
Python 3.11 with testinfra 7: the standard library only.
"""

from __future__ import annotations

import json
import random
import re
import shlex
import socket
import struct
import textwrap
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
    "neighbours",
    "neighbour_macs",
    "resolve",
    "dns_query",
    "dns_answers",
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


def _where(pid: int | None, netns: str | None) -> str:
    """The namespace a helper looked in, as its messages name it."""
    if pid is not None:
        return f"in the network namespace of pid {pid}"
    if netns is not None:
        return f"in network namespace {netns!r}"
    return "in the machine's network namespace"


def rules(
    host: Any,
    table: str,
    chain: str | None = None,
    *,
    pid: int | None = None,
    netns: str | None = None,
) -> list[str]:
    """`iptables -t TABLE -S [CHAIN]` as a list of rules, without iptables' warnings.

    `pid` and `netns` choose the network namespace as for `links` (a container has
    tables of its own: Docker's embedded DNS lives in its nat table). A table or chain
    that does not exist there fails the check saying so, and which chains there are.

    >>> "-P PREROUTING ACCEPT" in rules(host, "nat", "PREROUTING")
    True

    In a check, inside a container on a user-defined network:

        dns = rules(host, "nat", "DOCKER_OUTPUT", pid=container_pid(host, "alpha"))
        assert any("--dport 53 -j DNAT --to-destination 127.0.0.11:" in r for r in dns)
    """
    # Not testinfra's host.iptables: its failure is a dump of the command's result, and
    # the -w it adds waits for a lock that the machine's iptables-nft never takes.
    words = ["iptables", "-t", table, "-S", *([chain] if chain else [])]
    cmd = _in_netns(shlex.join(words), pid, netns)
    result = host.run(cmd)
    if result.rc != 0:
        raise AssertionError(_iptables_failure(host, cmd, result, table, chain, pid, netns))
    # iptables-nft prints "# Warning: iptables-legacy tables present" among the rules.
    return [
        line.replace("\t", " ")
        for line in result.stdout.splitlines()
        if line and not line.startswith("#")
    ]


def _iptables_failure(
    host: Any,
    cmd: str,
    failed: Any,
    table: str,
    chain: str | None,
    pid: int | None,
    netns: str | None,
) -> str:
    """Why `cmd` (an iptables listing) failed, in words: iptables-nft says a missing
    chain 'is incompatible, use nft', which sends an author the wrong way."""
    where = _where(pid, netns)
    said = _said(failed)
    listing = host.run(_in_netns(shlex.join(["iptables", "-t", table, "-S"]), pid, netns))
    if listing.rc != 0:
        if "does not exist" in listing.stderr:
            return f"there is no iptables table {table!r} {where} (iptables said: {said})"
        return f"`{cmd}` failed {where}: {said}"
    chains = _table_chains(listing.stdout)
    if chain is not None and chain not in chains:
        return (
            f"table {table!r} has no chain {chain!r} {where}; its chains are: {', '.join(chains)}"
        )
    return f"`{cmd}` failed {where}: {said}"


def _said(result: Any) -> str:
    """What a failed command said on stderr, on one line (its exit status if nothing)."""
    return " ".join(result.stderr.split()) or f"exit status {result.rc}"


def _table_chains(listing: str) -> list[str]:
    """The chains of an `iptables -S` listing of a whole table, built-in ones first.

    >>> _table_chains("-P INPUT ACCEPT\\n-P OUTPUT ACCEPT\\n-N DOCKER\\n-A OUTPUT -j DOCKER")
    ['INPUT', 'OUTPUT', 'DOCKER']
    """
    return [
        fields[1]
        for fields in (line.split() for line in listing.splitlines())
        if len(fields) >= 2 and fields[0] in ("-P", "-N")
    ]


def rule_counters(
    host: Any, table: str, *, pid: int | None = None, netns: str | None = None
) -> dict[str, tuple[int, int]]:
    """`iptables-save -c -t TABLE`: {rule as `iptables -S` prints it: (packets, bytes)}.

    `pid` and `netns` choose the network namespace as for `links`. Reading the counters
    moves none; a check that sends packets to see them move (a DNS query, a curl) moves
    them for every check after it.

    >>> rule_counters(host, "nat")["-A DOCKER -i docker0 -j RETURN"]
    (0, 0)
    """
    cmd = _in_netns(shlex.join(["iptables-save", "-c", "-t", table]), pid, netns)
    result = host.run(cmd)
    if result.rc != 0:
        where = _where(pid, netns)
        if "does not exist" in result.stderr:
            raise AssertionError(f"there is no iptables table {table!r} {where} ({_said(result)})")
        raise AssertionError(f"`{cmd}` failed {where}: {_said(result)}")
    counters: dict[str, tuple[int, int]] = {}
    for line in result.stdout.splitlines():
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


def neighbours(
    host: Any, dev: str | None = None, *, pid: int | None = None, netns: str | None = None
) -> list[dict[str, Any]]:
    """`ip -j neigh show [dev DEV]`: the neighbour entries (ARP, and NDP for IPv6).

    Each entry has `dst` (the address), `dev`, `state` (a list: REACHABLE, STALE,
    FAILED...) and, once the address was resolved, `lladdr` (its MAC). `pid` and
    `netns` choose the network namespace as for `links`; a missing `dev` fails the
    check saying so. `neighbour_macs` keeps the resolved ones.

    In a check, after a container on docker0 pinged its gateway:

        macs = neighbour_macs(neighbours(host, "eth0", pid=container_pid(host, "nstest")))
        assert macs["172.17.0.1"] == interface(host, "docker0")["address"]
    """
    words = ["ip", "-j", "neigh", "show", *(["dev", dev] if dev else [])]
    cmd = _in_netns(shlex.join(words), pid, netns)
    result = host.run(cmd)
    if result.rc != 0:
        raise AssertionError(f"`{cmd}` failed {_where(pid, netns)}: {_said(result)}")
    return list(json.loads(result.stdout)) if result.stdout.strip() else []


def neighbour_macs(entries: list[dict[str, Any]]) -> dict[str, str]:
    """{address: MAC} of the `neighbours` entries that were resolved (FAILED and
    INCOMPLETE ones have no MAC and are left out).

    >>> neighbour_macs([
    ...     {"dst": "172.17.0.1", "dev": "eth0", "lladdr": "02:42:ac:11:00:01",
    ...      "state": ["REACHABLE"]},
    ...     {"dst": "172.17.0.9", "dev": "eth0", "state": ["FAILED"]},
    ... ])
    {'172.17.0.1': '02:42:ac:11:00:01'}
    """
    return {str(e["dst"]): str(e["lladdr"]) for e in entries if e.get("lladdr")}


# --- DNS: the question built and the answer read here, only the datagram sent there --

_DNS_TYPES = {"A": 1, "AAAA": 28}
_DNS_FAMILIES = {"A": socket.AF_INET, "AAAA": socket.AF_INET6}
_DNS_RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}

# Run by the machine's python3 inside the namespace: an image may have no resolver tool
# at all (the python image has no nslookup, busybox no getent), the machine always has
# python3. It sends one datagram and prints the reply; checklib reads it.
_ASK_DNS = textwrap.dedent(
    """\
    import socket
    import sys

    query, server, resolv_conf, timeout = sys.argv[1:5]
    if not server:
        try:
            with open(resolv_conf) as lines:
                named = [line.split() for line in lines]
        except OSError as error:
            sys.exit(f"cannot read {resolv_conf}: {error.strerror}")
        servers = [words[1] for words in named if words[:1] == ["nameserver"] and words[1:]]
        if not servers:
            sys.exit(f"{resolv_conf} names no nameserver")
        server = servers[0]
    family = socket.AF_INET6 if ":" in server else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.settimeout(float(timeout))
        try:
            sock.connect((server, 53))
            sock.send(bytes.fromhex(query))
            reply = sock.recv(65535)
        except OSError as error:
            sys.exit(f"no answer from {server}: {error.strerror or error}")
    print(server, reply.hex())
    """
)


def resolve(
    host: Any,
    name: str,
    rtype: str = "A",
    *,
    pid: int | None = None,
    netns: str | None = None,
    server: str | None = None,
    timeout: float = 2.0,
) -> list[str]:
    """The addresses a DNS server gives for `name` (record type A or AAAA), sorted.

    One question, asked from the network namespace `pid` or `netns` choose (as for
    `links`) to the first nameserver of that namespace's resolv.conf (with `pid`, the
    container's own: 127.0.0.11, Docker's embedded DNS, on a user-defined network), or
    to `server`. The machine's python3 sends it, so the container's image needs no
    resolver tool. The name is asked as given: no search domains, no /etc/hosts. A name
    the server does not know (NXDOMAIN) gives []; no answer, or an answer such as
    SERVFAIL or REFUSED, fails the check saying which server said what.

    The question is a packet: it moves the counters of the rules it crosses (a
    container's DOCKER_OUTPUT DNAT to the embedded DNS), as the learner's nslookup does.

    In a check, from a container on the user-defined network labnet:

        assert resolve(host, "alpha", pid=container_pid(host, "beta")) == ["10.30.0.2"]

    `dns_query` builds the question and `dns_answers` reads the reply, on this side.
    """
    if rtype not in _DNS_TYPES:
        raise ValueError(f"rtype must be one of {', '.join(_DNS_TYPES)}, not {rtype!r}")
    ident = random.randrange(1 << 16)
    resolv_conf = f"/proc/{pid}/root/etc/resolv.conf" if pid is not None else "/etc/resolv.conf"
    args = [dns_query(name, rtype, ident).hex(), server or "", resolv_conf, str(timeout)]
    cmd = _in_netns(shlex.join(["python3", "-c", _ASK_DNS, *args]), pid, netns)
    result = host.run(cmd)
    where = _where(pid, netns)
    if result.rc != 0:
        raise AssertionError(f"no DNS answer for {name!r} {where}: {_said(result)}")
    asked, _, reply = result.stdout.strip().partition(" ")
    try:
        rcode, addresses = dns_answers(bytes.fromhex(reply), rtype, ident)
    except ValueError as exc:
        raise AssertionError(f"the DNS reply from {asked} {where} is not one: {exc}") from None
    if rcode not in ("NOERROR", "NXDOMAIN"):
        raise AssertionError(f"{asked} answered {rcode} for {name!r} {where}")
    return sorted(addresses)


def dns_query(name: str, rtype: str = "A", ident: int = 0) -> bytes:
    """The DNS question `resolve` sends: one `rtype` record of `name`, recursion desired.

    >>> dns_query("alpha", "A", ident=0x1234).hex()
    '12340100000100000000000005616c7068610000010001'
    """
    labels = name.rstrip(".").split(".")
    if not name or any(not 0 < len(label.encode()) < 64 for label in labels):
        raise ValueError(f"{name!r} is not a DNS name (labels of 1 to 63 bytes)")
    qname = b"".join(bytes([len(label.encode())]) + label.encode() for label in labels)
    header = struct.pack("!6H", ident, 0x0100, 1, 0, 0, 0)
    return header + qname + b"\0" + struct.pack("!2H", _DNS_TYPES[rtype], 1)


def dns_answers(reply: bytes, rtype: str = "A", ident: int | None = None) -> tuple[str, list[str]]:
    """(response code, addresses of type `rtype`) of a DNS reply; a CNAME on the way is
    skipped, its target's addresses kept. ValueError if `reply` is no answer (to `ident`).

    >>> reply = bytes.fromhex("12348180000100010000000005616c7068610000010001"
    ...                       "c00c000100010000025800040a1e0002")
    >>> dns_answers(reply, "A", ident=0x1234)
    ('NOERROR', ['10.30.0.2'])
    """
    try:
        got, flags, questions, count = struct.unpack("!4H", reply[:8])
        offset = 12
        for _ in range(questions):
            offset = _skip_name(reply, offset) + 4
        addresses = []
        for _ in range(count):
            offset = _skip_name(reply, offset)
            kind, _class, _ttl, size = struct.unpack("!2HIH", reply[offset : offset + 10])
            offset += 10
            data = reply[offset : offset + size]
            offset += size
            if kind == _DNS_TYPES[rtype] and len(data) == size:
                addresses.append(socket.inet_ntop(_DNS_FAMILIES[rtype], data))
    except (struct.error, IndexError, OSError, ValueError) as exc:
        raise ValueError(f"a truncated or malformed DNS message ({exc})") from None
    if not flags & 0x8000 or (ident is not None and got != ident):
        raise ValueError("not an answer to the question asked")
    return _DNS_RCODES.get(flags & 0xF, f"RCODE {flags & 0xF}"), addresses


def _skip_name(message: bytes, offset: int) -> int:
    """The offset just past the (maybe compressed) name at `offset` of a DNS message."""
    while True:
        length = message[offset]
        if length & 0xC0 == 0xC0:  # a pointer to a name earlier in the message
            return offset + 2
        if length == 0:
            return offset + 1
        offset += 1 + length


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
