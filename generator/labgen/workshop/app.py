"""The web app (Starlette): an attendee page per seat, the instructor's page, their data.

Every page and action sits under a path with a token: /w/SEAT/TOKEN/ for a seat,
/i/TOKEN/ for the instructor. A seat's token opens that seat only: another seat's
(or the instructor's) token on it is 403, and a token that is nobody's is a bare
404 that tells nothing, not even whether the seat exists. Scripts, styles and fonts
come from /static/ (this package's files and the vendored xterm.js); the pages' CSP
lets them load nothing from anywhere else.

This module holds what both audiences share (the `Site`: the room, its tokens, the
event stream) and the route table; attendee.py and instructor.py hold the handlers.
A handler that a token does not open raises `Denied`, and one exception handler
answers it, for HTTP and websockets alike.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.middleware import Middleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, ExceptionHandler, Message, Receive, Scope, Send
from starlette.websockets import WebSocket

from labgen.workshop.attendee import Attendee
from labgen.workshop.instructor import Instructor
from labgen.workshop.room import Room
from labgen.workshop.service import RoomService

STATIC = Path(__file__).resolve().parent / "static"
CSP = (
    "default-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "style-src 'self' 'unsafe-inline'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
KEEPALIVE = 15.0  # seconds between SSE comments, so proxies and browsers keep the stream


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
    return secrets.compare_digest(given.encode(), expected.encode())


@dataclass(frozen=True)
class Site:
    """What every handler shares: the room's service and the event that ends streams."""

    service: RoomService
    stopping: asyncio.Event

    @property
    def room(self) -> Room:
        return self.service.room

    def seat_of(self, params: Mapping[str, Any]) -> str:
        """The seat a seat path names, when its token is that seat's."""
        seat, token = str(params["seat"]), str(params["token"])
        tokens = self.room.seat_tokens
        owner = next((s for s, t in tokens.items() if _is_token(token, t)), None)
        if owner is None and not _is_token(token, self.room.instructor_token):
            raise Denied(404)
        if seat not in tokens:
            raise Denied(404)
        if owner != seat:
            raise Denied(403)
        return seat

    def instructor(self, params: Mapping[str, Any]) -> None:
        """Nothing, when the path's token is the instructor's."""
        if not _is_token(str(params["token"]), self.room.instructor_token):
            raise Denied(404)

    def watched_seat(self, params: Mapping[str, Any]) -> str:
        """The seat an instructor's path names, when the token is the instructor's."""
        self.instructor(params)
        seat = str(params["seat"])
        if seat not in self.room.seat_tokens:
            raise Denied(404)
        return seat

    def event_stream(self, request: Request, seat: str | None) -> Response:
        """Server-sent events: the grid (one seat's row, or the room's), then its changes."""
        headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        return StreamingResponse(
            self._events(request, seat), media_type="text/event-stream", headers=headers
        )

    async def _events(self, request: Request, seat: str | None) -> AsyncIterator[str]:
        grid = self.service.grid
        queue = grid.listen(seat)
        try:
            yield sse(grid.snapshot(seat))
            waited = 0.0
            while not self.stopping.is_set() and not await request.is_disconnected():
                try:
                    event = await asyncio.wait_for(queue.get(), timeout=1.0)
                except asyncio.TimeoutError:
                    waited += 1.0
                    if waited >= KEEPALIVE:
                        waited = 0.0
                        yield ": keepalive\n\n"
                    continue
                yield sse(event)
        finally:
            grid.unlisten(queue)


def build_app(service: RoomService, stopping: asyncio.Event | None = None) -> Starlette:
    """The app serving `service`'s room; `stopping` ends the event streams on shutdown."""
    site = Site(service, stopping or asyncio.Event())
    seat, teacher = Attendee(site), Instructor(site)
    routes = [
        Route("/w/{seat}/{token}/", seat.page),
        Route("/w/{seat}/{token}/events", seat.events),
        Route("/w/{seat}/{token}/check/{step}", seat.check, methods=["POST"]),
        Route("/w/{seat}/{token}/run/{step}", seat.run, methods=["POST"]),
        WebSocketRoute("/w/{seat}/{token}/terminal", seat.terminal),
        Route("/i/{token}/", teacher.page),
        Route("/i/{token}/events", teacher.events),
        Route("/i/{token}/grid.csv", teacher.grid_csv),
        Route("/i/{token}/report", teacher.report),
        Route("/i/{token}/report.json", teacher.report_json),
        Route("/i/{token}/run-for-me", teacher.run_for_me, methods=["POST"]),
        Route("/i/{token}/seats/{seat}/reset", teacher.reset, methods=["POST"]),
        Route("/i/{token}/seats/{seat}/watch", teacher.watch_page),
        WebSocketRoute("/i/{token}/seats/{seat}/terminal", teacher.watch),
        Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
    ]
    # One handler for both kinds of connection, which Starlette's types keep apart.
    denied = cast(ExceptionHandler, on_denied)
    return Starlette(
        routes=routes,
        middleware=[Middleware(SecurityHeaders)],
        exception_handlers={404: lambda request, exc: not_found(), Denied: denied},
    )


class SecurityHeaders:
    """Headers on every HTTP response: the CSP, no referrer (tokens stay in this tab).

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
                headers["Referrer-Policy"] = "no-referrer"
                headers["X-Content-Type-Options"] = "nosniff"
            await send(message)

        await self.app(scope, receive, send_with_headers)


def sse(event: dict[str, Any]) -> str:
    return f"data: {json.dumps(event)}\n\n"
