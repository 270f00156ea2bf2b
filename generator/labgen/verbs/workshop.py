"""`labgen workshop`: a room of seats (machines of one lab), served to a room of browsers.

up brings the seats up J at a time; status says which answer; down removes them all;
serve runs the web app of the attendees' pages and the instructor's grid.
"""

from __future__ import annotations

from collections.abc import Callable

from labgen.core.context import Context
from labgen.core.errors import PrerequisiteError, UsageError
from labgen.workshop import room as rooms
from labgen.workshop import seats
from labgen.workshop.room import Room
from labgen.workshop.seats import Report, SeatEvent, SeatStatus


def up(
    ctx: Context,
    lab_ref: str,
    n_seats: int,
    name: str | None,
    jobs: int,
    report: Report,
    spares: int = 0,
) -> tuple[Room, list[SeatEvent]]:
    """Bring up the workshop's seats (claiming pooled machines where there are some),
    then keep `spares` pooled machines ready for resets; each seat's final event."""
    if jobs < 1:
        raise UsageError(f"-j must be at least 1, not {jobs}")
    if not 0 <= spares <= rooms.MAX_SEATS:
        raise UsageError(f"--spares must be between 0 and {rooms.MAX_SEATS}, not {spares}")
    return seats.up_seats(ctx, lab_ref, n_seats, name, jobs, report, spares)


def status(name: str | None = None) -> list[tuple[Room, list[SeatStatus]]]:
    """Each workshop (or the one named) and the state of its seats."""
    names = [name] if name else rooms.all_names()
    return [(room, seats.seat_status(room)) for room in (rooms.load(n) for n in names)]


def down(name: str, jobs: int, report: Report) -> list[SeatEvent]:
    """Remove every seat of the workshop, in parallel, and then the workshop."""
    return seats.down_seats(name, jobs, report)


def serve(
    ctx: Context,
    name: str,
    listen: str,
    on_ready: Callable[[Room, str], None],
    stop_after: float | None = None,
    workers: int = 1,
) -> None:
    """Serve the workshop's pages until Ctrl-C (or `stop_after` seconds)."""
    # The web stack loads only for serve: the other verbs start faster without it. It is
    # among labgen's own dependencies, so an ImportError here is a broken installation.
    try:
        from labgen.workshop import pages, server
        from labgen.workshop.service import RoomService
    except ImportError as exc:
        raise PrerequisiteError(
            f"the workshop server needs {exc.name}, which is not installed",
            hint="starlette and uvicorn come with labgen: install it again "
            "(`pip install --force-reinstall labgen`, or `pip install -e .` in a checkout); "
            "xterm.js comes from scripts/setup-workshop.sh",
        ) from None

    pages.require_vendor()
    room = rooms.load(name)
    service = RoomService(room, ctx, workers=workers)
    server.serve(service, listen, lambda url: on_ready(room, url), stop_after)
