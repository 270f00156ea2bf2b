"""What `labgen workshop` prints of who sits where: `serve`'s join line, `seats`'s table,
and what `assign`, `free` and `reissue` did.

Attendees' names are typed by people (on the join page too): escaped like every other
string that is not labgen's own. A seat's link carries its token: `seats` prints links
only when asked (--links), and `reissue` prints the one new link, the reason it ran.
"""

from __future__ import annotations

import time

from rich.table import Table

from labgen.ui.console import escape_text, out
from labgen.ui.live import print_urls
from labgen.ui.printers import print_json
from labgen.workshop.join import RoomSeats, SeatState
from labgen.workshop.room import Room
from labgen.workshop.seats import SeatStatus

HOW = {"": "free", "assigned": "assigned", "joined": "joined"}


def _when(epoch: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(epoch)) if epoch else ""


def print_serving(room: Room, base: str, fingerprint: str | None, join: str) -> None:
    """`workshop serve`: the seats' and the instructor's links, then the join page's
    short URL, the one to show the room."""
    print_urls(room, base, fingerprint)
    out.print(f"join page, to show the room: {escape_text(join)}", soft_wrap=True)


def print_seats(seats: RoomSeats, as_json: bool, links: bool = False) -> None:
    """`workshop seats`: a row per seat (attendee, how it is held, since, the token's
    generation, its link with --links) and the join page."""
    if as_json:
        print_json(seats.to_json(links))
        return
    title = escape_text(f"workshop {seats.workshop} (lab {seats.lab})")
    table = Table(title=title, title_justify="left")
    columns = ["seat", "attendee", "how", "since", "link gen."] + (["link"] if links else [])
    for column in columns:
        table.add_column(column, overflow="fold")
    for s in seats.seats:
        row = [s.seat, s.attendee, HOW.get(s.how, s.how), _when(s.since), str(s.generation)]
        table.add_row(*(escape_text(v) for v in row + ([seats.link(s)] if links else [])))
    out.print(table)
    taken = sum(1 for s in seats.seats if s.how)
    state = "open" if seats.open else "closed"
    where = seats.join_url if seats.base else f"/j/{seats.code} on the server's address"
    out.print(
        f"{taken} of {len(seats.seats)} seats taken; join page ({state}): {escape_text(where)}",
        soft_wrap=True,
    )


def print_seat_change(seats: RoomSeats, state: SeatState, action: str) -> None:
    """What `assign`, `free` or `reissue` (the `action`) did to a seat; a re-issue's new
    link (the old one opens nothing now)."""
    seat = escape_text(state.seat)
    if action == "assign":
        out.print(f"{seat} is kept for {escape_text(state.attendee)} (the join page skips it)")
    elif action == "free":
        out.print(
            f"{seat} is free; its old link opens nothing now (link generation {state.generation})"
        )
    else:
        out.print(
            f"{seat} has a new link (generation {state.generation}); the old one opens nothing now"
        )
    if action != "free":
        link = seats.link(state)
        note = "" if seats.base else " (after the server's address: no serve has run yet)"
        out.print(f"link: {escape_text(link)}{note}", soft_wrap=True)


def print_placement(hosts: list[str], workshop: str) -> None:
    """`workshop up --hosts`: each seat's host, then how many seats each host takes."""
    from labgen.workshop.room import seat_name

    counts: dict[str, int] = {}
    for number, host in enumerate(hosts, 1):
        out.print(f"placement: {escape_text(seat_name(workshop, number))} -> {escape_text(host)}")
        counts[host] = counts.get(host, 0) + 1
    per = ", ".join(f"{escape_text(h)} {n}" for h, n in counts.items())
    out.print(f"placement: {per} (most free memory first, 135 MiB a seat, 10 seats per core)")


def print_status(rooms: list[tuple[Room, list[SeatStatus]]], as_json: bool) -> None:
    """`workshop status`: ui/live.py's table, with each seat's host when a workshop has
    seats on other hosts (`up --hosts`); --json always names it."""

    from labgen.ui import live

    if as_json or not any(r.seat_hosts for r, _ in rooms):
        live.print_status(rooms, as_json)
        return
    for room, seats in rooms:
        title = escape_text(f"workshop {room.name} (lab {room.lab})")
        table = Table(title=title, title_justify="left")
        for column in ("seat", "host", "state", "ssh", "steps run"):
            table.add_column(column)
        for s in seats:
            table.add_row(
                escape_text(s.seat),
                escape_text(s.host),
                escape_text(s.state),
                escape_text(s.ssh),
                str(len(s.steps_run)),
            )
        out.print(table)
