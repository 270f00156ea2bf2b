"""The web app (Starlette): an attendee page per seat, the instructor's page, their data.

Every page and action sits under a path with a token: /w/SEAT/TOKEN/ for a seat,
/i/TOKEN/ for the instructor. A seat's token opens that seat only: another seat's
(or the instructor's) token on it is 403, and a token that is nobody's is a bare
404 that tells nothing, not even whether the seat exists. Scripts, styles and fonts
come from /static/ (this package's files and the vendored xterm.js); the pages' CSP
lets them load nothing from anywhere else.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from labgen.core.errors import LabgenError
from labgen.workshop import pages
from labgen.workshop.service import Busy, RoomService

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


def build_app(service: RoomService, stopping: asyncio.Event | None = None) -> Starlette:
    """The app serving `service`'s room; `stopping` ends the event streams on shutdown."""
    room = service.room
    stop = stopping or asyncio.Event()

    def is_token(given: str, expected: str) -> bool:
        return secrets.compare_digest(given.encode(), expected.encode())

    def seat_of(params: dict[str, Any]) -> str:
        """The seat a seat path names, when its token is that seat's."""
        seat, token = str(params["seat"]), str(params["token"])
        owner = next((s for s, t in room.seat_tokens.items() if is_token(token, t)), None)
        if owner is None and not is_token(token, room.instructor_token):
            raise Denied(404)
        if seat not in room.seat_tokens:
            raise Denied(404)
        if owner != seat:
            raise Denied(403)
        return seat

    def instructor(params: dict[str, Any]) -> None:
        if not is_token(str(params["token"]), room.instructor_token):
            raise Denied(404)

    def seat_named(params: dict[str, Any]) -> str:
        seat = str(params["seat"])
        if seat not in room.seat_tokens:
            raise Denied(404)
        return seat

    def denied(exc: Denied) -> Response:
        return not_found() if exc.status == 404 else PlainTextResponse("Forbidden", 403)

    # --- the attendee ------------------------------------------------------------------

    async def attendee_page(request: Request) -> Response:
        try:
            seat = seat_of(request.path_params)
        except Denied as exc:
            return denied(exc)
        return html(pages.attendee(service, seat))

    async def seat_events(request: Request) -> Response:
        try:
            seat = seat_of(request.path_params)
        except Denied as exc:
            return denied(exc)
        return event_stream(request, seat)

    async def check(request: Request) -> Response:
        try:
            seat = seat_of(request.path_params)
        except Denied as exc:
            return denied(exc)
        step = str(request.path_params["step"])
        try:
            verdict, cell = await run_in_threadpool(service.check, seat, step)
        except Busy:
            return JSONResponse({"error": "this seat is busy with another check or run"}, 409)
        except LabgenError as exc:
            return JSONResponse({"error": exc.message}, 400)
        return JSONResponse({**verdict.to_json(), "cell": cell})

    async def run(request: Request) -> Response:
        try:
            seat = seat_of(request.path_params)
        except Denied as exc:
            return denied(exc)
        step = str(request.path_params["step"])
        try:
            result = await run_in_threadpool(service.run, seat, step)
        except PermissionError as exc:
            return JSONResponse({"error": str(exc)}, 403)
        except Busy:
            return JSONResponse({"error": "this seat is busy with another check or run"}, 409)
        except LabgenError as exc:
            return JSONResponse({"error": exc.message}, 400)
        return JSONResponse(result.__dict__)

    async def terminal(websocket: WebSocket) -> None:
        try:
            seat = seat_of(websocket.path_params)
        except Denied as exc:
            await websocket.send_denial_response(denied(exc))
            return
        await relay(websocket, seat, read_only=False)

    # --- the instructor ----------------------------------------------------------------

    async def instructor_page(request: Request) -> Response:
        try:
            instructor(request.path_params)
        except Denied as exc:
            return denied(exc)
        return html(pages.instructor(service))

    async def room_events(request: Request) -> Response:
        try:
            instructor(request.path_params)
        except Denied as exc:
            return denied(exc)
        return event_stream(request, None)

    async def grid_csv(request: Request) -> Response:
        try:
            instructor(request.path_params)
        except Denied as exc:
            return denied(exc)
        disposition = f'attachment; filename="{room.name}-grid.csv"'
        return Response(
            service.grid.csv(),
            media_type="text/csv",
            headers={"Content-Disposition": disposition},
        )

    async def run_for_me(request: Request) -> Response:
        try:
            instructor(request.path_params)
        except Denied as exc:
            return denied(exc)
        body = await request.json()
        service.grid.set_run_for_me(bool(body.get("enabled")))
        return JSONResponse({"run_for_me": service.grid.run_for_me})

    async def reset(request: Request) -> Response:
        try:
            instructor(request.path_params)
            seat = seat_named(request.path_params)
        except Denied as exc:
            return denied(exc)
        try:
            service.reset(seat)
        except Busy:
            return JSONResponse({"error": f"{seat} is busy"}, 409)
        return JSONResponse({"resetting": seat}, 202)

    async def watch_page(request: Request) -> Response:
        try:
            instructor(request.path_params)
            seat = seat_named(request.path_params)
        except Denied as exc:
            return denied(exc)
        return html(pages.watch(service, seat))

    async def watch(websocket: WebSocket) -> None:
        try:
            instructor(websocket.path_params)
            seat = seat_named(websocket.path_params)
        except Denied as exc:
            await websocket.send_denial_response(denied(exc))
            return
        await relay(websocket, seat, read_only=True)

    # --- shared ------------------------------------------------------------------------

    def event_stream(request: Request, seat: str | None) -> Response:
        async def events() -> AsyncIterator[str]:
            queue = service.grid.listen(seat)
            try:
                yield sse(service.grid.snapshot(seat))
                waited = 0.0
                while not stop.is_set() and not await request.is_disconnected():
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
                service.grid.unlisten(queue)

        headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        return StreamingResponse(events(), media_type="text/event-stream", headers=headers)

    async def relay(websocket: WebSocket, seat: str, read_only: bool) -> None:
        """Relay the seat's shell: its output as binary frames; the page's keys and
        size as JSON text frames ({"input": ...} or {"cols": C, "rows": R})."""
        await websocket.accept()
        try:
            term = await run_in_threadpool(service.terminals.get, seat)
        except LabgenError as exc:
            await websocket.send_text(json.dumps({"error": exc.message}))
            await websocket.close(code=1011)
            return
        queue, backlog = term.join()

        async def pump() -> None:
            if backlog:
                await websocket.send_bytes(backlog)
            while True:
                data = await queue.get()
                if data is None:
                    break
                await websocket.send_bytes(data)
            await websocket.close(code=1000)

        sender = asyncio.create_task(pump())
        try:
            while True:
                message = json.loads(await websocket.receive_text())
                if read_only:
                    continue  # a watcher's keys never reach the shell
                if "input" in message:
                    await run_in_threadpool(term.write, str(message["input"]))
                elif "cols" in message and "rows" in message:
                    term.resize(int(message["cols"]), int(message["rows"]))
        except (WebSocketDisconnect, RuntimeError, ValueError):
            pass
        finally:
            term.leave(queue)
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await sender

    routes = [
        Route("/w/{seat}/{token}/", attendee_page),
        Route("/w/{seat}/{token}/events", seat_events),
        Route("/w/{seat}/{token}/check/{step}", check, methods=["POST"]),
        Route("/w/{seat}/{token}/run/{step}", run, methods=["POST"]),
        WebSocketRoute("/w/{seat}/{token}/terminal", terminal),
        Route("/i/{token}/", instructor_page),
        Route("/i/{token}/events", room_events),
        Route("/i/{token}/grid.csv", grid_csv),
        Route("/i/{token}/run-for-me", run_for_me, methods=["POST"]),
        Route("/i/{token}/seats/{seat}/reset", reset, methods=["POST"]),
        Route("/i/{token}/seats/{seat}/watch", watch_page),
        WebSocketRoute("/i/{token}/seats/{seat}/terminal", watch),
        Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
    ]
    return Starlette(
        routes=routes,
        middleware=[Middleware(SecurityHeaders)],
        exception_handlers={404: lambda request, exc: not_found()},
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


def html(body: str) -> HTMLResponse:
    return HTMLResponse(body, headers={"Cache-Control": "no-store"})


def sse(event: dict[str, Any]) -> str:
    return f"data: {json.dumps(event)}\n\n"
