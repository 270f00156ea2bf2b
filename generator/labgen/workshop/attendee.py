"""The attendee's handlers: their seat's page and events, Check, Run it for me, the terminal.

Each handler first asks the app's `Site` for the seat its path's token opens; a token
that does not open it raises `Denied`, which the app's one exception handler answers.
This module knows the Site only as the `SeatAccess` it needs, so it never imports
app.py (which imports this module).
"""

from __future__ import annotations

from typing import Protocol

from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.websockets import WebSocket

from labgen.core.errors import LabgenError
from labgen.workshop import pages
from labgen.workshop.service import Busy, RoomService
from labgen.workshop.terminal import relay

BUSY = "this seat is busy with another check or run"


class SeatAccess(Protocol):
    """What the attendee's handlers need of the app (its `Site`)."""

    @property
    def service(self) -> RoomService: ...

    def seat_of(self, conn: HTTPConnection) -> str:
        """The seat the path names, or Denied unless its token is that seat's."""
        ...

    def event_stream(self, request: Request, seat: str | None) -> Response: ...

    def enter(self, conn: HTTPConnection) -> Response | None:
        """None, or (for a printed link) the token as a cookie and a redirect."""
        ...


class Attendee:
    """The routes under /w/SEAT/TOKEN/."""

    def __init__(self, site: SeatAccess):
        self.site = site

    async def page(self, request: Request) -> Response:
        seat = self.site.seat_of(request)
        return self.site.enter(request) or pages.response(pages.attendee(self.site.service, seat))

    async def events(self, request: Request) -> Response:
        seat = self.site.seat_of(request)
        return self.site.event_stream(request, seat)

    async def check(self, request: Request) -> Response:
        seat = self.site.seat_of(request)
        step = str(request.path_params["step"])
        try:
            verdict, cell = await run_in_threadpool(self.site.service.check, seat, step)
        except Busy:
            return JSONResponse({"error": BUSY}, 409)
        except LabgenError as exc:
            return JSONResponse({"error": exc.message}, 400)
        return JSONResponse({**verdict.to_json(), "cell": cell})

    async def run(self, request: Request) -> Response:
        seat = self.site.seat_of(request)
        step = str(request.path_params["step"])
        try:
            result = await run_in_threadpool(self.site.service.run, seat, step)
        except PermissionError as exc:  # the instructor turned Run it for me off
            return JSONResponse({"error": str(exc)}, 403)
        except Busy:
            return JSONResponse({"error": BUSY}, 409)
        except LabgenError as exc:
            return JSONResponse({"error": exc.message}, 400)
        return JSONResponse(result.__dict__)

    async def terminal(self, websocket: WebSocket) -> None:
        seat = self.site.seat_of(websocket)
        await run_in_threadpool(self.site.service.grid.opened, seat)
        await relay(websocket, self.site.service.terminals, seat, read_only=False)
