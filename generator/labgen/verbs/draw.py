"""`labgen draw`: a picture of the machine's namespaces, veth pairs, bridges and listeners."""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

from labgen.core.errors import MachineError, PrerequisiteError, UsageError
from labgen.machine import registry, ssh
from labgen.machine.steps import Session, furthest_done, run_step
from labgen.network import wiring
from labgen.network.wiring import Interface, Wiring

FORMATS = ("svg", "png")


def draw(machine: str, output: Path | None = None, step: str | None = None) -> wiring.Picture:
    """Draw `machine`'s network now, or after `step`: the lab's steps up to it that have
    not run yet run first (a machine already past it is refused: steps do not undo).

    The format follows `output`'s suffix (.svg, default; .png); without `output` the
    picture is MACHINE.svg (MACHINE-STEP.svg with a step) in the current directory.
    """
    instance, state, lab = registry.running(machine)
    target = lab.step(step) if step is not None else None
    name = f"{machine}-{step}.svg" if step else f"{machine}.svg"
    output = output or Path(name)
    fmt = output.suffix.lstrip(".").lower() or "svg"
    if fmt not in FORMATS:
        raise UsageError(f"cannot draw {output}: the picture is .svg or .png")
    began = time.monotonic()
    ran: list[str] = []
    with ssh.connect(instance.ssh_config) as client:
        if target is not None:
            ran = _run_up_to(Session(instance, state, lab, client), target.id)
        out, err = io.BytesIO(), io.BytesIO()
        code = ssh.run(client, wiring.GATHER_COMMAND, out, err)
    if code != 0:
        raise MachineError(
            f"reading the namespaces of {machine!r} failed (exit {code}): "
            f"{err.getvalue().decode(errors='replace').strip()}"
        )
    try:
        found = wiring.parse(out.getvalue().decode(errors="replace"))
    except wiring.WiringError as exc:
        raise MachineError(f"the namespaces of {machine!r} could not be read: {exc}") from None
    title = f"{lab.name} on machine {machine}" + (f", after step {step}" if step else "")
    try:
        data = render(found, fmt, title)
    except Exception as exc:  # graphviz.ExecutableNotFound, without importing graphviz here
        if type(exc).__name__ == "ExecutableNotFound":
            raise PrerequisiteError(
                "drawing needs Graphviz's `dot`", hint="apt-get install graphviz"
            ) from None
        raise
    output.write_bytes(data)
    return wiring.Picture(
        machine,
        str(output),
        fmt,
        len(data),
        round(time.monotonic() - began, 2),
        step,
        tuple(ran),
        found,
    )


def _run_up_to(session: Session, step_id: str) -> list[str]:
    """Run the lab's steps that lead to `step_id` and have not run; their ids."""
    ids = [s.id for s in session.lab.steps]
    last = furthest_done(session.lab, session.state)
    if last is not None and ids.index(last.id) > ids.index(step_id):
        raise UsageError(
            f"machine {session.instance.name!r} is past step {step_id!r} (at {last.id!r}); "
            "steps do not undo",
            hint=f"`labgen draw {session.instance.name}` draws it now",
        )
    ran = []
    start = ids.index(last.id) + 1 if last is not None else 0
    for step in session.lab.steps[start : ids.index(step_id) + 1]:
        outcome = run_step(session, step, capture=True)
        if not outcome.ok:
            raise MachineError(
                f"step {step.id!r} failed (exit {outcome.exit_code}) on the way to {step_id!r}",
                hint=outcome.output[-500:].strip() or None,
            )
        ran.append(step.id)
    return ran


# -- the picture ------------------------------------------------------------------------


FONT = "DejaVu Sans"
# Colours a learner can tell apart, printed or on a projector.
_NS_COLOURS = {"machine": "#eef3fb", "container": "#fdf3e3", "netns": "#fdf3e3"}
_BRIDGE = "#cfe8cf"
_VETH = "#ffffff"
_OTHER = "#f2f2f2"


def _node_id(inode: int, index: int) -> str:
    return f"n{inode}_{index}"


def _iface_label(iface: Interface) -> str:
    lines = [f"<b>{_esc(iface.label)}</b>"]
    detail = f"index {iface.index} · {iface.kind}"
    if not iface.up:
        detail += " · down"
    lines.append(detail)
    lines.extend(_esc(a) for a in iface.ipv4)
    return "<" + "<br/>".join(lines) + ">"


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_dot(wiring: Wiring, title: str = "") -> Any:
    """The wiring as a `graphviz.Graph`: a box per namespace, a node per interface,
    bridge ports linked to their bridge, a veth pair as one line, listeners as notes,
    published ports as a dashed arrow from the machine's listener to the container."""
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
        nodesep="0.4",
        ranksep="0.7",
    )
    graph.attr("node", fontname=FONT, fontsize="13", shape="box", style="rounded,filled")
    graph.attr("edge", fontname=FONT, fontsize="12")
    listener_nodes: dict[tuple[int, int], str] = {}
    for ns in wiring.namespaces:
        with graph.subgraph(name=f"cluster_{ns.inode}") as box:
            box.attr(
                label=f"<<b>{_esc(ns.title)}</b><br/>network namespace {ns.inode}>",
                style="rounded,filled",
                fillcolor=_NS_COLOURS.get(ns.kind, "#f7f7f7"),
                color="#555555",
                fontsize="14",
                margin="14",
            )
            for iface in ns.interfaces:
                colour = {"bridge": _BRIDGE, "veth": _VETH}.get(iface.kind, _OTHER)
                box.node(_node_id(ns.inode, iface.index), _iface_label(iface), fillcolor=colour)
            for n, listener in enumerate(ns.listeners):
                node = f"l{ns.inode}_{n}"
                listener_nodes[(ns.inode, listener.port)] = node
                who = ", ".join(listener.processes) or "no process here"
                box.node(
                    node,
                    f"<listening <b>{_esc(listener.address)}</b><br/>{_esc(who)}>",
                    shape="note",
                    style="filled",
                    fillcolor="#fffbe0",
                )
    for ns in wiring.namespaces:
        names = {i.name: i for i in ns.interfaces}
        for iface in ns.interfaces:
            if iface.master and iface.master in names:
                graph.edge(
                    _node_id(ns.inode, iface.index),
                    _node_id(ns.inode, names[iface.master].index),
                    label=f" port of {iface.master}",
                    color="#2e7d32",
                    penwidth="2",
                )
    for a, b in wiring.pairs:
        graph.edge(
            _node_id(a.inode, a.index),
            _node_id(b.inode, b.index),
            label=" veth pair",
            color="#1f4e9c",
            penwidth="2.5",
        )
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
    machine = next((ns for ns in wiring.namespaces if ns.kind == "machine"), None)
    for pub in wiring.published:
        target = wiring.find(f"container {pub.container}")
        if machine is None or target is None:
            continue
        port = int(pub.host.rsplit(":", 1)[1])
        source = listener_nodes.get((machine.inode, port))
        eth = next((i for i in target.interfaces if i.ipv4 and i.kind != "loopback"), None)
        if source is None or eth is None:
            continue
        graph.edge(
            source,
            _node_id(target.inode, eth.index),
            label=f" -p {pub.host.rsplit(':', 1)[1]}:{pub.container_port.split('/')[0]}\n"
            f" to {eth.ipv4[0].split('/')[0]}:{pub.container_port.split('/')[0]}",
            style="dashed",
            color="#b35900",
            fontcolor="#b35900",
            dir="forward",
        )
    return graph


def render(wiring: Wiring, fmt: str = "svg", title: str = "") -> bytes:
    """The picture as SVG or PNG bytes (Graphviz's `dot` lays it out).

    Raises FileNotFoundError-like `graphviz.ExecutableNotFound` when `dot` is missing.
    """
    graph = to_dot(wiring, title)
    data: bytes = graph.pipe(format=fmt, engine="dot")
    return data
