"""Printing for `labgen hosts` and `labgen doctor --host` (printing only)."""

from __future__ import annotations

from dataclasses import asdict

from labgen.hosts.probe import HostReport
from labgen.hosts.results import HostAdded
from labgen.hosts.transfer import PushResult
from labgen.ui.console import escape_text, out
from labgen.ui.printers import print_json


def print_added(added: HostAdded) -> None:
    """The host registered, the host key recorded, and what it lacks."""
    out.print(f"added host {escape_text(added.host.name)} ({escape_text(added.host.url)})")
    if added.host_key:
        out.print(
            f"recorded its SSH host key in labgen's known_hosts: {escape_text(added.host_key)}"
        )
    print_report(added.report)


def print_list(reports: list[HostReport], as_json: bool) -> None:
    """One line per host: answers, cores, memory, free memory, disk, engines."""
    if as_json:
        print_json([asdict(r) for r in reports])
        return
    if not reports:
        out.print("no hosts registered: `labgen hosts add NAME ssh://user@host`")
        return
    for r in reports:
        if not r.answers:
            out.print(f"{escape_text(r.name):12} {escape_text(r.url)}  [red]not answering[/red]")
            continue
        engines = ", ".join(r.engines) or "no base image"
        out.print(
            f"{escape_text(r.name):12} {escape_text(r.url)}  {r.cores} cores, "
            f"{r.memory_mib} MiB ({r.free_memory_mib} MiB free), {r.disk_free_gib} GiB disk free, "
            f"engines: {escape_text(engines)}"
        )


def print_report(report: HostReport, as_json: bool = False) -> None:
    """A host's health: what it has, then each gap with its fix."""
    if as_json:
        print_json(asdict(report))
        return
    state = "answers" if report.answers else "[red]does not answer[/red]"
    out.print(f"host {escape_text(report.name)} ({escape_text(report.url)}): {state}")
    if report.answers:
        out.print(
            f"  {report.kind} {escape_text(report.engine_version)}, {report.cores} cores, "
            f"{report.memory_mib} MiB ({report.free_memory_mib} MiB free), "
            f"{report.disk_free_gib} GiB disk free, base images: "
            f"{escape_text(', '.join(report.engines) or 'none')}"
        )
    for what, fix in report.problems:
        out.print(f"  [red]✗[/red] {escape_text(what)}")
        out.print(f"    fix: {escape_text(fix)}")
    if not report.problems:
        out.print("  [green]✓[/green] ready for machines")


def print_removed(name: str) -> None:
    """The host removed from the list."""
    out.print(f"removed host {escape_text(name)} (machines on it were not touched)")


def print_pushed(result: PushResult) -> None:
    """The image pushed, with its size and time."""
    out.print(
        f"pushed {escape_text(result.image)} to {escape_text(result.host)}: "
        f"{result.megabytes} MB in {result.seconds} s"
    )
