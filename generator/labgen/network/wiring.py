"""The machine's network as a graph: namespaces, interfaces, veth pairs, bridges, listeners.

Gathered in one SSH round trip (`GATHER_COMMAND`, as root): `ip -d -j addr` and `ss -ltnp`
in every network namespace the machine has (its own; each running container's, entered
through the container's pid; each named one under /var/run/netns), `docker port` of each
container, and the name, id and Linux bridge of each of Docker's bridge networks (a
picture names `br-0123abcd4567` after its network, labnet). `parse` turns that text into
a `Wiring` (pure, so recorded outputs test it); network/drawing.py makes it a Graphviz
graph; verbs/draw.py lays it out.

Namespaces are told apart by their inode: the named `nstest` and the container nstest
are one namespace, and a `--net=host` container shares the machine's. A veth pair is two
veth interfaces in different namespaces that name each other's index (`eth0@if4` and
`veth…@if3`), which is what `ip` shows and the lab teaches.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import asdict, dataclass, field
from typing import Any

MARK = "@@labgen-wiring"

# Each namespace: a line "MARK ns KIND NAME INODE", then its `ip` and `ss` sections.
# nsenter --net enters a namespace by a handle (a /proc/PID/ns/net or a /var/run/netns
# name); the machine's own is /proc/self/ns/net of the shell. A dangling name (its
# container stopped) is reported, not entered.
_SCRIPT = f"""\
export LC_ALL=C
ns() {{
  inode=$(stat -L -c %i "$3" 2>/dev/null) || {{ echo "{MARK} gone $1 $2"; return; }}
  echo "{MARK} ns $1 $2 $inode"
  echo "{MARK} addr"; nsenter --net="$3" ip -d -j addr show
  echo; echo "{MARK} listen"; nsenter --net="$3" ss -H -ltnp
}}
ns machine - /proc/$$/ns/net
for f in /var/run/netns/*; do [ -e "$f" ] || [ -L "$f" ] && ns netns "${{f##*/}}" "$f"; done
if command -v docker >/dev/null; then
  for c in $(docker ps -q); do
    set -- $(docker inspect -f '{{{{.Name}}}} {{{{.State.Pid}}}}' "$c")
    ns container "${{1#/}}" "/proc/$2/ns/net"
    echo "{MARK} ports"; docker port "$c"
  done
  echo "{MARK} networks"
  for n in $(docker network ls -q --filter driver=bridge); do
    docker network inspect -f \
      '{{{{.Name}}}} {{{{.Id}}}} {{{{index .Options "com.docker.network.bridge.name"}}}}' "$n"
  done
fi
echo "{MARK} end"
"""

GATHER_COMMAND: str = "sudo -n sh -c " + shlex.quote(_SCRIPT)
"""The one command (over SSH as the lab user, root through sudo) printing every namespace."""


class WiringError(ValueError):
    """Gathered output that cannot be read."""


@dataclass(frozen=True)
class Interface:
    """One interface of one namespace, as `ip -d -j addr` shows it."""

    index: int
    name: str
    kind: str  # veth, bridge, loopback, ether...
    up: bool
    master: str | None = None
    peer_index: int | None = None  # the @ifN of `ip a`: the other end of a veth pair
    peer_here: bool = False  # the peer is in this namespace
    ipv4: tuple[str, ...] = ()
    mac: str = ""

    @property
    def label(self) -> str:
        """The name as `ip a` prints it: `eth0@if4`.

        >>> Interface(3, "eth0", "veth", True, peer_index=4).label
        'eth0@if4'
        """
        return f"{self.name}@if{self.peer_index}" if self.peer_index is not None else self.name


@dataclass(frozen=True)
class Listener:
    """A listening TCP socket: `0.0.0.0:5000` and its process names."""

    address: str
    processes: tuple[str, ...]

    @property
    def port(self) -> int:
        return int(self.address.rsplit(":", 1)[1])


@dataclass(frozen=True)
class Published:
    """A container's published port, as `docker port` says: `5000/tcp -> 0.0.0.0:5000`."""

    container: str
    container_port: str  # "5000/tcp"
    host: str  # "0.0.0.0:5000"


@dataclass(frozen=True)
class DockerNetwork:
    """One of Docker's bridge networks: its name, id, and the Linux bridge it is."""

    name: str  # "bridge", "labnet"
    id: str
    bridge: str  # "docker0"; a user-defined network's is "br-" and 12 digits of its id


def parse_networks(text: str) -> tuple[DockerNetwork, ...]:
    """Docker's bridge networks from `docker network inspect -f '{{.Name}} {{.Id}}
    {{index .Options "com.docker.network.bridge.name"}}'`, one line each: a network
    without that option has Docker's own bridge name, br- and 12 digits of its id.

    >>> parse_networks("bridge 4f1c docker0\\nlabnet 0123456789abcdef <no value>")[1]
    DockerNetwork(name='labnet', id='0123456789abcdef', bridge='br-0123456789ab')
    """
    found = []
    for line in text.splitlines():
        words = line.split()
        if len(words) < 2:
            continue
        option = " ".join(words[2:])
        if option in ("", "<no value>"):  # the template's word for a missing key
            option = f"br-{words[1][:12]}"
        found.append(DockerNetwork(words[0], words[1], option))
    return tuple(found)


@dataclass(frozen=True)
class Namespace:
    """A network namespace: its inode, the names it goes by, interfaces and listeners."""

    inode: int
    kind: str  # machine, container, netns: the first way it was found
    names: tuple[str, ...]  # "container nstest", "netns nstest"
    interfaces: tuple[Interface, ...]
    listeners: tuple[Listener, ...] = ()

    @property
    def title(self) -> str:
        """How the picture names it.

        >>> Namespace(7, "container", ("container nstest", "netns nstest"), ()).title
        'container nstest · netns nstest'
        """
        return " · ".join(self.names) if self.names else f"namespace {self.inode}"

    def interface(self, index: int) -> Interface | None:
        return next((i for i in self.interfaces if i.index == index), None)


@dataclass(frozen=True)
class End:
    """One end of a link: a namespace (by inode) and an interface index in it."""

    inode: int
    index: int


@dataclass(frozen=True)
class Wiring:
    """The machine's network: namespaces, the veth pairs between them, published ports."""

    namespaces: tuple[Namespace, ...]
    pairs: tuple[tuple[End, End], ...]
    published: tuple[Published, ...] = ()
    notes: tuple[str, ...] = field(default=())
    networks: tuple[DockerNetwork, ...] = ()

    def namespace(self, inode: int) -> Namespace:
        return next(ns for ns in self.namespaces if ns.inode == inode)

    def network_of(self, bridge: str) -> DockerNetwork | None:
        """The Docker network whose Linux bridge is `bridge` (docker0: `bridge`)."""
        return next((n for n in self.networks if n.bridge == bridge), None)

    def find(self, name: str) -> Namespace | None:
        """The namespace that goes by `name` ("netns nstest", "container web", "the machine")."""
        return next((ns for ns in self.namespaces if name in ns.names), None)

    def peer(self, inode: int, index: int) -> End | None:
        """The other end of the veth pair that has (inode, index) as one end."""
        for a, b in self.pairs:
            if (a.inode, a.index) == (inode, index):
                return b
            if (b.inode, b.index) == (inode, index):
                return a
        return None


# -- parsing ---------------------------------------------------------------------------


def parse_links(data: list[dict[str, Any]]) -> tuple[Interface, ...]:
    """Interfaces from `ip -d -j addr` (or `ip -j addr`: then veth and bridge kinds are
    guessed from the peer index and from being some port's master)."""
    masters = {str(link["master"]) for link in data if link.get("master")}
    found = []
    for link in data:
        info = link.get("linkinfo") or {}
        name = str(link.get("ifname", "?"))
        kind = info.get("info_kind")
        if kind is None:
            if name in masters:
                kind = "bridge"
            elif link.get("link_type") == "loopback":
                kind = "loopback"
            else:
                kind = str(link.get("link_type", "?"))
        peer_index: int | None = None
        peer_here = False
        if link.get("link_index") is not None:
            peer_index = int(link["link_index"])
        elif isinstance(link.get("link"), str) and link["link"]:
            peer_here = True
        ipv4 = tuple(
            f"{a['local']}/{a['prefixlen']}"
            for a in link.get("addr_info", [])
            if a.get("family") == "inet"
        )
        found.append(
            Interface(
                int(link["ifindex"]),
                name,
                str(kind),
                "UP" in link.get("flags", []),
                str(link["master"]) if link.get("master") else None,
                peer_index,
                peer_here,
                ipv4,
                str(link.get("address", "")),
            )
        )
    return tuple(found)


_PROCESS = re.compile(r'\("([^"]*)",pid=')


def parse_listeners(text: str) -> tuple[Listener, ...]:
    """Listening sockets from `ss -H -ltnp`; the machine's own sshd is left out (every
    machine has it, and it says nothing about the lab), as is the Docker provider's
    embedded DNS on 127.0.0.11 (no process here: it belongs to the Docker outside).

    >>> parse_listeners('LISTEN 0 4096 0.0.0.0:5000 0.0.0.0:* users:(("docker-proxy",pid=4,fd=4))')
    (Listener(address='0.0.0.0:5000', processes=('docker-proxy',)),)
    """
    found = []
    for line in text.splitlines():
        cols = line.split(None, 5)
        if len(cols) < 5:
            continue
        names = tuple(sorted(set(_PROCESS.findall(cols[5])))) if len(cols) > 5 else ()
        if names == ("sshd",) or cols[3].startswith("127.0.0.11:"):
            continue
        found.append(Listener(cols[3], names))
    return tuple(found)


def parse(raw: str) -> Wiring:
    """A `Wiring` from the output of `GATHER_COMMAND`."""
    blocks, notes, networks = _blocks(raw)
    namespaces, published = _namespaces(blocks)
    ordered = tuple(namespaces.values())
    return Wiring(
        ordered, pair_veths(ordered), tuple(published), tuple(notes), parse_networks(networks)
    )


def _blocks(raw: str) -> tuple[list[dict[str, Any]], list[str], str]:
    """The gathered output cut at its marks: one block per namespace (its kind, name,
    inode and sections), the notes on namespaces whose process is gone, and the lines
    on Docker's networks (a section of the machine's, not of a namespace)."""
    blocks: list[dict[str, Any]] = []
    notes: list[str] = []
    networks = ""
    section = ""
    lines: list[str] = []
    ended = False
    for line in raw.splitlines():
        if not line.startswith(MARK + " "):
            lines.append(line)
            continue
        if section == "networks":
            networks = "\n".join(lines)
        elif blocks and section:
            blocks[-1][section] = "\n".join(lines)
        words = line.split()
        lines, section = [], ""
        if words[1] == "ns" and len(words) == 5:
            blocks.append({"kind": words[2], "name": words[3], "inode": int(words[4])})
        elif words[1] == "gone":
            notes.append(f"{words[2]} {words[3]} leads to no namespace (its process is gone)")
        elif words[1] in ("addr", "listen", "ports", "networks"):
            section = words[1]
        elif words[1] == "end":
            ended = True
        else:
            raise WiringError(f"unexpected line in the gathered wiring: {line!r}")
    if not ended:
        raise WiringError("the gathered wiring is cut short (no end mark)")
    return blocks, notes, networks


def _namespaces(
    blocks: list[dict[str, Any]],
) -> tuple[dict[int, Namespace], list[Published]]:
    """Each namespace once (two processes may share one), and the published ports."""
    namespaces: dict[int, Namespace] = {}
    published: list[Published] = []
    for block in blocks:
        name = "the machine" if block["kind"] == "machine" else f"{block['kind']} {block['name']}"
        for port_line in block.get("ports", "").splitlines():
            if "->" in port_line:
                left, right = (s.strip() for s in port_line.split("->", 1))
                published.append(Published(block["name"], left, right))
        known = namespaces.get(block["inode"])
        if known is not None:
            namespaces[block["inode"]] = Namespace(
                known.inode, known.kind, known.names + (name,), known.interfaces, known.listeners
            )
            continue
        try:
            data = json.loads(block.get("addr") or "[]")
        except json.JSONDecodeError as exc:
            raise WiringError(f"ip -j addr in {name} is not JSON: {exc}") from None
        namespaces[block["inode"]] = Namespace(
            block["inode"],
            block["kind"],
            (name,),
            parse_links(data),
            parse_listeners(block.get("listen", "")),
        )
    return namespaces, published


def pair_veths(namespaces: tuple[Namespace, ...]) -> tuple[tuple[End, End], ...]:
    """The veth pairs that cross namespaces: two ends in different namespaces, each
    naming the other's index. Pairs within one namespace (`veth0@veth1`) name each
    other by name and are joined the same way."""
    ends = [(ns, i) for ns in namespaces for i in ns.interfaces if i.peer_index is not None]
    pairs: list[tuple[End, End]] = []
    used: set[tuple[int, int]] = set()
    for ns_a, a in ends:
        if (ns_a.inode, a.index) in used:
            continue
        for ns_b, b in ends:
            if ns_b.inode == ns_a.inode or (ns_b.inode, b.index) in used:
                continue
            if a.peer_index == b.index and b.peer_index == a.index:
                pairs.append((End(ns_a.inode, a.index), End(ns_b.inode, b.index)))
                used |= {(ns_a.inode, a.index), (ns_b.inode, b.index)}
                break
    for ns in namespaces:
        by_name = {i.name: i for i in ns.interfaces}
        for i in ns.interfaces:
            if i.peer_here and (ns.inode, i.index) not in used:
                other = _peer_by_name(i, by_name)
                if other is not None and (ns.inode, other.index) not in used:
                    pairs.append((End(ns.inode, i.index), End(ns.inode, other.index)))
                    used |= {(ns.inode, i.index), (ns.inode, other.index)}
    return tuple(pairs)


def _peer_by_name(iface: Interface, by_name: dict[str, Interface]) -> Interface | None:
    return next((o for o in by_name.values() if o is not iface and o.kind == "veth"), None)


@dataclass(frozen=True)
class Picture:
    """What `labgen draw` made: the file, its size, how long it took, what it shows."""

    machine: str
    file: str
    format: str
    size: int
    seconds: float
    step: str | None
    steps_run: tuple[str, ...]
    wiring: Wiring


# -- recording -------------------------------------------------------------------------
# A recorded wiring (labs/LAB/recorded/ENGINE/STEP.wiring.json) must not change when the
# same lab is recorded again on the same engine: what Docker and the kernel choose at
# random (namespace inodes, interface indexes, host-side veth names, user-defined
# bridges' names and network ids, MAC addresses, the machine's own address outside) is
# replaced by what stays. The placeholders are those of the text recordings.

_RANDOM_VETH = re.compile(r"^veth[0-9a-f]{7}$")
_RANDOM_BRIDGE = re.compile(r"^br-[0-9a-f]{12}$")


def _stable_name(name: str) -> str:
    """A name Docker drew at random, as the text recordings write it.

    >>> _stable_name("veth942b137"), _stable_name("br-0123456789ab"), _stable_name("eth0")
    ('vethXXXXXXX', 'br-xxxxxxxxxxxx', 'eth0')
    """
    if _RANDOM_VETH.match(name):
        return "vethXXXXXXX"
    return "br-xxxxxxxxxxxx" if _RANDOM_BRIDGE.match(name) else name


def _outside_address(address: str) -> str:
    """The machine's own address (given by whatever runs it), prefix kept."""
    return "<eth0-address>/" + address.rsplit("/", 1)[1] if "/" in address else "<eth0-address>"


def normalised(wiring: Wiring) -> Wiring:
    """`wiring` with what changes from run to run replaced: the machine's namespace
    first, the others by name; inodes and indexes renumbered 1, 2, ... in that order
    (veth pairs still naming each other); random names, MACs and the machine's address
    outside replaced. Normalising twice changes nothing more.

    >>> machine = Namespace(4026531, "machine", ("the machine",), (
    ...     Interface(17, "eth0", "veth", True, peer_index=93, ipv4=("10.4.0.9/16",), mac="aa"),
    ...     Interface(21, "veth1a2b3c4", "veth", True, master="docker0", peer_index=2)))
    >>> web = Namespace(4026777, "container", ("container web",), (
    ...     Interface(2, "eth0", "veth", True, peer_index=21, ipv4=("172.17.0.2/16",)),))
    >>> found = normalised(Wiring((web, machine), pair_veths((web, machine))))
    >>> [(ns.inode, [(i.index, i.label, i.ipv4) for i in ns.interfaces]) for ns in found.namespaces]
    ... # doctest: +NORMALIZE_WHITESPACE
    [(1, [(1, 'eth0@if0', ('<eth0-address>/16',)), (2, 'vethXXXXXXX@if1', ())]),
     (2, [(1, 'eth0@if2', ('172.17.0.2/16',))])]
    >>> found.pairs
    ((End(inode=2, index=1), End(inode=1, index=2)),)
    >>> normalised(found) == found
    True
    """
    order = sorted(wiring.namespaces, key=lambda ns: (ns.kind != "machine", ns.title))
    ends = {
        (ns.inode, iface.index): End(n, k)
        for n, ns in enumerate(order, start=1)
        for k, iface in enumerate(sorted(ns.interfaces, key=lambda i: i.index), start=1)
    }
    outside: set[str] = set()
    namespaces = []
    for number, ns in enumerate(order, start=1):
        interfaces = []
        for iface in sorted(ns.interfaces, key=lambda i: i.index):
            interfaces.append(_stable_interface(wiring, ns, iface, ends, outside))
        namespaces.append(
            Namespace(
                number,
                ns.kind,
                ns.names,
                tuple(interfaces),
                tuple(_stable_listener(listener, outside) for listener in ns.listeners),
            )
        )
    pairs = sorted(
        _stable_pair(ends[(a.inode, a.index)], ends[(b.inode, b.index)]) for a, b in wiring.pairs
    )
    networks = tuple(
        DockerNetwork(n.name, "", _stable_name(n.bridge))
        for n in sorted(wiring.networks, key=lambda n: n.name)
    )
    return Wiring(
        tuple(namespaces),
        tuple(sorted(pairs, key=lambda p: (p[0].inode, p[0].index))),
        tuple(sorted(wiring.published, key=lambda p: (p.container, p.container_port, p.host))),
        wiring.notes,
        networks,
    )


def _stable_pair(a: End, b: End) -> tuple[End, End]:
    # The end in the later namespace first (the container's: the machine is inode 1).
    return (a, b) if (-a.inode, a.index) <= (-b.inode, b.index) else (b, a)


def _stable_interface(
    wiring: Wiring,
    ns: Namespace,
    iface: Interface,
    ends: dict[tuple[int, int], End],
    outside: set[str],
) -> Interface:
    """One interface renumbered and renamed; an end whose peer is outside the machine
    (the machine's own eth0) has its address and peer index (0) replaced."""
    ipv4 = iface.ipv4
    peer_index = iface.peer_index
    if peer_index is not None:
        peer = wiring.peer(ns.inode, iface.index)
        if peer is None and ns.kind == "machine":
            outside.update(a.rsplit("/", 1)[0] for a in ipv4)
            ipv4 = tuple(_outside_address(a) for a in ipv4)
            peer_index = 0
        elif peer is None:
            peer_index = 0
        else:
            peer_index = ends[(peer.inode, peer.index)].index
    return Interface(
        ends[(ns.inode, iface.index)].index,
        _stable_name(iface.name),
        iface.kind,
        iface.up,
        _stable_name(iface.master) if iface.master else None,
        peer_index,
        iface.peer_here,
        ipv4,
        "",
    )


def _stable_listener(listener: Listener, outside: set[str]) -> Listener:
    host, port = listener.address.rsplit(":", 1)
    host = "<eth0-address>" if host in outside else host
    return Listener(f"{host}:{port}", listener.processes)


def to_json(wiring: Wiring) -> str:
    """The wiring as JSON text (what a recording holds), keys sorted, one newline at the end."""
    return json.dumps(asdict(wiring), indent=1, sort_keys=True) + "\n"


def from_json(text: str) -> Wiring:
    """A wiring back from `to_json`'s text; WiringError when it is not one.

    >>> w = Wiring((Namespace(1, "machine", ("the machine",), (Interface(1, "lo", "loopback",
    ...     True),), (Listener("0.0.0.0:5000", ("docker-proxy",)),)),), ())
    >>> from_json(to_json(w)) == w
    True
    """
    try:
        data = json.loads(text)
        return Wiring(
            tuple(_namespace_from(ns) for ns in data["namespaces"]),
            tuple((End(**a), End(**b)) for a, b in data["pairs"]),
            tuple(Published(**p) for p in data["published"]),
            tuple(data["notes"]),
            tuple(DockerNetwork(**n) for n in data["networks"]),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise WiringError(f"not a recorded wiring: {exc}") from None


def _namespace_from(data: dict[str, Any]) -> Namespace:
    interfaces = tuple(Interface(**{**i, "ipv4": tuple(i["ipv4"])}) for i in data["interfaces"])
    listeners = tuple(
        Listener(entry["address"], tuple(entry["processes"])) for entry in data["listeners"]
    )
    return Namespace(data["inode"], data["kind"], tuple(data["names"]), interfaces, listeners)
