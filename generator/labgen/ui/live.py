"""What `labgen workshop` prints: the seats coming up or going, live; status; the URLs.

rich, as printers.py uses it: a live table of every seat while Vagrant works, redrawn a
few times a second (twenty seats' output lines would scroll past unread). A seat's last
line is Vagrant's or Docker's own text, so it is escaped like every other such string.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict

from rich.live import Live
from rich.table import Table

from labgen.ui.console import err, escape_text, out
from labgen.ui.printers import print_json
from labgen.workshop.room import Room
from labgen.workshop.seats import FAILED, READY, REMOVED, Report, SeatEvent, SeatStatus

COLOURS = {READY: "green", REMOVED: "green", FAILED: "red", "unreachable": "red"}


def _state(state: str) -> str:
    """A seat's state in its colour (yellow for one still under way)."""
    return f"[{COLOURS.get(state, 'yellow')}]{escape_text(state)}[/]"


@contextmanager
def seat_progress(title: str) -> Iterator[Report]:
    """A live table of seats; yields the Report callback the seat functions call."""
    events: dict[str, SeatEvent] = {}
    lock = threading.Lock()

    def table() -> Table:
        grid = Table(title=escape_text(title), title_justify="left", expand=False)
        for column in ("seat", "state", "s", "last line"):
            grid.add_column(column, no_wrap=True, overflow="ellipsis", max_width=70)
        with lock:
            rows = sorted(events.values(), key=lambda e: e.seat)
        for e in rows:
            seconds = f"{e.seconds:.0f}" if e.seconds else ""
            grid.add_row(escape_text(e.seat), _state(e.state), seconds, escape_text(e.line))
        return grid

    def report(event: SeatEvent) -> None:
        with lock:
            old = events.get(event.seat)
            if not event.line and old is not None and old.state == event.state:
                event.line = old.line
            events[event.seat] = event

    with Live(get_renderable=table, console=err, refresh_per_second=4, transient=False):
        yield report


def print_up(room: Room, finals: list[SeatEvent], seconds: float) -> None:
    """`workshop up`: how many seats are ready, each that failed, and what comes next."""
    ready = [e for e in finals if e.state == READY]
    out.print(
        f"workshop [bold]{escape_text(room.name)}[/]: {len(ready)} of {len(finals)} seats "
        f"of lab {escape_text(room.lab)} ready in {seconds:.0f} s"
    )
    for event in finals:
        if event.state != READY:
            out.print(
                f"[red]{escape_text(event.seat)} failed after 2 tries:[/] {escape_text(event.line)}"
            )
    out.print(f"next: labgen workshop serve {escape_text(room.name)}")


def print_status(rooms: list[tuple[Room, list[SeatStatus]]], as_json: bool) -> None:
    """`workshop status`: a table of seats per workshop, whether each answers over SSH."""
    if as_json:
        data = [
            {
                "workshop": r.name,
                "lab": r.lab,
                "created": r.created,
                "seats": [asdict(s) for s in ss],
            }
            for r, ss in rooms
        ]
        print_json(data)
        return
    if not rooms:
        out.print("no workshops")
    for room, seats in rooms:
        title = escape_text(f"workshop {room.name} (lab {room.lab})")
        table = Table(title=title, title_justify="left")
        for column in ("seat", "state", "ssh", "steps run"):
            table.add_column(column)
        for s in seats:
            table.add_row(
                escape_text(s.seat), _state(s.state), escape_text(s.ssh), str(len(s.steps_run))
            )
        out.print(table)


def print_down(name: str, events: list[SeatEvent], purged: bool = False) -> None:
    """`workshop down`: each seat not removed with why, or that all were, and where the
    room's database is (kept for `workshop report`) or that it went."""
    failed = [e for e in events if e.state != REMOVED]
    for e in failed:
        err.print(f"[red]{escape_text(e.seat)}: not removed:[/] {escape_text(e.line)}")
    if failed:
        return
    out.print(f"workshop {escape_text(name)}: {len(events)} seats removed")
    if purged:
        out.print("its database is removed")
    else:
        out.print(
            f"its database stays for `labgen workshop report {escape_text(name)}` "
            f"(`labgen workshop down {escape_text(name)} --purge` removes it)"
        )


def print_urls(room: Room, base: str, fingerprint: str | None = None) -> None:
    """The pages to hand out: one URL per seat, and the instructor's (keep that one);
    over TLS the certificate's fingerprint, for attendees to compare with their browser's."""
    at = escape_text(base)
    out.print(
        f"workshop [bold]{escape_text(room.name)}[/] (lab {escape_text(room.lab)}) at {at}"
        "  (Ctrl-C stops)"
    )
    if fingerprint:
        out.print(f"certificate SHA-256: {escape_text(fingerprint)}", soft_wrap=True)
    out.print(f"instructor: {at}/i/{escape_text(room.instructor_token)}/")
    for seat in room.seats:
        out.print(
            f"{escape_text(seat)}: {at}/w/{escape_text(seat)}/"
            f"{escape_text(room.seat_tokens[seat])}/"
        )
