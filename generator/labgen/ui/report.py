"""What `labgen workshop report` prints: per step, per seat, where people are now; or the
same record as JSON, or as CSV (a row per seat and checked step, for a spreadsheet).

Step titles, failure messages and attendees' names come from labs, checks and people,
so they are escaped before rich reads them (console.escape_text).
"""

from __future__ import annotations

import csv
import sys

from rich.table import Table

from labgen.core.results import SeatProgress, WorkshopReport
from labgen.ui.console import escape_text, out
from labgen.ui.printers import print_json
from labgen.workshop.report import clock, duration, iso


def print_report(report: WorkshopReport, fmt: str) -> None:
    """The report as text (tables), 'json' or 'csv' on stdout."""
    if fmt == "json":
        print_json(report.to_json())
    elif fmt == "csv":
        _print_csv(report)
    else:
        _print_tables(report)


def _print_csv(report: WorkshopReport) -> None:
    writer = csv.writer(sys.stdout)
    writer.writerow(
        ["seat", "attendee", "step", "state", "done_at", "seconds", "source", "attempts"]
    )
    checked = [s.step for s in report.steps if s.checked]
    for seat in report.seats:
        done = {d.step: d for d in seat.done}
        for step in checked:
            d = done.get(step)
            state = "done" if d else (seat.at_state if step == seat.at_step else "not-yet")
            writer.writerow(
                [
                    seat.seat,
                    seat.attendee,
                    step,
                    state,
                    iso(d.at) if d else "",
                    "" if d is None or d.seconds is None else d.seconds,
                    d.source if d else "",
                    seat.attempts.get(step, 0),
                ]
            )


def _print_tables(report: WorkshopReport) -> None:
    out.print(
        f"workshop [bold]{escape_text(report.workshop)}[/] (lab {escape_text(report.lab)}), "
        f"{len(report.seats)} seats, as of {clock(report.at)}"
    )
    steps = Table(title="per step", title_justify="left")
    for column in (
        "step",
        "done by",
        "median",
        "slowest",
        "attempts",
        "failed",
        "commonest failure",
    ):
        steps.add_column(column, overflow="fold")
    for s in report.steps:
        if not s.checked:
            continue
        slowest = f"{duration(s.slowest_seconds)} ({s.slowest_seat})" if s.slowest_seat else ""
        common = f"{s.commonest_failure} (x{s.commonest_count})" if s.commonest_count else ""
        steps.add_row(
            escape_text(s.step),
            f"{s.reached}/{len(report.seats)}",
            duration(s.median_seconds),
            escape_text(slowest),
            str(s.attempts),
            str(s.failures),
            escape_text(common),
        )
    out.print(steps)
    seats = Table(title="per seat: steps done (time of day, time taken)", title_justify="left")
    for column in ("seat", "attendee", "done", "now at", "since", "last failure"):
        seats.add_column(column, overflow="fold")
    for seat in report.seats:
        seats.add_row(*_seat_cells(seat, report.at))
    out.print(seats)


def _seat_cells(seat: SeatProgress, now: float) -> list[str]:
    done = ", ".join(f"{d.step} {clock(d.at)} ({duration(d.seconds) or '-'})" for d in seat.done)
    at = "all done" if not seat.at_step else f"{seat.at_step} ({seat.at_state})"
    if seat.machine != "ready":
        at += f", machine {seat.machine}"
    since = f"{clock(seat.since)}, {duration(now - seat.since)} ago" if seat.since else ""
    return [
        escape_text(seat.seat),
        escape_text(seat.attendee),
        escape_text(done or "-"),
        escape_text(at),
        since if seat.at_step else "",
        escape_text(seat.last_failure),
    ]
