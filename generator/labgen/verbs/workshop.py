"""`labgen workshop`: a room of seats (machines of one lab), served to a room of browsers.

up brings the seats up J at a time; status says which answer; down removes them all;
serve runs the web app of the attendees' pages and the instructor's grid; report reads
the room's database (workshop/db.py), which only `down --purge` removes. serve and down
hold the workshop's lock (workshop/lock.py): one server per workshop, and no `down`
under a running server. seats, assign, free and reissue read and change who sits where
(workshop/join.py) in that database, with or without a server running: a running one
sees the change at its next request.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from labgen.core.context import Context
from labgen.core.errors import PrerequisiteError, UsageError
from labgen.core.lab import load_lab, load_lab_dir
from labgen.core.results import WorkshopReport
from labgen.machine import recipe
from labgen.workshop import db, join, lock, seats
from labgen.workshop import report as reports
from labgen.workshop import room as rooms
from labgen.workshop.placement import Placement
from labgen.workshop.room import Room
from labgen.workshop.seats import Report, SeatEvent, SeatStatus

SEAT_HOSTS_SETTING = "seat_hosts"  # seat -> its host, in the room's database


def up(
    ctx: Context,
    lab_ref: str,
    n_seats: int,
    name: str | None,
    jobs: int,
    report: Report,
    spares: int = 0,
    chosen: Placement | None = None,
    kernel_trace: bool = False,
) -> tuple[Room, list[SeatEvent]]:
    """Bring up the workshop's seats (claiming pooled machines where there are some),
    then keep `spares` pooled machines ready for resets; each seat's final event. With
    `chosen` (from `place`), each seat goes on its host. `kernel_trace`: attendees may
    run `labgen-lab trace --kernel` in their seats (off by default)."""
    if jobs < 1:
        raise UsageError(f"-j must be at least 1, not {jobs}")
    if not 0 <= spares <= rooms.MAX_SEATS:
        raise UsageError(f"--spares must be between 0 and {rooms.MAX_SEATS}, not {spares}")
    workshop = rooms.validate_workshop_name(name or load_lab(lab_ref, ctx.labs_path).name)
    _refuse_an_earlier_rooms_database(workshop)
    room, finals = seats.up_seats(
        ctx, lab_ref, n_seats, name, jobs, report, spares, chosen, kernel_trace
    )
    # The database from the start: `report` reads a room that was never served too.
    with db.open_room(room.name, room.created) as store:
        lab = load_lab_dir(Path(room.lab_path))
        store.describe(
            workshop=room.name,
            lab=room.lab,
            created=room.created,
            steps=db.lab_steps(lab),
            seats=room.seats,
        )
        # Who ran where outlives the record (`down` removes it; `report` reads this).
        store.set_setting(SEAT_HOSTS_SETTING, {s: room.host_of(s) for s in room.seats})
    return room, finals


def place(ctx: Context, lab_ref: str, n_seats: int, hosts: list[str]) -> Placement:
    """Where `n_seats` seats of the lab go over `hosts` (probed now): placement.py's rule;
    a UsageError naming each host that cannot take seats, before any seat starts."""
    if not hosts:
        raise UsageError("--hosts names no host: give e.g. --hosts local,a")
    if not 1 <= n_seats <= rooms.MAX_SEATS:
        raise UsageError(f"--seats must be between 1 and {rooms.MAX_SEATS}, not {n_seats}")
    lab = load_lab(lab_ref, ctx.labs_path)
    return seats.plan(hosts, n_seats, recipe.engine(ctx.engine or lab.spec.engine))


def lab_name(ctx: Context, lab_ref: str) -> str:
    """The lab's name: the default workshop name."""
    return load_lab(lab_ref, ctx.labs_path).name


def _refuse_an_earlier_rooms_database(name: str) -> None:
    """A database without a workshop record is an earlier room's (`down` without
    --purge): a new room of that name must not take over its progress."""
    if (rooms.workshops_dir() / f"{name}.json").is_file() or not db.db_path(name).is_file():
        return
    with db.RoomDB(db.db_path(name)) as store:
        created = store.meta().get("created", "?")
    raise db.stale(name, created)


def status(name: str | None = None) -> list[tuple[Room, list[SeatStatus]]]:
    """Each workshop (or the one named) and the state of its seats."""
    names = [name] if name else rooms.all_names()
    return [(room, seats.seat_status(room)) for room in (rooms.load(n) for n in names)]


def down(name: str, jobs: int, report: Report, purge: bool = False) -> list[SeatEvent]:
    """Remove every seat of the workshop, in parallel, and then the workshop; refused
    while `serve` runs. The room's database stays for `report` unless `purge`; with it,
    a workshop already brought down has its database removed."""
    rooms.validate_workshop_name(name)
    if not (rooms.workshops_dir() / f"{name}.json").is_file():
        if not (purge and db.room_dir(name).is_dir()):
            rooms.load(name)  # the error naming the workshops there are
        with lock.hold(name, lock.DOWN):
            shutil.rmtree(db.room_dir(name))
        return []
    with lock.hold(name, lock.DOWN):
        events = seats.down_seats(name, jobs, report)
        if purge and all(e.state == seats.REMOVED for e in events):
            shutil.rmtree(db.room_dir(name), ignore_errors=True)
    return events


def report(name: str) -> WorkshopReport:
    """The report of workshop `name` from its database: served now or not, up or down."""
    with db.read_room(name) as store:
        return reports.build(store)


@dataclass(frozen=True)
class Security:
    """How `serve` is reached: TLS (made for the room, or the instructor's own
    certificate), and the URL the printed links name."""

    tls: bool = False
    cert: str | None = None
    key: str | None = None
    public_url: str | None = None

    def check(self) -> str | None:
        """The parsed public URL; a UsageError for options that do not go together."""
        if (self.cert is None) != (self.key is None):
            raise UsageError("--cert and --key go together: give both, or --tls for a made one")
        if self.tls and self.cert is not None:
            raise UsageError("--tls makes a certificate, --cert/--key give one: pick one")
        from labgen.workshop.server import parse_public_url

        on = self.tls or self.cert is not None
        return None if self.public_url is None else parse_public_url(self.public_url, on)


def serve(
    ctx: Context,
    name: str,
    listen: str,
    on_ready: Callable[[Room, str, str | None, str], None],
    stop_after: float | None = None,
    workers: int | None = None,  # None: derived from the cores and the checks' CPU (checker.py)
    security: Security | None = None,
) -> None:
    """Serve the workshop's pages until Ctrl-C (or `stop_after` seconds); `on_ready`
    gets the room, the links' base URL, the certificate's fingerprint (None: http) and
    the join page's URL."""
    # The web stack loads only for serve: the other verbs start faster without it. It is
    # among labgen's own dependencies, so an ImportError here is a broken installation.
    try:
        from labgen.workshop import pages, server, tls
        from labgen.workshop.service import RoomService
    except ImportError as exc:
        raise PrerequisiteError(
            f"the workshop server needs {exc.name}, which is not installed",
            hint="starlette and uvicorn come with labgen: install it again "
            "(`pip install --force-reinstall labgen`, or `pip install -e .` in a checkout); "
            "in a checkout, xterm.js comes from scripts/setup-workshop.sh",
        ) from None

    security = security or Security()
    public_url = security.check()
    host = server.parse_listen(listen)[0]
    certificate = None
    if security.cert is not None and security.key is not None:
        certificate = tls.given(security.cert, security.key)
    pages.require_vendor()
    room = rooms.load(name)
    # The lock first: a second server is refused before it binds or touches the database.
    with lock.hold(name, lock.SERVE) as held, db.open_room(name, room.created) as store:
        if security.tls:
            hosts = [host] + ([urlsplit(public_url).hostname or ""] if public_url else [])
            certificate = tls.self_signed(db.room_dir(name), name, hosts)
        service = RoomService(room, ctx, workers=workers, store=store)
        fingerprint = certificate.fingerprint if certificate else None

        def ready(url: str) -> None:
            held.note(url)
            # `workshop seats` and `reissue` print full links with it, server or not.
            store.set_setting(join.BASE_SETTING, url)
            code = str(store.settings().get(join.CODE_SETTING, ""))
            on_ready(room, url, fingerprint, f"{url}/j/{code}")

        server.serve(service, listen, ready, stop_after, None, certificate, public_url)


# --- who sits where ---------------------------------------------------------------------


def _seating(name: str) -> tuple[join.Seating, db.RoomDB]:
    room = rooms.load(name)
    store = db.open_room(name, room.created)
    try:
        return join.Seating(room, store), store
    except BaseException:
        store.close()
        raise


def seating(name: str) -> join.RoomSeats:
    """Who sits where in workshop `name`: each seat's attendee, how it is held, its
    token's generation, and the join page."""
    places, store = _seating(name)
    with store:
        return places.describe()


def assign(name: str, seat: str, attendee: str) -> tuple[join.RoomSeats, join.SeatState]:
    """Keep seat `seat` (a name or a number) of workshop `name` for `attendee`."""
    places, store = _seating(name)
    with store:
        state = places.assign(join.seat_named(places.room, seat), attendee, join.BY_COMMAND_LINE)
        return places.describe(), state


def free(name: str, seat: str) -> tuple[join.RoomSeats, join.SeatState]:
    """Take seat `seat` from its attendee; its link is re-issued (the old one revoked)."""
    places, store = _seating(name)
    with store:
        state = places.free(join.seat_named(places.room, seat), join.BY_COMMAND_LINE)
        return places.describe(), state


def reissue(name: str, seat: str) -> tuple[join.RoomSeats, join.SeatState]:
    """A new link for seat `seat`; the old one opens nothing from now on."""
    places, store = _seating(name)
    with store:
        state = places.reissue(join.seat_named(places.room, seat), join.BY_COMMAND_LINE)
        return places.describe(), state
