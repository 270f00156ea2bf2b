"""How `labgen trace --kernel` and doctor's kernel view look: rich for people, JSON for
tools. Imports no verb module: it prints labgen.inmachine.kernel's records."""

from __future__ import annotations

import sys

from labgen.inmachine.kernel import KernelWalk
from labgen.ui.console import escape_text, out
from labgen.ui.printers import print_json


def print_walk(walk: KernelWalk, as_json: bool = False, raw: bool = False) -> None:
    """The walk: one block per flow, one line per interface crossed, then the drops;
    with `raw` bpftrace's lines as printed, with `as_json` every field."""
    if raw:
        sys.stdout.write(walk.raw if walk.raw.endswith("\n") else walk.raw + "\n")
        return
    if as_json:
        print_json(walk.to_json())
        return
    out.print(
        f"[bold]$ {escape_text(walk.command)}[/]  [dim](on {escape_text(walk.machine)}, "
        f"exit {walk.status})[/]"
    )
    if not walk.flows and not walk.drops:
        out.print(
            "\nNo TCP connection opened by the command was seen in the machine's "
            "namespaces (UDP and connections already open are not shown)."
        )
    for hops in walk.flows:
        out.print(f"\n[bold]{escape_text(hops[0].src)} → {escape_text(hops[0].dst)}[/]")
        for hop in hops:
            arrow = "[cyan]→[/] out" if hop.direction == "out" else "[magenta]←[/] in "
            out.print(f"  {arrow}  {escape_text(hop.dev):<16} [dim]{escape_text(hop.netns)}[/]")
    for drop in walk.drops:
        why = walk.reasons.get(drop.reason, str(drop.reason))
        out.print(
            f"\n[red]dropped[/] {escape_text(drop.src)} → {escape_text(drop.dst)} "
            f"at {escape_text(drop.location)} "
            f"([bold]{escape_text(why)}[/])"
        )
    out.print(f"\n[dim]({walk.hidden} events of other connections or namespaces not shown)[/]")


def print_kernel_view(report: dict[str, bool]) -> None:
    """doctor's kernel view of this host: what `trace --kernel` (and pwru) would find."""
    out.print("\n[bold]kernel view[/] [dim](labgen trace --kernel)[/]")
    notes = {
        "btf": "BTF (/sys/kernel/btf/vmlinux): the probes read packets' fields through it",
        "tracepoints": "net and skb tracepoints (net_dev_queue, netif_receive_skb, kfree_skb)",
        "kprobes": "kprobes (pwru needs them; trace --kernel does not)",
    }
    for key, text in notes.items():
        mark = "[green]ok[/]  " if report.get(key) else "[yellow]no[/]  "
        out.print(f"  {mark}{text}")
