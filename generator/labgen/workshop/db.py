"""The room's database: one SQLite file per workshop, the only place its progress lives.

workshops/NAME/room.db under the labgen home holds the room (its lab, steps and seats),
every check and run as it happened (seat, step, outcome, messages, source, time), the
seats' machine changes (ready, resetting, failed), the instructor's settings, and who
sits where: each seat's attendee and how they got it (assigned by the instructor, or
joined from the join page), every generation of each seat's token (a re-issued token
revokes the one before), and a log of those changes. The
grid is rebuilt from it when `serve` starts again, and `workshop report` reads it with
or without a server running and after `workshop down` (only `down --purge` removes it).

WAL mode, so that a report reads while the server writes; every write is one short
transaction of its own (a few rows), so a killed server loses at most the event it was
writing. The schema's version is SQLite's user_version: a file from a newer labgen is
refused rather than misread. This module owns the schema; nothing else writes SQL.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labgen.checks.reader import read_checks
from labgen.core.errors import UsageError
from labgen.core.lab import Lab
from labgen.workshop.room import validate_workshop_name, workshops_dir

SCHEMA_VERSION = 2
FILE = "room.db"

# What an event is: a step's checks ran, a step was run for the attendee, a seat's
# machine changed (ready, resetting, failed), an attendee's terminal was opened.
CHECK, RUN, MACHINE, OPENED = "check", "run", "machine", "opened"
# Who made it happen: the attendee's Check button, their "Run it for me", the
# background checker, the instructor (a reset), the page itself (a terminal opened).
BY_CHECK, BY_RUN, BY_BACKGROUND, BY_INSTRUCTOR, BY_PAGE = (
    "check",
    "run-for-me",
    "background",
    "instructor",
    "page",
)

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE steps (
    position INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    checked INTEGER NOT NULL
);
CREATE TABLE seats (
    seat TEXT PRIMARY KEY,
    attendee TEXT NOT NULL DEFAULT '',
    added REAL NOT NULL
);
CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    seat TEXT NOT NULL,
    step TEXT NOT NULL DEFAULT '',
    kind TEXT NOT NULL,
    source TEXT NOT NULL,
    outcome TEXT NOT NULL,
    messages TEXT NOT NULL DEFAULT '[]',
    seconds REAL NOT NULL DEFAULT 0
);
CREATE INDEX events_by_seat ON events (seat, id);
CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL, changed REAL NOT NULL);
"""

# Schema 2: who sits where. `how` is how the seat's attendee got it: '' (free), the
# instructor assigned it, or the attendee took it on the join page. A seat's token is
# its current (highest, unrevoked) generation; older ones open nothing.
_SEATING = """
ALTER TABLE seats ADD COLUMN how TEXT NOT NULL DEFAULT '';
ALTER TABLE seats ADD COLUMN since REAL NOT NULL DEFAULT 0;
CREATE TABLE tokens (
    seat TEXT NOT NULL,
    generation INTEGER NOT NULL,
    token TEXT NOT NULL UNIQUE,
    issued REAL NOT NULL,
    revoked REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (seat, generation)
);
CREATE TABLE seating (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    seat TEXT NOT NULL,
    action TEXT NOT NULL,
    attendee TEXT NOT NULL DEFAULT '',
    generation INTEGER NOT NULL,
    source TEXT NOT NULL
);
"""
# How a seat is held (seats.how), and what was done to it (seating.action).
FREE, ASSIGNED, JOINED = "", "assigned", "joined"
ASSIGN, JOIN, RELEASE, REISSUE = "assign", "join", "free", "reissue"


def room_dir(name: str) -> Path:
    """The workshop's folder: its database and the lock of the server that serves it."""
    return workshops_dir() / name


def db_path(name: str) -> Path:
    """The file of workshop `name`'s database (which may not exist yet)."""
    return room_dir(name) / FILE


@dataclass(frozen=True)
class StepRow:
    """A step of the room's lab, in lab order; `checked`: it has checks of its own."""

    id: str
    title: str
    checked: bool


def lab_steps(lab: Lab) -> list[StepRow]:
    """The lab's steps as the room's database keeps them: id, title, has checks."""
    checked = {c.step for c in read_checks(lab)}
    return [StepRow(s.id, s.title, s.id in checked) for s in lab.steps]


@dataclass(frozen=True)
class SeatRow:
    """A seat as the database holds it: who sits there, how, since when, its token."""

    seat: str
    attendee: str
    how: str  # FREE, ASSIGNED, JOINED
    since: float  # epoch seconds of the last change of attendee (0: never)
    generation: int  # of the current token (0: none recorded yet)
    token: str


@dataclass(frozen=True)
class SeatingChange:
    """One change of who sits where, as the seating log keeps it."""

    at: float
    seat: str
    action: str  # ASSIGN, JOIN, RELEASE, REISSUE
    attendee: str
    generation: int  # the seat's token generation after the change
    source: str  # who did it: the instructor's page, the command line, the join page


@dataclass(frozen=True)
class Event:
    """One thing that happened in the room, as recorded."""

    id: int
    at: float  # epoch seconds
    seat: str
    step: str
    kind: str  # CHECK, RUN, MACHINE, OPENED
    source: str  # BY_*
    outcome: str  # a check run's verdict, "exit N" of a run, a machine's state
    messages: list[str]
    seconds: float = 0.0


class RoomDB:
    """A connection to one room's database, safe to use from the server's threads."""

    def __init__(self, path: Path, *, create: bool = False):
        if not create and not path.is_file():
            raise UsageError(f"{path}: no such database")
        # The owner's only, as the workshop's record is: attendees' names and what
        # they typed wrong are nobody else's business on a shared host.
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        # One connection for every thread, behind the lock: writes are a few rows, and
        # SQLite serialises writers anyway. The timeout covers a report reading meanwhile.
        self._conn = sqlite3.connect(path, timeout=10, check_same_thread=False)
        try:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")  # WAL: durable at checkpoints
            self._migrate(create)
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise UsageError(f"{path}: not a workshop database: {exc}") from None

    def _migrate(self, create: bool) -> None:
        version = self._conn.execute("PRAGMA user_version").fetchone()[0]
        if version == 0 and create:
            # One transaction: a half-made schema would read as a database to migrate.
            script = (
                f"BEGIN IMMEDIATE; {_SCHEMA} {_SEATING} "
                f"PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
            )
            self._conn.executescript(script)
        elif version == 1:
            # A room served by the labgen before seating: its seats gain the columns,
            # its tokens are imported from the record at the next serve (join.Seating).
            script = f"BEGIN IMMEDIATE; {_SEATING} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
            self._conn.executescript(script)
        elif version == 0:
            raise UsageError(f"{self.path}: an empty database, not a workshop's")
        elif version > SCHEMA_VERSION:
            raise UsageError(
                f"{self.path}: written by a newer labgen (schema {version}; this one "
                f"reads {SCHEMA_VERSION})",
                hint="upgrade labgen to read it",
            )

    def close(self) -> None:
        """Close the connection; what was written is already committed."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> RoomDB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _write(self, sql: str, row: tuple[Any, ...]) -> int:
        """One row in a transaction of its own; its id."""
        with self._lock, self._conn:
            return int(self._conn.execute(sql, row).lastrowid or 0)

    def _read(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._conn.execute(sql, args).fetchall()

    def data_version(self) -> int:
        """A number that changes when another connection (a `labgen workshop assign`
        beside the server) committed a change: the server then reads the seating again."""
        with self._lock:
            return int(self._conn.execute("PRAGMA data_version").fetchone()[0])

    # --- the room ------------------------------------------------------------------------

    def describe(
        self,
        *,
        workshop: str,
        lab: str,
        created: str,
        steps: list[StepRow],
        seats: list[str],
    ) -> None:
        """Record what the room is: its lab's steps (as the lab has them now) and seats."""
        now = time.time()
        with self._lock, self._conn:
            meta = [("workshop", workshop), ("lab", lab), ("created", created)]
            self._conn.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", meta)
            self._conn.execute("DELETE FROM steps")
            self._conn.executemany(
                "INSERT INTO steps VALUES (?, ?, ?, ?)",
                [(i, s.id, s.title, int(s.checked)) for i, s in enumerate(steps)],
            )
            self._conn.executemany(
                "INSERT OR IGNORE INTO seats (seat, added) VALUES (?, ?)",
                [(seat, now) for seat in seats],
            )

    def meta(self) -> dict[str, str]:
        """The room's workshop name, lab and when its record was made ('created')."""
        return dict(self._read("SELECT key, value FROM meta"))

    def steps(self) -> list[StepRow]:
        """The lab's steps, in lab order, as the last `describe` recorded them."""
        rows = self._read("SELECT id, title, checked FROM steps ORDER BY position")
        return [StepRow(i, t, bool(c)) for i, t, c in rows]

    def seats(self) -> dict[str, str]:
        """Each seat and its attendee's name ('' when none is known)."""
        return dict(self._read("SELECT seat, attendee FROM seats ORDER BY seat"))

    # --- what happens ----------------------------------------------------------------------

    def add(
        self,
        seat: str,
        step: str,
        kind: str,
        source: str,
        outcome: str,
        messages: list[str] | None = None,
        seconds: float = 0.0,
        at: float | None = None,
    ) -> Event:
        """Record one event as it happens; the event as stored."""
        when = time.time() if at is None else at
        notes = [m[:500] for m in (messages or [])][:20]
        row = (when, seat, step, kind, source, outcome, json.dumps(notes), seconds)
        sql = (
            "INSERT INTO events (at, seat, step, kind, source, outcome, messages, seconds)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        )
        event_id = self._write(sql, row)
        return Event(event_id, when, seat, step, kind, source, outcome, notes, seconds)

    def events(self) -> list[Event]:
        """Every event, in the order they happened."""
        rows = self._read(
            "SELECT id, at, seat, step, kind, source, outcome, messages, seconds"
            " FROM events ORDER BY id"
        )
        return [
            Event(r[0], r[1], r[2], r[3], r[4], r[5], r[6], json.loads(r[7]), r[8]) for r in rows
        ]

    # --- who sits where -------------------------------------------------------------------

    def seating(self) -> list[SeatRow]:
        """Every seat: its attendee, how the seat is held, since when, its current token."""
        rows = self._read(
            "SELECT s.seat, s.attendee, s.how, s.since, t.generation, t.token FROM seats s"
            " LEFT JOIN tokens t ON t.seat = s.seat AND t.revoked = 0 ORDER BY s.seat"
        )
        return [SeatRow(r[0], r[1], r[2], r[3], r[4] or 0, r[5] or "") for r in rows]

    def first_tokens(self, tokens: dict[str, str]) -> None:
        """Record each seat (a room never described: served or seated before `up`
        finished) and its first token (the room record's) unless it has one."""
        now = time.time()
        with self._lock, self._conn:
            self._conn.executemany(
                "INSERT OR IGNORE INTO seats (seat, added) VALUES (?, ?)",
                [(seat, now) for seat in tokens],
            )
            self._conn.executemany(
                "INSERT INTO tokens (seat, generation, token, issued)"
                " SELECT ?, 1, ?, ? WHERE NOT EXISTS (SELECT 1 FROM tokens WHERE seat = ?)",
                [(seat, token, now, seat) for seat, token in tokens.items()],
            )

    def take(self, seat: str, attendee: str, how: str, source: str) -> bool:
        """Give a free seat to `attendee`; False when it is not free (any process may
        have taken it since it was read: the condition is in the UPDATE itself)."""
        action = JOIN if how == JOINED else ASSIGN
        with self._lock, self._conn:
            taken = self._conn.execute(
                "UPDATE seats SET attendee = ?, how = ?, since = ? WHERE seat = ? AND how = ?",
                (attendee, how, time.time(), seat, FREE),
            ).rowcount
            if taken:
                self._log(seat, action, attendee, source)
        return bool(taken)

    def reissue(self, seat: str, token: str, source: str, free: bool = False) -> int:
        """Revoke the seat's token and make `token` its next generation (and, when
        `free`, take the seat from its attendee too), in one transaction; the generation."""
        now = time.time()
        with self._lock, self._conn:
            row = self._conn.execute(
                "SELECT COALESCE(MAX(generation), 0) FROM tokens WHERE seat = ?", (seat,)
            ).fetchone()
            generation = int(row[0]) + 1
            self._conn.execute(
                "UPDATE tokens SET revoked = ? WHERE seat = ? AND revoked = 0", (now, seat)
            )
            self._conn.execute(
                "INSERT INTO tokens (seat, generation, token, issued) VALUES (?, ?, ?, ?)",
                (seat, generation, token, now),
            )
            attendee = self._conn.execute(
                "SELECT attendee FROM seats WHERE seat = ?", (seat,)
            ).fetchone()[0]
            if free:
                self._conn.execute(
                    "UPDATE seats SET attendee = '', how = ?, since = ? WHERE seat = ?",
                    (FREE, now, seat),
                )
            self._log(seat, RELEASE if free else REISSUE, attendee, source)
        return generation

    def _log(self, seat: str, action: str, attendee: str, source: str) -> None:
        """A line of the seating's history, inside the caller's transaction."""
        generation = self._conn.execute(
            "SELECT COALESCE(MAX(generation), 0) FROM tokens WHERE seat = ?", (seat,)
        ).fetchone()[0]
        self._conn.execute(
            "INSERT INTO seating (at, seat, action, attendee, generation, source)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (time.time(), seat, action, attendee, generation, source),
        )

    def seating_log(self) -> list[SeatingChange]:
        """Every assignment, join, free and re-issue, in order."""
        rows = self._read(
            "SELECT at, seat, action, attendee, generation, source FROM seating ORDER BY id"
        )
        return [SeatingChange(*r) for r in rows]

    def token_generations(self, seat: str) -> list[tuple[int, bool]]:
        """The seat's token generations, oldest first, each with whether it is revoked."""
        rows = self._read(
            "SELECT generation, revoked FROM tokens WHERE seat = ? ORDER BY generation", (seat,)
        )
        return [(int(g), bool(r)) for g, r in rows]

    # --- the instructor's settings ----------------------------------------------------------

    def set_setting(self, key: str, value: object) -> None:
        """Record one of the instructor's settings (a JSON value), replacing the last."""
        sql = "INSERT OR REPLACE INTO settings VALUES (?, ?, ?)"
        self._write(sql, (key, json.dumps(value), time.time()))

    def settings(self) -> dict[str, Any]:
        """The instructor's settings as last recorded (none: the defaults hold)."""
        return {k: json.loads(v) for k, v in self._read("SELECT key, value FROM settings")}


def open_room(name: str, created: str) -> RoomDB:
    """The database of workshop `name` made `created`, made if missing (up and serve).

    A database left by an earlier workshop of that name (`down` without --purge, then
    `up` again) is refused: the new seats would inherit the old room's progress.
    """
    path = db_path(validate_workshop_name(name))
    store = RoomDB(path, create=True)
    recorded = store.meta().get("created")
    if recorded is not None and recorded != created:
        store.close()
        raise stale(name, recorded)
    return store


def stale(name: str, created: str) -> UsageError:
    """The error for a database an earlier workshop of this name left behind."""
    return UsageError(
        f"workshop {name!r} has the database of an earlier room (made {created}) in "
        f"{room_dir(name)}",
        hint=f"`labgen workshop report {name}` reads it; `labgen workshop down {name} "
        "--purge` removes it; or pick another --name",
    )


def read_room(name: str) -> RoomDB:
    """The database of workshop `name` for reading (`workshop report`)."""
    path = db_path(validate_workshop_name(name))
    if not path.is_file():
        known = ", ".join(recorded_names()) or "none"
        raise UsageError(
            f"no workshop called {name!r} has a database here (workshops with one: {known})",
            hint="a workshop's database is made by `labgen workshop up` and kept until "
            "`labgen workshop down --purge`",
        )
    return RoomDB(path)


def recorded_names() -> list[str]:
    """The workshops with a database in this labgen home (brought down or not)."""
    folder = workshops_dir()
    if not folder.is_dir():
        return []
    return sorted(p.parent.name for p in folder.glob(f"*/{FILE}"))
