"""What a step changed: the machine's network state before and after, and the difference.

A snapshot is taken in one SSH round trip (`SNAPSHOT_COMMAND`, run as root) and parsed
into sets of short, human-readable items, one set a kind:

    rules        "nat DOCKER: -A DOCKER ! -i docker0 -p tcp ... -j DNAT --to-destination ..."
                 "nat chain DOCKER", "filter chain FORWARD policy ACCEPT"
    interfaces   "veth1a2b3c4@if5 (veth, peer in netns 1) master docker0 up mtu 1500"
    addresses    "docker0 inet 172.17.0.1/16"
    routes       "route 172.17.0.0/16 dev docker0 proto kernel scope link src 172.17.0.1"
    namespaces   "netns nstest (id 1)"
    listeners    "listening tcp 0.0.0.0:5000 (docker-proxy)"

`diff(before, after)` is plain set arithmetic on those items, so what an item leaves
out can never show up as a change. The items are built from a whitelist of fields
that only change when someone changes the configuration; everything that moves on
its own (counters, timers, pids, carrier state, lifetimes, kernel-chosen addresses)
is left out on purpose. Each parser below says what it drops and why.

Bridges and their ports need no section of their own: every port names its bridge
(`master docker0`) in `ip -d addr`. `bridge link` would add only the port's STP state
(disabled / learning / forwarding), which follows the carrier and is volatile.
"""

from __future__ import annotations

import io
import json
import re
import shlex
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import paramiko

from labgen.core.errors import MachineError
from labgen.machine import ssh

# -- taking it -------------------------------------------------------------------------

MARK = "@@labgen-snapshot"  # starts every section line; no tool below prints it

# Each section: its name and the command whose output it holds. Sections run one after
# another in one shell; each is framed by "MARK begin NAME" and "MARK end NAME STATUS".
# LC_ALL=C keeps every tool's output in the form the parsers expect.
_SCRIPT = f"""\
export LC_ALL=C
section() {{ name=$1; shift; echo "{MARK} begin $name"; "$@"; rc=$?; echo; \
echo "{MARK} end $name $rc"; }}
section iptables iptables-save
section ip6tables ip6tables-save
# With the nf_tables backend, rules can still sit in the old x_tables ("legacy")
# tables of the same namespace. Only read them where the module is loaded already:
# reading must not load kernel modules (a side effect of its own).
case "$(iptables-save -V 2>/dev/null)" in *nf_tables*)
  if [ -e /proc/net/ip_tables_names ] && command -v iptables-legacy-save >/dev/null; then
    section iptables-legacy iptables-legacy-save
  fi
  if [ -e /proc/net/ip6_tables_names ] && command -v ip6tables-legacy-save >/dev/null; then
    section ip6tables-legacy ip6tables-legacy-save
  fi
;; esac
section links ip -d -j addr show
section routes ip -j route show
section netns ip -j netns list
section listeners ss -H -l -t -u -n -p
"""

SNAPSHOT_COMMAND: str = "sudo -n sh -c " + shlex.quote(_SCRIPT)
"""The one command (run over SSH as the lab user, root through sudo) printing the raw state."""

# The sections every snapshot must have (the legacy ones appear only where they exist).
_REQUIRED = ("iptables", "ip6tables", "links", "routes", "netns", "listeners")

# Rule prefixes for the iptables sections; plain IPv4 rules carry only their table name.
_RULE_FAMILIES = {
    "iptables": "",
    "ip6tables": "ip6 ",
    "iptables-legacy": "legacy ",
    "ip6tables-legacy": "legacy ip6 ",
}

KINDS: tuple[str, ...] = ("rules", "interfaces", "addresses", "routes", "namespaces", "listeners")
"""The kinds of item in a snapshot, in the order a diff is shown."""


class SnapshotError(MachineError):
    """The machine's state could not be read (a tool failed, or its output was unexpected)."""


@dataclass(frozen=True)
class Snapshot:
    """The machine's network state, as sets of human-readable items (see the module doc)."""

    rules: frozenset[str] = frozenset()
    interfaces: frozenset[str] = frozenset()
    addresses: frozenset[str] = frozenset()
    routes: frozenset[str] = frozenset()
    namespaces: frozenset[str] = frozenset()
    listeners: frozenset[str] = frozenset()

    def of(self, kind: str) -> frozenset[str]:
        """The items of one kind (one of `KINDS`)."""
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}; one of {', '.join(KINDS)}")
        items: frozenset[str] = getattr(self, kind)
        return items


def take_raw_snapshot(client: paramiko.SSHClient) -> str:
    """The raw output of `SNAPSHOT_COMMAND` on the machine (what `parse_snapshot` reads)."""
    out, err = io.BytesIO(), io.BytesIO()
    code = ssh.run(client, SNAPSHOT_COMMAND, stdout=out, stderr=err)
    if code != 0:
        raise SnapshotError(
            f"reading the machine's network state failed (exit {code}): "
            f"{err.getvalue().decode(errors='replace').strip()}",
        )
    return out.getvalue().decode(errors="replace")


def take_snapshot(client: paramiko.SSHClient) -> Snapshot:
    """The machine's network state now, in one SSH round trip."""
    return parse_snapshot(take_raw_snapshot(client))


# -- parsing it ------------------------------------------------------------------------


def parse_snapshot(raw: str) -> Snapshot:
    """Parse the output of `SNAPSHOT_COMMAND` (pure; raises SnapshotError on bad input)."""
    sections = split_sections(raw)
    missing = [name for name in _REQUIRED if name not in sections]
    if missing:
        raise SnapshotError(f"the snapshot has no section {', '.join(missing)}")
    links = _json_list(sections["links"], "links")
    namespaces_raw = _json_list(sections["netns"], "netns")
    nsids = {str(ns["name"]): ns["id"] for ns in namespaces_raw if "id" in ns}
    rules: set[str] = set()
    for name, prefix in _RULE_FAMILIES.items():
        if name in sections:
            rules |= parse_iptables_save(sections[name], prefix)
    return Snapshot(
        rules=frozenset(rules),
        interfaces=frozenset(parse_links(links, nsids)),
        addresses=frozenset(parse_addresses(links)),
        routes=frozenset(parse_routes(_json_list(sections["routes"], "routes"))),
        namespaces=frozenset(parse_namespaces(namespaces_raw)),
        listeners=frozenset(parse_listeners(sections["listeners"])),
    )


def split_sections(raw: str) -> dict[str, str]:
    """The sections of a raw snapshot by name; a section whose command failed is an error."""
    sections: dict[str, str] = {}
    name: str | None = None
    body: list[str] = []
    for line in raw.splitlines():
        if not line.startswith(MARK + " "):
            if name is not None:
                body.append(line)
            continue
        words = line.split()
        if words[1] == "begin" and len(words) == 3:
            name, body = words[2], []
        elif words[1] == "end" and len(words) == 4 and words[2] == name:
            if words[3] != "0":
                raise SnapshotError(
                    f"reading the machine's network state: {name} failed (exit {words[3]})"
                )
            sections[name] = "\n".join(body)
            name = None
        else:
            raise SnapshotError(f"unexpected line in a snapshot: {line!r}")
    if name is not None:
        raise SnapshotError(f"the snapshot's section {name} is cut short")
    return sections


def _json_list(text: str, section: str) -> list[dict[str, Any]]:
    # `ip -j netns list` prints nothing at all while /var/run/netns does not exist.
    if not text.strip():
        return []
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SnapshotError(f"the snapshot's {section} section is not JSON: {exc}") from None
    if not isinstance(data, list):
        raise SnapshotError(f"the snapshot's {section} section is not a JSON list")
    return [entry for entry in data if isinstance(entry, dict)]


_COUNTERS = re.compile(r"^\[\d+:\d+\]\s+")


def parse_iptables_save(text: str, prefix: str = "") -> set[str]:
    """Chains and rules from `iptables-save` output.

    Dropped as volatile: comment lines (they carry the time of the dump), chain counters
    (`:INPUT ACCEPT [10:600]`, real packet counts on the legacy backend) and rule
    counters (`[p:b] -A ...`, printed with `-c`). A rule's position is not kept either:
    Docker inserts rules with -I, and numbering them would turn one insertion into a
    change of every rule after it. A rule present twice is kept twice ("#2").
    """
    items: set[str] = set()
    seen: Counter[str] = Counter()
    table = "?"
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or line == "COMMIT":
            continue
        if line.startswith("*"):
            table = line[1:]
        elif line.startswith(":"):
            chain, policy = (line[1:].split() + ["-"])[:2]
            # Built-in chains have a policy, user chains "-".
            policy_text = f" policy {policy}" if policy != "-" else ""
            items.add(f"{prefix}{table} chain {chain}{policy_text}")
        else:
            rule = _COUNTERS.sub("", line)
            words = rule.split()
            chain = words[1] if len(words) > 1 and words[0] == "-A" else "?"
            item = f"{prefix}{table} {chain}: {rule}"
            seen[item] += 1
            items.add(item if seen[item] == 1 else f"{item} #{seen[item]}")
    return items


def parse_links(links: Iterable[dict[str, Any]], nsids: dict[str, int] | None = None) -> set[str]:
    """One item an interface: name, peer, kind, master, admin state, MTU.

    Kept: what a command sets (`ip link add/set/del`, Docker's veth pairs and bridge
    ports). Dropped as volatile or noise:
    - operstate and the carrier flags (LOWER_UP, NO-CARRIER, DORMANT): they follow the
      carrier and settle a moment after a port joins a bridge; "up" here is the
      administrative UP flag, which only `ip link set up/down` changes;
    - the qdisc (the kernel attaches a default one when a link goes up), promiscuity and
      allmulti (counts that tcpdump or a bridge raise and lower), statistics;
    - MAC addresses: a veth's is random, and a bridge without a fixed address takes its
      lowest port's, so it would "change" every time a port joins or leaves;
    - everything in linkinfo but the kind: bridge timers (gc_timer, hello_timer...) tick,
      a port's STP state follows the carrier;
    - the interface's own index. The peer of a veth in another namespace is shown as
      `@ifN`, like `ip link` does (the netns lab follows it), and its namespace by the
      id the kernel gave it: `ip` prints the namespace's name instead once it has one
      (`ip netns attach`, a link in /var/run/netns), which is no change of the link.
    """
    nsids = nsids or {}
    items = set()
    for link in links:
        name = str(link.get("ifname", "?"))
        kind = (link.get("linkinfo") or {}).get("info_kind") or link.get("link_type", "?")
        details = [str(kind)]
        peer = ""
        if "link" in link and link["link"]:  # the peer is in this namespace
            peer = f"@{link['link']}"
        elif "link_index" in link:  # the peer is in another namespace
            peer = f"@if{link['link_index']}"
        netns: Any = link.get("link_netnsid")
        if "link_netns" in link:
            netns = nsids.get(str(link["link_netns"]), link["link_netns"])
        if netns is not None:
            details.append(f"peer in netns {netns}")
        words = [f"{name}{peer} ({', '.join(details)})"]
        if link.get("master"):
            words.append(f"master {link['master']}")
        words.append("up" if "UP" in link.get("flags", []) else "down")
        if "mtu" in link:
            words.append(f"mtu {link['mtu']}")
        items.add(" ".join(words))
    return items


def parse_addresses(links: Iterable[dict[str, Any]]) -> set[str]:
    """One item an address: "docker0 inet 172.17.0.1/16".

    Dropped: lifetimes (they count down on DHCP and SLAAC addresses) and the state
    flags (tentative, dadfailed...). Left out altogether: IPv6 link-local addresses,
    which the kernel makes by itself when a link comes up, after duplicate address
    detection, so they appear a moment after the step that made the link; and IPv6
    temporary (privacy) addresses, which the kernel replaces on a timer.
    """
    items = set()
    for link in links:
        for addr in link.get("addr_info", []):
            family = addr.get("family", "?")
            if family == "inet6" and (addr.get("scope") == "link" or addr.get("temporary")):
                continue
            item = f"{link.get('ifname', '?')} {family} {addr.get('local')}/{addr.get('prefixlen')}"
            if addr.get("address") and addr["address"] != addr.get("local"):
                item += f" peer {addr['address']}"  # point-to-point
            if addr.get("label") and addr["label"] != link.get("ifname"):
                item += f" label {addr['label']}"
            items.add(item)
    return items


def parse_routes(routes: Iterable[dict[str, Any]]) -> set[str]:
    """One item a route of the main table, in `ip route` order of words.

    Dropped: the flags, "linkdown" above all (a route through docker0 is linkdown
    until a container's port comes up, so it follows the carrier), and expiry times.
    """
    items = set()
    for route in routes:
        words = ["route"]
        if route.get("type") and route["type"] != "unicast":
            words.append(str(route["type"]))
        words.append(str(route.get("dst", "?")))
        for key, label in (
            ("gateway", "via"),
            ("dev", "dev"),
            ("protocol", "proto"),
            ("scope", "scope"),
            ("prefsrc", "src"),
            ("metric", "metric"),
        ):
            if key in route:
                words += [label, str(route[key])]
        items.add(" ".join(words))
    return items


def parse_namespaces(namespaces: Iterable[dict[str, Any]]) -> set[str]:
    """One item a named network namespace (`ip netns list`), with its id when it has one."""
    items = set()
    for ns in namespaces:
        nsid = f" (id {ns['id']})" if "id" in ns else ""
        items.add(f"netns {ns.get('name', '?')}{nsid}")
    return items


# Listeners that belong to no lab: on the docker provider, the Docker that runs the lab
# machine puts its embedded DNS on 127.0.0.11, on ports it picks at random when the
# machine starts. Its process lives outside the machine, so `ss` names none; the lab
# machine removes the rules that lead there at boot. They never change within a
# machine's life, but would differ between any two machines and mean nothing to a lab.
_FOREIGN_LISTENER_HOSTS = ("127.0.0.11",)

_PROCESS_NAME = re.compile(r'\("([^"]*)",pid=')


def parse_listeners(text: str) -> set[str]:
    """One item a listening socket (`ss -H -ltunp`): "listening tcp 0.0.0.0:5000 (name)".

    Dropped: the queue sizes (Recv-Q is the backlog waiting right now), the peer
    column (always `*` for a listener), the state (LISTEN or UNCONN, fixed by the
    protocol), and the pids and fds of the owning processes: a restarted server is the
    same listener. Only the process names are kept.
    """
    items = set()
    for line in text.splitlines():
        cols = line.split(None, 6)
        if len(cols) < 6:
            continue
        proto, local = cols[0], cols[4]
        names = sorted(set(_PROCESS_NAME.findall(cols[6]))) if len(cols) > 6 else []
        host = local.rsplit(":", 1)[0]
        if not names and host in _FOREIGN_LISTENER_HOSTS:
            continue
        owner = f" ({', '.join(names)})" if names else ""
        items.add(f"listening {proto} {local}{owner}")
    return items
