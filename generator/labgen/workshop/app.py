"""The web app (Starlette): an attendee page per seat, the instructor's page, their data.

The printed links carry a token: /w/SEAT/TOKEN/ for a seat, /i/TOKEN/ for the
instructor. A browser that opens one is given the token as an HttpOnly, SameSite=Strict
cookie (Secure over https) and sent on to the same page without it (/w/SEAT/, /i/), so
that no token stays in the address bar, the history, a projector or a screenshot. Every
route answers both ways: with the token in its path (scripts, the links printed before)
or with the cookie. A seat's token opens that seat only: another seat's (or the
instructor's) token on it is 403, and a token that is nobody's, or none, is a bare 404
that tells nothing, not even whether the seat exists. Scripts, styles and fonts
come from /static/ (this package's files and the vendored xterm.js); the pages' CSP
lets them load nothing from anywhere else.

A seat's token is the seating's (join.py): the room's database holds every seat's
current token, and one the instructor re-issued (or freed) opens nothing, with the
same bare 404; the pages and streams it had opened are closed. /j/CODE is the join page
(the room code, not a token: it hands out free seats only).

This module holds what every audience shares (the `Site`: the room, its seating, the
event stream) and the route table; attendee.py, instructor.py and join.py hold the
handlers.
A handler that a token does not open raises `Denied`, and one exception handler
answers it, for HTTP and websockets alike.
"""

from __future__ import annotations

import asyncio
import html
import json
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.middleware import Middleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, ExceptionHandler, Message, Receive, Scope, Send
from starlette.websockets import WebSocket

from labgen.workshop import db, pages
from labgen.workshop.attendee import Attendee
from labgen.workshop.guard import Guard, origin_of
from labgen.workshop.instructor import Instructor
from labgen.workshop.join import JoinPage, Seating
from labgen.workshop.room import Room
from labgen.workshop.service import RoomService

STATIC = Path(__file__).resolve().parent / "static"
CSP = (
    "default-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "style-src 'self' 'unsafe-inline'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
KEEPALIVE = 15.0  # seconds between SSE comments, so proxies and browsers keep the stream
SEAT_COOKIE = "labgen-seat"  # one per seat: its Path is /w/SEAT/, so seats never collide
INSTRUCTOR_COOKIE = "labgen-instructor"  # Path /i/


class Denied(Exception):
    """A request a token does not open: 403 (another's token) or 404 (nobody's)."""

    def __init__(self, status: int):
        self.status = status


def not_found() -> Response:
    # The same few bytes whatever was wrong: no seat names, no hint, no stack.
    return PlainTextResponse("Not Found", status_code=404)


async def on_denied(conn: HTTPConnection, exc: Exception) -> Response | None:
    """The answer to every `Denied`, HTTP or websocket: a 403 or a bare 404.

    Websocket handlers raise it before accepting, and the refusal is this same
    response as the handshake's answer (ASGI's websocket denial response), sent here:
    Starlette sends a handler's response for a websocket itself only from 0.41 on.
    """
    assert isinstance(exc, Denied)
    response = PlainTextResponse("Forbidden", 403) if exc.status == 403 else not_found()
    if isinstance(conn, WebSocket):
        await conn.send_denial_response(response)
        return None
    return response


def _is_token(given: str, expected: str) -> bool:
    return bool(given) and secrets.compare_digest(given.encode(), expected.encode())


def _token(conn: HTTPConnection, cookie: str) -> str:
    """The token a request carries: in its path (a printed link), or else its cookie."""
    return str(conn.path_params.get("token") or conn.cookies.get(cookie, ""))


@dataclass(frozen=True)
class Site:
    """What every handler shares: the room's service, the event that ends streams, who
    sits where, and the URL the printed links name (whose scheme says whether cookies
    are Secure)."""

    service: RoomService
    stopping: asyncio.Event
    seating: Seating
    base: str = "http://127.0.0.1"

    @property
    def room(self) -> Room:
        return self.service.room

    @property
    def secure(self) -> bool:
        return self.base.startswith("https:")

    def seat_of(self, conn: HTTPConnection) -> str:
        """The seat a seat path names, when its token (the path's, or else the seat's
        cookie) is that seat's."""
        seat = str(conn.path_params["seat"])
        token = _token(conn, SEAT_COOKIE)
        owner = self.seating.owner(token)
        if owner is None and not _is_token(token, self.room.instructor_token):
            raise Denied(404)
        if seat not in self.room.seats:
            raise Denied(404)
        if owner != seat:
            raise Denied(403)
        return seat

    def instructor(self, conn: HTTPConnection) -> None:
        """Nothing, when the token (the path's, or else the cookie) is the instructor's."""
        if not _is_token(_token(conn, INSTRUCTOR_COOKIE), self.room.instructor_token):
            raise Denied(404)

    def watched_seat(self, conn: HTTPConnection) -> str:
        """The seat an instructor's path names, when the token is the instructor's."""
        self.instructor(conn)
        seat = str(conn.path_params["seat"])
        if seat not in self.room.seats:
            raise Denied(404)
        return seat

    def not_found(self) -> Response:
        return not_found()

    def seated(self, seat: str, token: str, also: tuple[str, str] | None = None) -> Response:
        """The page that hands a browser its seat (the join page's answer): the seat's
        token as its cookie (and as the `also` cookie, name and path: the join page's
        memory of this browser), then on to the seat's page."""
        response = _redirecting(f"/w/{seat}/")
        cookies = [(SEAT_COOKIE, f"/w/{seat}/"), *([also] if also else [])]
        for name, scope in cookies:
            response.set_cookie(
                name, token, path=scope, httponly=True, samesite="strict", secure=self.secure
            )
        return response

    def enter(self, conn: HTTPConnection) -> Response | None:
        """None for a page asked for without a token in its path; with one (a printed
        link, already checked), the token as a cookie and a redirect to the same page
        without it.

        The redirect is a page that refreshes at once rather than a 303: a link opened
        from another site (a mail, a chat) makes the whole redirect chain cross-site,
        and a SameSite=Strict cookie would not be sent to the page it ends at; this
        page's own refresh is same-site. Chromium replaces the history entry of a page
        that refreshes within a second, so the token URL is not left in Back either.
        """
        token = conn.path_params.get("token")
        if token is None:
            return None
        seat = conn.path_params.get("seat")
        path = str(conn.url.path)
        if path.startswith("/w/"):
            name, scope, target = SEAT_COOKIE, f"/w/{seat}/", f"/w/{seat}/"
        else:
            name, scope = INSTRUCTOR_COOKIE, "/i/"
            target = f"/i/seats/{seat}/watch" if seat is not None else "/i/"
            # Which of the seat's terminals a watch link shows (terminal.py checks it
            # again); only a single digit is carried, nothing else of the query.
            terminal = conn.query_params.get("n", "")
            if seat is not None and len(terminal) == 1 and terminal.isdigit():
                target += f"?n={terminal}"
            if path.rstrip("/").endswith("/sheet"):
                target = "/i/sheet"
        response = _redirecting(target)
        response.set_cookie(
            name, str(token), path=scope, httponly=True, samesite="strict", secure=self.secure
        )
        return response

    def event_stream(self, request: Request, seat: str | None) -> Response:
        """Server-sent events: the grid (one seat's row, or the room's), then its changes."""
        headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        return StreamingResponse(
            self._events(request, seat), media_type="text/event-stream", headers=headers
        )

    async def _events(self, request: Request, seat: str | None) -> AsyncIterator[str]:
        """A seat's stream counts as its browser being there, and ends when the token
        that opened it is revoked; the instructor's reads the seating again each second
        (a change from the command line reaches the grid so)."""
        grid = self.service.grid
        token = _token(request, SEAT_COOKIE) if seat is not None else ""
        queue = grid.listen(seat)
        if seat is not None:
            grid.connect(seat)
        try:
            yield sse(grid.snapshot(seat))
            waited = 0.0
            while not self.stopping.is_set() and not await request.is_disconnected():
                try:
                    event = await asyncio.wait_for(queue.get(), timeout=1.0)
                except asyncio.TimeoutError:
                    waited += 1.0
                    if not self._still_open(seat, token):
                        return
                    if waited >= KEEPALIVE:
                        waited = 0.0
                        yield ": keepalive\n\n"
                    continue
                yield sse(event)
        finally:
            grid.unlisten(queue)
            if seat is not None:
                grid.disconnect(seat)

    def _still_open(self, seat: str | None, token: str) -> bool:
        """Whether a stream may go on: the seating read again (the command line may have
        changed it), and a seat's stream's token still that seat's (or the instructor's)."""
        self.seating.refresh()
        if seat is None or _is_token(token, self.room.instructor_token):
            return True
        return self.seating.owner(token) == seat


def build_app(
    service: RoomService, stopping: asyncio.Event | None = None, base: str = "http://127.0.0.1"
) -> Starlette:
    """The app serving `service`'s room; `stopping` ends the event streams on shutdown;
    `base` is the URL the printed links name: its origin is the server's own (websockets
    and POSTs from any other are refused) and https makes the cookies Secure."""
    store = service.store
    if store is None:  # a room served without its database (tests of pages): in memory
        store = db.RoomDB(Path(":memory:"), create=True)
        store.describe(
            workshop=service.room.name,
            lab=service.room.lab,
            created=service.room.created,
            steps=[],
            seats=service.room.seats,
        )
    seating = Seating(service.room, store, service.grid, service.terminals.close)
    site = Site(service, stopping or asyncio.Event(), seating, base)
    seat, teacher = Attendee(site), Instructor(site)
    joining = JoinPage(site, pages.join_page)
    # Each route twice: with the cookie (what a browser uses after its first visit) and
    # with the token in the path (the printed links, scripts). The cookie's routes come
    # first: their literal segments (events, check, seats) are never a token.
    seat_routes = [
        ("/", seat.page, ["GET"]),
        ("/events", seat.events, ["GET"]),
        ("/check/{step}", seat.check, ["POST"]),
        ("/run/{step}", seat.run, ["POST"]),
    ]
    teacher_routes = [
        ("/", teacher.page, ["GET"]),
        ("/events", teacher.events, ["GET"]),
        ("/grid.csv", teacher.grid_csv, ["GET"]),
        ("/report", teacher.report, ["GET"]),
        ("/report.json", teacher.report_json, ["GET"]),
        ("/run-for-me", teacher.run_for_me, ["POST"]),
        ("/seats/{seat}/reset", teacher.reset, ["POST"]),
        ("/seats/{seat}/watch", teacher.watch_page, ["GET"]),
        ("/sheet", teacher.sheet, ["GET"]),
        ("/join", teacher.join_open, ["POST"]),
        ("/seats/{seat}/assign", teacher.assign, ["POST"]),
        ("/seats/{seat}/free", teacher.free, ["POST"]),
        ("/seats/{seat}/reissue", teacher.reissue, ["POST"]),
    ]
    routes: list[Route | WebSocketRoute | Mount] = []
    for prefix, table, terminal in (
        ("/w/{seat}", seat_routes, ("/terminal", seat.terminal)),
        ("/i", teacher_routes, ("/seats/{seat}/terminal", teacher.watch)),
    ):
        for base_path in (prefix, prefix + "/{token}"):
            routes += [Route(base_path + p, h, methods=m) for p, h, m in table]
            routes.append(WebSocketRoute(base_path + terminal[0], terminal[1]))
    routes += [
        Route("/j/{code}", joining.page, methods=["GET"]),
        Route("/j/{code}", joining.post, methods=["POST"]),
    ]
    routes.append(Mount("/static", app=StaticFiles(directory=STATIC), name="static"))
    # One handler for both kinds of connection, which Starlette's types keep apart.
    denied = cast(ExceptionHandler, on_denied)
    return Starlette(
        routes=routes,
        middleware=[
            Middleware(SecurityHeaders),
            Middleware(Guard, own=frozenset({origin_of(base)})),
        ],
        exception_handlers={404: lambda request, exc: not_found(), Denied: denied},
    )


class SecurityHeaders:
    """Headers on every HTTP response: the CSP, no referrer (tokens stay in this tab)
    unless the handler chose same-origin.

    Plain ASGI rather than BaseHTTPMiddleware, which would buffer the event streams.
    """

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["Content-Security-Policy"] = CSP
                # A handler may say same-origin (the join page, whose form a browser
                # posts with Origin: null under no-referrer, which the Guard refuses).
                headers.setdefault("Referrer-Policy", "no-referrer")
                headers["X-Content-Type-Options"] = "nosniff"
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _redirecting(target: str) -> HTMLResponse:
    """A page that refreshes at once to `target` (see `Site.enter` for why not a 303)."""
    where = html.escape(target)
    body = (
        '<!doctype html>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="refresh" content="0; url={where}">\n'
        f'<title>Opening…</title>\n<p><a href="{where}">Open the page</a></p>\n'
    )
    return HTMLResponse(body, headers={"Cache-Control": "no-store"})


def sse(event: dict[str, Any]) -> str:
    return f"data: {json.dumps(event)}\n\n"
