"""The wiring (wiring.py) as a Graphviz graph: a box per namespace, a node per interface,
bridge ports linked to their bridge, a veth pair as one line, listeners as notes, published
ports as a dashed arrow. verbs/draw.py lays it out with `dot` and writes the picture.

Labels are Graphviz's HTML-like labels, so the names and addresses in them are escaped.
"""

from __future__ import annotations

import itertools
import re
from html import escape
from typing import Any

from labgen.network.wiring import End, Interface, Listener, Namespace, Published, Wiring

FONT = "DejaVu Sans"
# Colours a learner can tell apart, printed or on a projector.
_NS_COLOURS = {"machine": "#eef3fb", "container": "#fdf3e3", "netns": "#fdf3e3"}
_BRIDGE = "#cfe8cf"
_VETH = "#ffffff"
_OTHER = "#f2f2f2"

# A listener's node, by its namespace's inode and its port: published ports start there.
ListenerNodes = dict[tuple[int, int], str]


def to_dot(wiring: Wiring, title: str = "") -> Any:
    """The wiring as a `graphviz.Graph`: a box per namespace, a node per interface,
    bridge ports linked to their bridge, a veth pair as one line, listeners as notes,
    published ports as a dashed arrow from the machine's listener to the container.

    Laid out top down, bridges above their ports and each namespace under the veth
    its pair starts from, in the bridges' order: the veth lines never cross."""
    graph = _graph(title)
    order = port_order(wiring)
    listener_nodes: ListenerNodes = {}
    for ns in _namespaces_in_order(wiring, order):
        _add_namespace(graph, ns, listener_nodes, wiring, order)
    for ns in wiring.namespaces:
        _add_bridge_ports(graph, ns, order)
    _add_veth_pairs(graph, wiring, order)
    _add_outside_peers(graph, wiring)
    _add_published_ports(graph, wiring, listener_nodes)
    return graph


def port_order(wiring: Wiring) -> dict[tuple[int, int], int]:
    """Each interface of the machine (inode, index) that has a bridge or a veth peer,
    numbered left to right: by bridge (as `ip` lists them), then by index; the
    interfaces on no bridge last. The drawing keeps this order on every rank.

    >>> from labgen.network.wiring import Interface, Namespace
    >>> machine = Namespace(1, "machine", ("the machine",), (
    ...     Interface(2, "docker0", "bridge", True), Interface(3, "br-1", "bridge", True),
    ...     Interface(9, "vethb", "veth", True, master="br-1", peer_index=8),
    ...     Interface(5, "vetha", "veth", True, master="docker0", peer_index=4)))
    >>> port_order(Wiring((machine,), ()))
    {(1, 5): 0, (1, 9): 1}
    """
    machine = next((ns for ns in wiring.namespaces if ns.kind == "machine"), None)
    if machine is None:
        return {}
    bridges = [i.name for i in machine.interfaces if i.kind == "bridge"]
    ends = [i for i in machine.interfaces if i.master in bridges or i.peer_index is not None]
    ends.sort(
        key=lambda i: (bridges.index(i.master) if i.master in bridges else len(bridges), i.index)
    )
    return {(machine.inode, i.index): n for n, i in enumerate(ends)}


def _namespaces_in_order(wiring: Wiring, order: dict[tuple[int, int], int]) -> list[Namespace]:
    """The machine first, then each namespace in the order of the machine's end of its
    veth pair (those paired with nothing on the machine last, as found)."""

    def key(ns: Namespace) -> tuple[int, int]:
        if ns.kind == "machine":
            return (0, 0)
        places = [
            order[(peer.inode, peer.index)]
            for i in ns.interfaces
            if (peer := wiring.peer(ns.inode, i.index)) is not None
            and (peer.inode, peer.index) in order
        ]
        return (1, min(places)) if places else (2, 0)

    return sorted(wiring.namespaces, key=key)


def _graph(title: str) -> Any:
    """An empty graph with the picture's layout, fonts and title."""
    import graphviz  # here: only drawing needs it, and the import is slow

    graph = graphviz.Graph("wiring", engine="dot")
    graph.attr(
        rankdir="TB",
        fontname=FONT,
        fontsize="16",
        labelloc="t",
        label=title,
        newrank="true",
        compound="true",
        ordering="out",  # edges leave a node left to right as added: port_order's order
        nodesep="0.4",
        ranksep="0.7",
    )
    graph.attr("node", fontname=FONT, fontsize="13", shape="box", style="rounded,filled")
    graph.attr("edge", fontname=FONT, fontsize="12")
    return graph


def _node_id(inode: int, index: int) -> str:
    return f"n{inode}_{index}"


def _esc(text: str) -> str:
    # quote=False: quotes need no escaping in an HTML-like label's text, and the DOT
    # source stays what it was before html.escape replaced a hand-written escape.
    return escape(text, quote=False)


def _iface_label(iface: Interface, wiring: Wiring | None = None) -> str:
    """An interface's name as `ip` shows it; a bridge of Docker's with its network's name,
    `br-0123abcd4567 (labnet)`: the name the lab's commands use for it."""
    network = wiring.network_of(iface.name) if wiring and iface.kind == "bridge" else None
    name = f"{iface.label} ({network.name})" if network else iface.label
    lines = [f"<b>{_esc(name)}</b>"]
    detail = f"index {iface.index} · {iface.kind}"
    if not iface.up:
        detail += " · down"
    lines.append(detail)
    lines.extend(_esc(a) for a in iface.ipv4)
    return "<" + "<br/>".join(lines) + ">"


def _add_namespace(
    graph: Any,
    ns: Namespace,
    listener_nodes: ListenerNodes,
    wiring: Wiring | None = None,
    order: dict[tuple[int, int], int] | None = None,
) -> None:
    """The namespace's box with its interfaces and listeners; the listeners' nodes are
    noted in `listener_nodes`. A namespace other than the machine's is one row: its
    interfaces sit level with the end of its veth pair, under the machine's."""
    with graph.subgraph(name=f"cluster_{ns.inode}") as box:
        box.attr(
            label=f"<<b>{_esc(ns.title)}</b><br/>network namespace {ns.inode}>",
            style="rounded,filled",
            fillcolor=_NS_COLOURS.get(ns.kind, "#f7f7f7"),
            color="#555555",
            fontsize="14",
            margin="14",
        )
        if ns.kind != "machine":
            box.attr(rank="same")
        for iface in _in_order(ns, order):
            colour = {"bridge": _BRIDGE, "veth": _VETH}.get(iface.kind, _OTHER)
            label = _iface_label(iface, wiring)
            box.node(_node_id(ns.inode, iface.index), label, fillcolor=colour)
        for n, listener in enumerate(ns.listeners):
            node = f"l{ns.inode}_{n}"
            listener_nodes[(ns.inode, listener.port)] = node
            _add_listener(box, node, listener)


def _in_order(ns: Namespace, order: dict[tuple[int, int], int] | None) -> list[Interface]:
    """`ns`'s interfaces in the order the picture puts them left to right: bridges (as
    `ip` lists them), then the ends in `order`, then the others. dot starts from the
    order nodes are given in and keeps it where nothing crosses."""
    if not order:
        return list(ns.interfaces)

    def key(iface: Interface) -> tuple[int, int]:
        if iface.kind == "bridge":
            return (0, ns.interfaces.index(iface))
        place = order.get((ns.inode, iface.index))
        return (1, place) if place is not None else (2, ns.interfaces.index(iface))

    return sorted(ns.interfaces, key=key)


def _add_listener(box: Any, node: str, listener: Listener) -> None:
    who = ", ".join(listener.processes) or "no process here"
    box.node(
        node,
        f"<listening <b>{_esc(listener.address)}</b><br/>{_esc(who)}>",
        shape="note",
        style="filled",
        fillcolor="#fffbe0",
    )


def _add_bridge_ports(graph: Any, ns: Namespace, order: dict[tuple[int, int], int]) -> None:
    """A line from each bridge in `ns` down to each of its ports, in `order`."""
    names = {i.name: i for i in ns.interfaces}
    ports = [i for i in ns.interfaces if i.master and i.master in names]
    ports.sort(key=lambda i: order.get((ns.inode, i.index), len(order) + i.index))
    for iface in ports:
        master = str(iface.master)
        graph.edge(
            _node_id(ns.inode, names[master].index),  # the bridge first: it is drawn above
            _node_id(ns.inode, iface.index),
            label=f" port of {master}",
            color="#2e7d32",
            penwidth="2",
        )


def _add_veth_pairs(graph: Any, wiring: Wiring, order: dict[tuple[int, int], int]) -> None:
    """A line between the two ends of each veth pair, from the machine's end (drawn
    above) down to the other, in `order`."""
    pairs = [(a, b) if (a.inode, a.index) in order else (b, a) for a, b in wiring.pairs]
    pairs.sort(key=lambda pair: order.get((pair[0].inode, pair[0].index), len(order)))
    for a, b in pairs:
        graph.edge(
            _node_id(a.inode, a.index),
            _node_id(b.inode, b.index),
            label=" veth pair",
            color="#1f4e9c",
            penwidth="2.5",
        )
    _keep_rows_in_order(graph, [pair for pair in pairs if (pair[0].inode, pair[0].index) in order])


def _keep_rows_in_order(graph: Any, pairs: list[tuple[End, End]]) -> None:
    """The machine's ends of `pairs` on one rank and the other ends on the next, each row
    chained left to right by invisible edges (an edge within a rank puts its tail on the
    left): dot's own ordering does not promise it across the namespaces' boxes."""
    for row in (0, 1):
        ends = [pair[row] for pair in pairs]
        with graph.subgraph() as same:
            same.attr(rank="same")
            for end in ends:
                same.node(_node_id(end.inode, end.index))
            for left, right in itertools.pairwise(ends):
                same.edge(
                    _node_id(left.inode, left.index),
                    _node_id(right.inode, right.index),
                    style="invis",
                )


def _add_outside_peers(graph: Any, wiring: Wiring) -> None:
    """A dashed line from each interface whose peer is not on the machine to a note
    saying so."""
    paired = {(e.inode, e.index) for pair in wiring.pairs for e in pair}
    for ns in wiring.namespaces:
        for iface in ns.interfaces:
            # The machine's own eth0: its peer is in the namespace of whatever runs the
            # machine (the host's Docker, or a hypervisor), which nothing here can enter.
            if iface.peer_index is not None and (ns.inode, iface.index) not in paired:
                out = f"out{ns.inode}_{iface.index}"
                graph.node(
                    out,
                    f"if{iface.peer_index}: outside this machine",
                    shape="plaintext",
                    style="",
                    fontcolor="#555555",
                )
                graph.edge(_node_id(ns.inode, iface.index), out, style="dashed", color="#777777")


def _add_published_ports(graph: Any, wiring: Wiring, listener_nodes: ListenerNodes) -> None:
    """A dashed arrow for each published port, from the machine's listener to the
    container's interface; a port whose ends are not both drawn gets none."""
    machine = next((ns for ns in wiring.namespaces if ns.kind == "machine"), None)
    if machine is None:
        return
    for pub in wiring.published:
        target = wiring.find(f"container {pub.container}")
        if target is not None:
            _add_published_port(graph, pub, machine, target, listener_nodes)


def _add_published_port(
    graph: Any,
    pub: Published,
    machine: Namespace,
    target: Namespace,
    listener_nodes: ListenerNodes,
) -> None:
    host_port = pub.host.rsplit(":", 1)[1]
    source = listener_nodes.get((machine.inode, int(host_port)))
    eth = next((i for i in target.interfaces if i.ipv4 and i.kind != "loopback"), None)
    if source is None or eth is None:
        return
    container_port = pub.container_port.split("/")[0]
    graph.edge(
        source,
        _node_id(target.inode, eth.index),
        label=f" -p {host_port}:{container_port}\n to {eth.ipv4[0].split('/')[0]}:{container_port}",
        style="dashed",
        color="#b35900",
        fontcolor="#b35900",
        dir="forward",
    )


_SVG_PROLOGUE = re.compile(r"\A.*?(?=<svg\b)", re.S)
_SVG_COMMENT = re.compile(r"<!--.*?-->", re.S)


def inline_svg(wiring: Wiring, title: str = "") -> str:
    """The picture as SVG to put in a page: no XML prologue, doctype or comments
    (Graphviz's names its version), on one line (Markdown ends an HTML block at a
    blank line), scaled to the page's width. Needs Graphviz's `dot`.

    >>> from labgen.network.wiring import Interface, Namespace
    >>> lo = Namespace(1, "machine", ("the machine",), (Interface(1, "lo", "loopback", True),))
    >>> svg = inline_svg(Wiring((lo,), ()), "lo alone")
    >>> svg.startswith('<svg style="max-width:100%;height:auto" '), "\\n" in svg, ">lo<" in svg
    (True, False, True)
    """
    data: bytes = to_dot(wiring, title).pipe(format="svg", engine="dot")
    svg = _SVG_COMMENT.sub("", _SVG_PROLOGUE.sub("", data.decode("utf-8")))
    svg = " ".join(line.strip() for line in svg.splitlines() if line.strip())
    return svg.replace("<svg ", '<svg style="max-width:100%;height:auto" ', 1)
