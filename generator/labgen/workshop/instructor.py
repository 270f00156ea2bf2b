"""The instructor's handlers: the grid and its events, reset, Run it for me on or off,
the CSV, the room's report, a seat's terminal to watch, and handing out seats: assign
a seat to a name, free it, re-issue its link, open or close the join page, and the
printable sheet of every seat's card.

Each handler first asks the app's `Site` whether its path's token is the instructor's
(and which seat it names); one that is not raises `Denied`, which the app's one
exception handler answers. This module knows the Site only as the `InstructorAccess`
it needs, so it never imports app.py (which imports this module).
"""

from __future__ import annotations

from typing import Protocol

from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.websockets import WebSocket

from labgen.core.errors import UsageError
from labgen.workshop import pages, sheet
from labgen.workshop import report as reports
from labgen.workshop.join import BY_PAGE, Seating, SeatState
from labgen.workshop.service import Busy, RoomService
from labgen.workshop.terminal import relay


class InstructorAccess(Protocol):
    """What the instructor's handlers need of the app (its `Site`)."""

    @property
    def service(self) -> RoomService: ...

    @property
    def seating(self) -> Seating: ...

    @property
    def base(self) -> str: ...

    def instructor(self, conn: HTTPConnection) -> None:
        """Nothing, or Denied unless the path's token is the instructor's."""
        ...

    def watched_seat(self, conn: HTTPConnection) -> str:
        """The seat the path names, or Denied unless the token is the instructor's."""
        ...

    def event_stream(self, request: Request, seat: str | None) -> Response: ...

    def enter(self, conn: HTTPConnection) -> Response | None:
        """None, or (for a printed link) the token as a cookie and a redirect."""
        ...


class Instructor:
    """The routes under /i/TOKEN/."""

    def __init__(self, site: InstructorAccess):
        self.site = site

    async def page(self, request: Request) -> Response:
        self.site.instructor(request)
        join = sheet.join_url(self.site.base, self.site.seating.code)
        body = pages.instructor(self.site.service, join, self.site.seating.open)
        return self.site.enter(request) or pages.response(body)

    async def events(self, request: Request) -> Response:
        self.site.instructor(request)
        return self.site.event_stream(request, None)

    async def grid_csv(self, request: Request) -> Response:
        self.site.instructor(request)
        disposition = f'attachment; filename="{self.site.service.room.name}-grid.csv"'
        return Response(
            self.site.service.grid.csv(),
            media_type="text/csv",
            headers={"Content-Disposition": disposition},
        )

    async def report(self, request: Request) -> Response:
        """The room's report, as the fragment the page shows below the grid."""
        self.site.instructor(request)
        if self.site.service.store is None:
            return JSONResponse({"error": "this room has no database"}, 404)
        return pages.response(await run_in_threadpool(pages.report, self.site.service))

    async def report_json(self, request: Request) -> Response:
        """The room's report as `labgen workshop report --json` prints it."""
        self.site.instructor(request)
        store = self.site.service.store
        if store is None:
            return JSONResponse({"error": "this room has no database"}, 404)
        record = await run_in_threadpool(reports.build, store)
        return JSONResponse(record.to_json(), headers={"Cache-Control": "no-store"})

    async def run_for_me(self, request: Request) -> Response:
        self.site.instructor(request)
        try:
            body = await request.json()
        except ValueError:  # not JSON (json's and UnicodeDecodeError are ValueErrors)
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("enabled"), bool):
            return JSONResponse({"error": 'expected {"enabled": true|false}'}, 400)
        grid = self.site.service.grid
        grid.set_run_for_me(body["enabled"])
        return JSONResponse({"run_for_me": grid.run_for_me})

    async def reset(self, request: Request) -> Response:
        seat = self.site.watched_seat(request)
        try:
            self.site.service.reset(seat)
        except Busy:
            return JSONResponse({"error": f"{seat} is busy"}, 409)
        return JSONResponse({"resetting": seat}, 202)

    async def watch_page(self, request: Request) -> Response:
        seat = self.site.watched_seat(request)
        return self.site.enter(request) or pages.response(pages.watch(self.site.service, seat))

    async def watch(self, websocket: WebSocket) -> None:
        seat = self.site.watched_seat(websocket)
        await relay(websocket, self.site.service.terminals, seat, read_only=True)

    # --- handing out seats ---------------------------------------------------------------

    async def sheet(self, request: Request) -> Response:
        """The printable sheet: the join page's card, then one card per seat, each with
        its link and that link's QR code (inline SVG: it prints offline)."""
        self.site.instructor(request)
        seating, base = self.site.seating, self.site.base
        cards = await run_in_threadpool(sheet.cards, base, seating.seats())
        join = sheet.join_card(base, seating.code)
        body = pages.sheet(self.site.service, join, cards, seating.open)
        return self.site.enter(request) or pages.response(body)

    async def join_open(self, request: Request) -> Response:
        """Open or close the join page: {"open": true|false}."""
        self.site.instructor(request)
        body = await _json(request)
        if not isinstance(body, dict) or not isinstance(body.get("open"), bool):
            return JSONResponse({"error": 'expected {"open": true|false}'}, 400)
        self.site.seating.set_open(body["open"])
        return JSONResponse({"open": self.site.seating.open})

    async def assign(self, request: Request) -> Response:
        """Keep a free seat for a name: {"attendee": NAME}."""
        seat = self.site.watched_seat(request)
        body = await _json(request)
        if not isinstance(body, dict) or not isinstance(body.get("attendee"), str):
            return JSONResponse({"error": 'expected {"attendee": "NAME"}'}, 400)
        try:
            state = await run_in_threadpool(
                self.site.seating.assign, seat, body["attendee"], BY_PAGE
            )
        except UsageError as exc:
            return JSONResponse({"error": exc.message, "hint": exc.hint or ""}, 409)
        return JSONResponse(self._seat_json(state))

    async def free(self, request: Request) -> Response:
        """Take the seat from its attendee; its link is re-issued (the old one revoked)."""
        seat = self.site.watched_seat(request)
        state = await run_in_threadpool(self.site.seating.free, seat, BY_PAGE)
        return JSONResponse(self._seat_json(state))

    async def reissue(self, request: Request) -> Response:
        """A new link for the seat, the old one revoked; the answer carries the new link."""
        seat = self.site.watched_seat(request)
        state = await run_in_threadpool(self.site.seating.reissue, seat, BY_PAGE)
        return JSONResponse(self._seat_json(state))

    def _seat_json(self, state: SeatState) -> dict[str, object]:
        return {
            "seat": state.seat,
            "attendee": state.attendee,
            "how": state.how,
            "generation": state.generation,
            "link": sheet.seat_url(self.site.base, state.seat, state.token),
        }


async def _json(request: Request) -> object:
    """The request's JSON body, or None when it is not JSON."""
    try:
        return await request.json()
    except ValueError:  # not JSON (json's and UnicodeDecodeError are ValueErrors)
        return None
