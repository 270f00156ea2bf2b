"""The command line of the views of a machine's network: trace, draw.

Parses arguments and calls one verb function each; cli.py adds these commands to
`labgen` under its error boundary.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from labgen.cli.options import JSON
from labgen.core.errors import UsageError
from labgen.ui import kernel as ui_kernel
from labgen.ui import views as ui_views
from labgen.verbs import draw, trace


@click.command("trace", context_settings={"ignore_unknown_options": True})
@click.argument("machine")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.option("--packets", is_flag=True, help="Also each packet's walk (xtables-monitor --trace).")
@click.option(
    "--kernel",
    is_flag=True,
    help="The kernel's view instead: each interface and namespace the command's "
    "connections crossed, and drops with their reason (bpftrace).",
)
@click.option("--raw", is_flag=True, help="With --kernel: bpftrace's events as printed.")
@JSON
def trace_cmd(
    machine: str,
    command: tuple[str, ...],
    packets: bool,
    kernel: bool,
    raw: bool,
    as_json: bool,
) -> None:
    """Run COMMAND (after --) on MACHINE and show which rules its packets met.

    Reads every table's counters (iptables-save -c) before and after the command,
    never zeroing them, and lists the rules and chain policies that moved, in the
    order the kernel's hooks visit them. Counters that also move while nothing runs
    (a second reading around an idle second) are pointed out. Exits with COMMAND's
    exit status. The words after -- are one command line for the machine's shell,
    as with `labgen ssh`: quote what your own shell should not expand.

    With --kernel, the kernel's view instead: the packets of each TCP connection the
    command opened, interface by interface through the machine's namespaces
    (tracepoints read with bpftrace), and the packets freed with the kernel's reason.

    Example: labgen trace port-forwarding -- curl -s localhost:5000
    """
    if not command:
        raise UsageError("which command? `labgen trace MACHINE -- CMD`")
    if raw and not kernel:
        raise UsageError("--raw goes with --kernel: `labgen trace MACHINE --kernel --raw -- CMD`")
    if kernel and packets:
        raise UsageError("--kernel and --packets are two views: choose one")
    # Words joined as ssh and `labgen ssh` join them: the remote shell reads the line.
    line = " ".join(command)
    if kernel:
        walk = trace.trace_kernel(machine, line)
        ui_kernel.print_walk(walk, as_json, raw)
        sys.exit(walk.status)
    result = trace.trace_command(machine, line, packets=packets)
    ui_views.print_trace(result, as_json)
    sys.exit(result.status)


@click.command("draw")
@click.argument("machine")
@click.option("--step", "-s", help="Run the lab's steps up to STEP first, then draw.")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The file: .svg (default) or .png. Default: MACHINE.svg here.",
)
@JSON
def draw_cmd(machine: str, step: str | None, output: Path | None, as_json: bool) -> None:
    """Draw MACHINE's network: namespaces, veth pairs, bridges, addresses, listeners.

    Gathers `ip -d -j addr` and `ss -ltnp` in the machine's namespace, every running
    container's and every named one (/var/run/netns), and lays them out with Graphviz.
    """
    ui_views.print_picture(draw.draw(machine, output, step), as_json)


COMMANDS: list[click.Command] = [trace_cmd, draw_cmd]
