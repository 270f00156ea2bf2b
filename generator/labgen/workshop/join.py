"""Handing out seats: who sits where (the `Seating`) and the join page (`JoinPage`).

The instructor shows one short URL, /j/CODE (CODE: the room code, a few letters, not a
seat's token); an attendee opens it, types a name and is given the first free seat:
the seat's token becomes their cookie, as a printed link's does, and the browser goes
on to the seat's page. The join page keeps the same token in a cookie of its own (Path
/j/), so the same browser opening the join URL again is sent back to its seat, never
to another. A name proves nothing, so the join page hands out free seats only: a seat
the instructor assigned goes to its attendee by its link (the printed sheet's card),
and a name that already has a seat is refused rather than given it.

The instructor assigns, frees and re-issues seats (the instructor's page, or `labgen
workshop assign|free|reissue`). Re-issuing makes the seat a new token and revokes the
old one: the old link and every cookie holding it get the bare 404 a wrong token gets,
and the shells and streams it opened are closed. Freeing re-issues too, so that the
seat's next attendee does not share it with the last. Everything is in the room's
database (db.py), so a restarted `serve` keeps it, and a change made by the command
line beside a running server is seen by it at its next request (SQLite's data_version).
"""

from __future__ import annotations

import secrets
import threading
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from labgen.core.errors import UsageError
from labgen.workshop import db
from labgen.workshop.room import Room, new_token

MAX_NAME = 40  # characters of an attendee's name: a card's line, a grid's row header
CODE_LETTERS = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: read off a projector
CODE_LENGTH = 6  # 31**6, about 10**9 codes: the code only ever opens free seats
JOIN_COOKIE = "labgen-join"  # Path /j/: the join page's memory of this browser's seat
CODE_SETTING, OPEN_SETTING = "join_code", "join_open"
BASE_SETTING = "links_base"  # the base URL the last `serve` printed its links with
# Who changed the seating, as its log records it.
BY_PAGE, BY_COMMAND_LINE, BY_JOIN = "instructor's page", "command line", "join page"


class Refused(Exception):
    """The join page cannot seat this name: why, as the page says it, and its status."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.message, self.status = message, status


def clean_name(given: str, what: str = "the name") -> str:
    """An attendee's name as kept: NFC, spaces collapsed, 1-MAX_NAME characters with no
    control characters; a UsageError saying what is wrong otherwise.

    >>> clean_name("  Ada   Lovelace ")
    'Ada Lovelace'
    >>> clean_name("x" * 41)
    Traceback (most recent call last):
    ...
    labgen.core.errors.UsageError: the name is too long: at most 40 characters, not 41
    """
    name = " ".join(unicodedata.normalize("NFC", given).split())
    if not name:
        raise UsageError(f"{what} is empty: type a name")
    if len(name) > MAX_NAME:
        raise UsageError(f"{what} is too long: at most {MAX_NAME} characters, not {len(name)}")
    if any(unicodedata.category(c).startswith("C") for c in name):
        raise UsageError(f"{what} has control characters (tabs, newlines, escapes): remove them")
    return name


def same_name(a: str, b: str) -> bool:
    """Whether two names are one person's as far as the join page can tell.

    >>> same_name("Ada  Lovelace", "ada lovelace"), same_name("Ada", "Adam")
    (True, False)
    """
    return bool(a) and " ".join(a.casefold().split()) == " ".join(b.casefold().split())


def new_code() -> str:
    """A room code: CODE_LENGTH letters and digits that read unambiguously."""
    return "".join(secrets.choice(CODE_LETTERS) for _ in range(CODE_LENGTH))


def seat_named(room: Room, given: str) -> str:
    """The seat `given` names: its full name (pf-03) or its number (3, 03).

    >>> room = Room("pf", "lab", "/", ["pf-01", "pf-02"], "now")
    >>> seat_named(room, "2"), seat_named(room, "pf-01")
    ('pf-02', 'pf-01')
    """
    candidates = [given, f"{room.name}-{given.zfill(2)}"] if given.isdigit() else [given]
    found = next((c for c in candidates if c in room.seats), None)
    if found is None:
        raise UsageError(
            f"workshop {room.name!r} has no seat {given!r} (its seats: "
            f"{room.seats[0]} ... {room.seats[-1]}, or their numbers 1-{len(room.seats)})"
        )
    return found


@dataclass(frozen=True)
class SeatState:
    """A seat's attendee, how the seat is held (db.FREE, ASSIGNED, JOINED), since when,
    and its current token and that token's generation."""

    seat: str
    attendee: str
    how: str
    since: float
    generation: int
    token: str


@dataclass(frozen=True)
class RoomSeats:
    """A room's seating as `labgen workshop seats` shows it: the join page (its code,
    open or not, its URL when a server printed its address) and every seat."""

    workshop: str
    lab: str
    code: str
    open: bool
    base: str  # the links' base URL the last `serve` printed ('' before any)
    seats: list[SeatState]

    def link(self, state: SeatState) -> str:
        """The seat's link: a full URL, or (before any serve) its path."""
        return f"{self.base}/w/{state.seat}/{state.token}/"

    @property
    def join_url(self) -> str:
        return f"{self.base}/j/{self.code}"

    def to_json(self, links: bool = False) -> dict[str, object]:
        """The seating as data; the seats' links (their tokens) only when asked."""
        rows: list[dict[str, object]] = []
        for s in self.seats:
            row: dict[str, object] = {
                "seat": s.seat,
                "attendee": s.attendee,
                "how": s.how or "free",
                "since": s.since,
                "generation": s.generation,
            }
            if links:
                row["link"] = self.link(s)
            rows.append(row)
        return {
            "workshop": self.workshop,
            "lab": self.lab,
            "join": {"code": self.code, "open": self.open, "url": self.join_url},
            "seats": rows,
        }


class Listener(Protocol):
    """What the seating tells of its changes (the grid): a seat's attendee changed
    (`joined`: when they joined, 0 when the instructor assigned or freed the seat)."""

    def set_attendee(self, seat: str, attendee: str, joined: float) -> None: ...


class Seating:
    """Who sits where, with which token: the room's database, as the server reads it."""

    def __init__(
        self,
        room: Room,
        store: db.RoomDB,
        listener: Listener | None = None,
        on_revoke: Callable[[str], None] | None = None,
    ):
        """`listener` hears of every change of attendee (the grid's row headers);
        `on_revoke(seat)` is called after a seat's token was revoked (the server closes
        what the old token opened)."""
        self.room, self.store = room, store
        self.listener = listener
        self.on_revoke = on_revoke
        self._lock = threading.Lock()
        store.first_tokens(room.seat_tokens)
        settings = store.settings()
        if not settings.get(CODE_SETTING):
            store.set_setting(CODE_SETTING, new_code())
        self._version = -1
        self._seats: dict[str, SeatState] = {}
        self.code, self.open = "", True
        self.refresh()

    def refresh(self) -> None:
        """Read the seating again if another connection changed the database (or never
        read): the command line's changes reach a running server this way."""
        version = self.store.data_version()
        with self._lock:
            if version == self._version:
                return
            self._version = version
        self._load()

    def _load(self) -> None:
        rows = {r.seat: r for r in self.store.seating() if r.seat in self.room.seats}
        settings = self.store.settings()
        with self._lock:
            before = self._seats
            self._seats = {
                seat: SeatState(r.seat, r.attendee, r.how, r.since, r.generation, r.token)
                for seat, r in rows.items()
            }
            self.code = str(settings.get(CODE_SETTING, ""))
            self.open = bool(settings.get(OPEN_SETTING, True))
        # The printed links (serve's output, the sheet) name the current tokens.
        for seat, state in self._seats.items():
            self.room.seat_tokens[seat] = state.token
        for seat, state in self._seats.items():
            old = before.get(seat)
            if old is not None and old.token != state.token and self.on_revoke is not None:
                self.on_revoke(seat)
            if self.listener is not None and (old is None or old.attendee != state.attendee):
                # Joining is the attendee's own doing, an activity; an assignment is not.
                joined = state.since if state.how == db.JOINED else 0.0
                self.listener.set_attendee(seat, state.attendee, joined)

    # --- what the server asks ----------------------------------------------------------

    def seats(self) -> list[SeatState]:
        """Every seat, in seat order."""
        self.refresh()
        with self._lock:
            return [self._seats[s] for s in self.room.seats if s in self._seats]

    def state(self, seat: str) -> SeatState:
        self.refresh()
        with self._lock:
            return self._seats[seat]

    def owner(self, token: str) -> str | None:
        """The seat whose current token `token` is, or None (a revoked one is nobody's)."""
        self.refresh()
        with self._lock:
            seats = list(self._seats.values())
        if not token:
            return None
        given = token.encode()
        # Every seat compared, each in constant time: the answer's timing tells nothing.
        found = [
            s.seat for s in seats if s.token and secrets.compare_digest(given, s.token.encode())
        ]
        return found[0] if found else None

    # --- what the instructor does ------------------------------------------------------

    def assign(self, seat: str, attendee: str, source: str) -> SeatState:
        """Keep the free `seat` for `attendee` (its link is theirs: the join page never
        hands it out); a UsageError when the seat is someone's."""
        name = clean_name(attendee, "the attendee's name")
        current = self.state(seat)
        if not self.store.take(seat, name, db.ASSIGNED, source):
            holder = self.state(seat).attendee or current.attendee
            raise UsageError(
                f"seat {seat} is taken: {holder} has it",
                hint=f"free it first (`labgen workshop free {self.room.name} {seat}`, or "
                "Free on the instructor's page): that also revokes its link",
            )
        self._load()
        return self.state(seat)

    def free(self, seat: str, source: str) -> SeatState:
        """Take the seat from its attendee and revoke its token: its next attendee gets
        a link (and a cookie) the last one never held."""
        self.store.reissue(seat, new_token(), source, free=True)
        self._load()
        return self.state(seat)

    def reissue(self, seat: str, source: str) -> SeatState:
        """A new token for the seat, the old one revoked (a leaked link); the attendee
        keeps the seat and needs the new link."""
        self.store.reissue(seat, new_token(), source)
        self._load()
        return self.state(seat)

    def set_open(self, enabled: bool) -> None:
        """Open or close the join page (a closed one seats nobody)."""
        self.store.set_setting(OPEN_SETTING, enabled)
        self._load()

    def describe(self) -> RoomSeats:
        """The seating as a record (the command line's `workshop seats`)."""
        seats = self.seats()
        base = str(self.store.settings().get(BASE_SETTING, ""))
        return RoomSeats(self.room.name, self.room.lab, self.code, self.open, base, seats)

    # --- what the join page does -------------------------------------------------------

    def join(self, given: str) -> SeatState:
        """Seat `given` (a name typed on the join page) at the first free seat; Refused
        (with the page's words) when the join is closed, the name is bad or has a seat,
        or the room is full."""
        self.refresh()
        if not self.open:
            raise Refused("The instructor has closed this room's join page.", 403)
        try:
            name = clean_name(given)
        except UsageError as exc:
            raise Refused(f"That name will not do: {exc.message}.", 400) from None
        for state in self.seats():
            if same_name(state.attendee, name):
                raise Refused(
                    f"{name} has a seat already. If that is you, open this page in the "
                    "browser you joined from, or ask the instructor for your seat's link; "
                    "if it is not, add your surname.",
                    409,
                )
        for state in self.seats():
            if state.how == db.FREE and self.store.take(state.seat, name, db.JOINED, BY_JOIN):
                self._load()
                return self.state(state.seat)
        raise Refused(
            f"The room is full: all {len(self.room.seats)} seats are taken. "
            "Ask the instructor for a seat.",
            409,
        )


class JoinAccess(Protocol):
    """What the join page needs of the app (its `Site`)."""

    @property
    def seating(self) -> Seating: ...

    def seated(self, seat: str, token: str, also: tuple[str, str] | None = None) -> Response:
        """The page that hands a browser its seat: the seat's cookie (and `also`, a
        cookie name and path, with the same token), then on to the seat's page."""
        ...

    def not_found(self) -> Response: ...


class JoinPage:
    """The routes under /j/CODE: the form, and what it posts."""

    def __init__(self, site: JoinAccess, render: Callable[..., str]):
        self.site = site
        self.render = render  # pages.join_page

    def _room(self, request: Request) -> Seating | None:
        seating = self.site.seating
        seating.refresh()
        code = str(request.path_params["code"])
        known = bool(seating.code) and secrets.compare_digest(code.encode(), seating.code.encode())
        return seating if known else None

    def _back(self, request: Request, seating: Seating) -> Response | None:
        """This browser's seat, when its join cookie still holds the seat's token."""
        token = request.cookies.get(JOIN_COOKIE, "")
        seat = seating.owner(token) if token else None
        return None if seat is None else self.site.seated(seat, token)

    async def page(self, request: Request) -> Response:
        seating = self._room(request)
        if seating is None:
            return self.site.not_found()
        back = self._back(request, seating)
        if back is not None:
            return back
        lost = bool(request.cookies.get(JOIN_COOKIE))
        if not seating.open:
            return self._answer(seating, "The instructor has closed this room's join page.", 403)
        note = (
            "The seat this browser had was freed or given a new link by the instructor."
            if lost
            else ""
        )
        return self._answer(seating, note, 200, form=True)

    async def post(self, request: Request) -> Response:
        seating = self._room(request)
        if seating is None:
            return self.site.not_found()
        back = self._back(request, seating)
        if back is not None:
            return back
        fields = parse_qs((await request.body()).decode("utf-8", "replace"))
        given = (fields.get("name") or [""])[0]
        try:
            state = seating.join(given)
        except Refused as exc:
            form = exc.status == 400 or "surname" in exc.message
            return self._answer(seating, exc.message, exc.status, form=form, name=given)
        return self.site.seated(state.seat, state.token, (JOIN_COOKIE, "/j/"))

    def _answer(
        self, seating: Seating, message: str, status: int, form: bool = False, name: str = ""
    ) -> Response:
        body = self.render(
            room=seating.room,
            code=seating.code,
            message=message,
            form=form,
            name=name[: MAX_NAME * 2],
            max_name=MAX_NAME,
        )
        # same-origin, not no-referrer: under no-referrer Chromium posts the form with
        # `Origin: null`, which the Guard refuses; its URL holds the room code only.
        headers = {"Cache-Control": "no-store", "Referrer-Policy": "same-origin"}
        return HTMLResponse(body, status, headers=headers)
