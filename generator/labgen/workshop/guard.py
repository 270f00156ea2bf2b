"""What every request meets before a handler: the Origin check and the cap on bodies.

A browser sends an `Origin` with every websocket handshake and every POST. One that is
not the server's own is another site's page trying to use the attendee's (or the
instructor's) cookie: refused (403), with one log line. The server's own origins are
the one its printed links name (the public URL) and, when the request's Host is an IP
address or `localhost`, that Host: a DNS name in Host proves nothing (a rebound name
says what its owner likes), an address does. A request with no Origin at all comes
from a program, not a browser page (curl, a script, the tests): it has no victim's
cookie to ride on, must hold a token itself, and is let through.

Bodies (the app's POSTs carry a few bytes of JSON at most) are read here up to
MAX_BODY: more is a 413 before any handler runs.
"""

from __future__ import annotations

import ipaddress
import logging
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024
SAFE = frozenset({"GET", "HEAD", "OPTIONS"})


def origin_of(url: str) -> str:
    """scheme://host[:port] of a URL, as browsers write an Origin.

    >>> origin_of("https://room.example:8443/w/x/"), origin_of("http://10.0.0.5:80/")
    ('https://room.example:8443', 'http://10.0.0.5')
    """
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = "" if parts.port in (None, default) else f":{parts.port}"
    return f"{parts.scheme}://{host}{port}"


def _is_address(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def allowed(origin: str, own: frozenset[str], scope: Scope) -> bool:
    """Whether a request with this Origin comes from one of the server's own pages."""
    if origin in own:
        return True
    host = Headers(scope=scope).get("host", "")
    scheme = "https" if scope.get("scheme") in ("https", "wss") else "http"
    here = origin_of(f"{scheme}://{host}/") if host else ""
    return bool(here) and origin == here and _is_address(urlsplit(here).hostname or "")


class Guard:
    """The Origin check (websockets and POSTs) and the body cap, as plain ASGI."""

    def __init__(self, app: ASGIApp, own: frozenset[str], max_body: int = MAX_BODY):
        self.app = app
        self.own = own
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        origin = Headers(scope=scope).get("origin")
        unsafe = scope["type"] == "websocket" or scope.get("method", "GET") not in SAFE
        if unsafe and origin is not None and not allowed(origin, self.own, scope):
            log.warning("refused %s from origin %r", _what(scope), origin)
            await _refuse(scope, receive, send)
            return
        if scope["type"] == "http" and scope.get("method", "GET") not in SAFE:
            body = await self._read_body(scope, receive, send)
            if body is None:
                return
            receive = _replay(body, receive)
        await self.app(scope, receive, send)

    async def _read_body(self, scope: Scope, receive: Receive, send: Send) -> bytes | None:
        """The whole body, or None once a 413 is sent for one over the cap."""
        length = Headers(scope=scope).get("content-length", "")
        if length.isdigit() and int(length) > self.max_body:
            await self._too_large(scope, receive, send)
            return None
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return b""
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_body:
                await self._too_large(scope, receive, send)
                return None
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        log.warning("refused %s: its body is over %d bytes", _what(scope), self.max_body)
        text = f"Request body too large (at most {self.max_body // 1024} KiB)"
        await PlainTextResponse(text, 413)(scope, receive, send)


def _what(scope: Scope) -> str:
    # The path carries a token: name the route's kind only, never the path itself.
    path = str(scope.get("path", ""))
    kind = "a websocket" if scope["type"] == "websocket" else str(scope.get("method"))
    return f"{kind} to {path.split('/')[1] if path.count('/') > 1 else path}/..."


async def _refuse(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        # A close before accepting: the server answers the handshake with a 403.
        await send({"type": "websocket.close", "code": 1008})
        return
    await PlainTextResponse("Forbidden", 403)(scope, receive, send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that gives the body read already, then the client's own messages."""
    sent = False

    async def again() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return again
