"""How `labgen trace` and `labgen draw` results look: rich for people, JSON for tools.

Imports no verb module: it prints the records of labgen.inmachine.trace and labgen.network.wiring.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from rich.table import Table

from labgen.inmachine.trace import OWN_CHAIN, PacketWalk, TraceResult
from labgen.inmachine.trace_lab import trace_json
from labgen.network.wiring import Picture, Wiring
from labgen.ui.console import escape_text, out
from labgen.ui.printers import print_json

_HOOK_STYLE = {
    "PREROUTING": "cyan",
    "OUTPUT": "cyan",
    "INPUT": "magenta",
    "FORWARD": "magenta",
    "POSTROUTING": "blue",
}


def print_trace(result: TraceResult, as_json: bool) -> None:
    """The command's outcome, then the rules its packets met in hook order."""
    if as_json:
        print_json(trace_json(result))
        return
    out.print(
        f"[bold]$ {escape_text(result.command)}[/]  [dim](exit {result.status}, "
        f"{result.seconds:.2f} s, iptables {escape_text(result.iptables)})[/]"
    )
    for name, text in (("stdout", result.stdout), ("stderr", result.stderr)):
        if text.strip():
            out.print(f"[dim]{name}:[/] {escape_text(_clip(text))}")
    hits = result.path.hits
    if not hits:
        out.print(
            "\nNo rule or policy counter moved: its packets met no rule "
            "(a socket on this machine answered, or nothing was sent)."
        )
    else:
        table = Table(box=None, show_header=True, header_style="bold", pad_edge=False)
        for column in ("hook", "where", "rule", "packets", "bytes"):
            table.add_column(column, justify="right" if column in ("packets", "bytes") else "left")
        for hit in hits:
            style = _HOOK_STYLE.get(hit.hook, "")
            rule = hit.rule if hit.rule is not None else f"policy {hit.policy}"
            text = "  " * hit.depth + ("└ " if hit.depth else "") + escape_text(rule)
            if hit.note:
                text += f"  [dim]({escape_text(hit.note)})[/]"
            if hit.background:
                text += f"  [yellow](also +{hit.background} with nothing running)[/]"
            hook = escape_text(hit.hook)
            table.add_row(
                f"[{style}]{hook}[/]" if style else hook,
                escape_text(hit.where),
                text,
                f"+{hit.packets}",
                f"+{hit.bytes}",
            )
        out.print()
        out.print(table)
    for note in result.path.notes:
        out.print(f"[dim]note: {escape_text(note)}[/]")
    if result.packets is not None:
        print_packets(result.packets)


def print_packets(walks: tuple[PacketWalk, ...]) -> None:
    """Each packet that met a rule, rule by rule; the others counted in one line."""
    met = [w for w in walks if w.met_rules(OWN_CHAIN)]
    out.print(
        f"\n[bold]Packets[/] [dim](xtables-monitor --trace; {len(walks)} seen at a "
        f"hook, {len(met)} met a rule)[/]"
    )
    for walk in met:
        out.print(f"  [bold]{escape_text(walk.header)}[/]")
        for step in walk.steps:
            what = step.rule or f"{step.kind} {step.verdict}"
            out.print(
                f"    {escape_text(step.table)}:{escape_text(step.chain)} → "
                f"{escape_text(step.verdict)}  [dim]{escape_text(what)}[/]"
            )
    # The others, by connection: the localhost request's packets and docker-proxy's own
    # connection to the container show up here, each flow named once.
    flows: dict[frozenset[str], list[str]] = {}
    for walk in walks:
        if walk in met:
            continue
        flow = _flow(walk.header)
        src, _, dst = flow.partition(" → ")
        flows.setdefault(frozenset((src, dst)), []).append(flow)
    for seen in flows.values():
        out.print(
            f"  [dim]{escape_text(seen[0])} and back: {len(seen)} packet-hooks, "
            "chain policies only (no rule)[/]"
        )
    if not walks:
        out.print("  [dim]none: xtables-monitor reported no packet[/]")


def print_picture(picture: Picture, as_json: bool) -> None:
    """Where the picture is, and what it shows in words."""
    if as_json:
        print_json(asdict(picture) | {"wiring": wiring_json(picture.wiring)})
        return
    if picture.steps_run:
        out.print(f"[dim]ran {escape_text(', '.join(picture.steps_run))} first[/]")
    out.print(
        f"wrote {escape_text(picture.file)} ({escape_text(picture.format.upper())}, "
        f"{picture.size:,} bytes, {picture.seconds:.2f} s)"
    )
    wiring = picture.wiring
    for ns in wiring.namespaces:
        faces = ", ".join(
            escape_text(i.label + (" " + " ".join(i.ipv4) if i.ipv4 else "")) for i in ns.interfaces
        )
        out.print(f"  [bold]{escape_text(ns.title)}[/]: {faces}")
    for a, b in wiring.pairs:
        ia = wiring.namespace(a.inode).interface(a.index)
        ib = wiring.namespace(b.inode).interface(b.index)
        if ia and ib:
            na, nb = wiring.namespace(a.inode).title, wiring.namespace(b.inode).title
            pair = f"{ia.label} ({na}) ↔ {ib.label} ({nb})"
            out.print(f"  veth pair: {escape_text(pair)}")
    for note in wiring.notes:
        out.print(f"[dim]note: {escape_text(note)}[/]")


def guide_keys(picture: bool = False, trace: bool = False) -> str:
    """The guide's extra keys, appended to its prompts (ui/printers.py has the others).

    >>> guide_keys(picture=True, trace=True)
    '   [t] trace it   [k] kernel walk   [p] picture'
    """
    traced = "   [t] trace it   [k] kernel walk" if trace else ""
    return traced + ("   [p] picture" if picture else "")


def _flow(header: str) -> str:
    """The connection a packet belongs to, as this packet shows it.

    >>> _flow("OUT=lo SRC=10.0.0.1 DST=10.0.0.2 LEN=60 SPORT=40000 DPORT=5000 SYN")
    '10.0.0.1:40000 → 10.0.0.2:5000'
    """
    f = dict(word.split("=", 1) for word in header.split() if "=" in word)
    return f"{f.get('SRC')}:{f.get('SPORT')} → {f.get('DST')}:{f.get('DPORT')}"


def _clip(text: str, limit: int = 2000) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[:limit] + f"… ({len(text) - limit} more characters)"


def wiring_json(wiring: Wiring) -> dict[str, Any]:
    """The wiring for tools: namespaces with their interfaces (and `ip`'s `name@ifN`
    labels), veth pairs as pairs of (namespace inode, interface index), published ports."""
    data = asdict(wiring)
    for ns, raw in zip(wiring.namespaces, data["namespaces"], strict=True):
        for iface, entry in zip(ns.interfaces, raw["interfaces"], strict=True):
            entry["label"] = iface.label
    data["veth_pairs"] = data.pop("pairs")
    return data
