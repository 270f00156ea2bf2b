"""What `labgen workshop` prints: the seats coming up or going, live; status; the URLs.

rich, as ui.py uses it: a live table of every seat while Vagrant works, redrawn a few
times a second (twenty seats' output lines would scroll past unread).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict

from rich.console import Console
from rich.live import Live
from rich.table import Table

from labgen.workshop.room import Room
from labgen.workshop.seats import FAILED, READY, REMOVED, Report, SeatEvent, SeatStatus

out = Console()
err = Console(stderr=True)
COLOURS = {READY: "green", REMOVED: "green", FAILED: "red", "unreachable": "red"}


@contextmanager
def seat_progress(title: str) -> Iterator[Report]:
    """A live table of seats; yields the Report callback the seat functions call."""
    events: dict[str, SeatEvent] = {}
    lock = threading.Lock()

    def table() -> Table:
        grid = Table(title=title, title_justify="left", expand=False)
        for column in ("seat", "state", "s", "last line"):
            grid.add_column(column, no_wrap=True, overflow="ellipsis", max_width=70)
        with lock:
            rows = sorted(events.values(), key=lambda e: e.seat)
        for e in rows:
            colour = COLOURS.get(e.state, "yellow")
            seconds = f"{e.seconds:.0f}" if e.seconds else ""
            grid.add_row(e.seat, f"[{colour}]{e.state}[/]", seconds, e.line)
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
    ready = [e for e in finals if e.state == READY]
    out.print(
        f"workshop [bold]{room.name}[/]: {len(ready)} of {len(finals)} seats of lab "
        f"{room.lab} ready in {seconds:.0f} s"
    )
    for event in finals:
        if event.state != READY:
            out.print(f"[red]{event.seat} failed after 2 tries:[/] {event.line}")
    out.print(f"next: labgen workshop serve {room.name}")


def print_status(rooms: list[tuple[Room, list[SeatStatus]]], as_json: bool) -> None:
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
        print(json.dumps(data, indent=2))
        return
    if not rooms:
        out.print("no workshops")
    for room, seats in rooms:
        table = Table(title=f"workshop {room.name} (lab {room.lab})", title_justify="left")
        for column in ("seat", "state", "ssh", "steps run"):
            table.add_column(column)
        for s in seats:
            colour = COLOURS.get(s.state, "yellow")
            table.add_row(s.seat, f"[{colour}]{s.state}[/]", s.ssh, str(len(s.steps_run)))
        out.print(table)


def print_down(name: str, events: list[SeatEvent]) -> None:
    failed = [e for e in events if e.state != REMOVED]
    for e in failed:
        err.print(f"[red]{e.seat}: not removed:[/] {e.line}")
    if not failed:
        out.print(f"workshop {name}: {len(events)} seats removed")


def print_urls(room: Room, base: str) -> None:
    """The pages to hand out: one URL per seat, and the instructor's (keep that one)."""
    out.print(f"workshop [bold]{room.name}[/] (lab {room.lab}) at {base}  (Ctrl-C stops)")
    out.print(f"instructor: {base}/i/{room.instructor_token}/")
    for seat in room.seats:
        out.print(f"{seat}: {base}/w/{seat}/{room.seat_tokens[seat]}/", soft_wrap=True)
