"""Serving a room: uvicorn on a socket labgen binds itself, until Ctrl-C (or a deadline).

labgen binds the socket before uvicorn starts so that a port in use is a clear error
before anything else happens; uvicorn's access log stays off (every path carries a
token), and so does its Server header. With a certificate the port speaks TLS only: a
plain-HTTP request on it fails its handshake and the connection is closed (no page,
no token, no log line). Websocket frames over terminal.MAX_FRAME are closed by uvicorn.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import uvicorn

from labgen.core.errors import UsageError
from labgen.workshop.app import build_app
from labgen.workshop.service import RoomService
from labgen.workshop.terminal import MAX_FRAME
from labgen.workshop.tls import Certificate

DEFAULT_LISTEN = "127.0.0.1:8080"


def parse_listen(listen: str) -> tuple[str, int]:
    """HOST:PORT (an IPv6 host in brackets) -> (host, port).

    >>> parse_listen("127.0.0.1:8080"), parse_listen("[::1]:0")
    (('127.0.0.1', 8080), ('::1', 0))
    """
    host, sep, port = listen.rpartition(":")
    host = host.strip("[]")
    try:
        ipaddress.ip_address(host)
        number = int(port)
    except ValueError:
        raise UsageError(
            f"--listen {listen!r}: expected ADDRESS:PORT, e.g. {DEFAULT_LISTEN}"
        ) from None
    if not sep or not 0 <= number <= 65535:
        raise UsageError(f"--listen {listen!r}: the port must be 0-65535")
    return host, number


def parse_public_url(url: str, tls: bool) -> str:
    """--public-url: scheme://host[:port] the printed links name (a trailing / dropped).

    http or https with a host and nothing after it (the pages live at the root); https
    when the server itself speaks TLS. Plain http on the server with https here is a
    TLS proxy in front of it, and allowed.

    >>> parse_public_url("https://room.example:8443/", tls=True)
    'https://room.example:8443'
    """
    where = f"--public-url {url!r}"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  # raises ValueError for a port that is not one
    except ValueError:
        raise UsageError(f"{where}: not a URL with a valid port") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"{where}: expected http(s)://HOST[:PORT], e.g. https://room.example")
    if parts.username is not None or parts.password is not None:
        raise UsageError(f"{where}: a user name or password has no place in a printed link")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise UsageError(f"{where}: the pages live at the server's root: no path, no query")
    if tls and parts.scheme != "https":
        raise UsageError(f"{where}: the server speaks TLS here, so its links are https://")
    return f"{parts.scheme}://{parts.netloc}"


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def base_url(sock: socket.socket, scheme: str = "http") -> str:
    """The URL the socket is reached at: its address, or this host's name for all."""
    host, port = sock.getsockname()[:2]
    if ipaddress.ip_address(host).is_unspecified:
        host = socket.getfqdn()  # all addresses: name the host the room can reach
    elif ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}"


def serve(
    service: RoomService,
    listen: str,
    on_ready: Callable[[str], None],
    stop_after: float | None = None,
    stop: threading.Event | None = None,
    certificate: Certificate | None = None,
    public_url: str | None = None,
) -> None:
    """Serve the room until Ctrl-C, `stop_after` seconds, or `stop` is set (by another
    thread); `on_ready(base_url)` once it is up. With a `certificate` over TLS only;
    `public_url` (parsed already) is what the links say instead of the socket's address."""
    sock = bind(*parse_listen(listen))
    base = public_url or base_url(sock, "https" if certificate else "http")
    stopping = asyncio.Event()
    app = build_app(service, stopping, base)
    config = uvicorn.Config(
        app,
        access_log=False,
        server_header=False,
        log_level="warning",
        lifespan="off",
        # Open event streams and terminals get this long to end once stopping.
        timeout_graceful_shutdown=3,
        ws_max_size=MAX_FRAME,
        ssl_certfile=str(certificate.cert) if certificate else None,
        ssl_keyfile=str(certificate.key) if certificate else None,
    )
    server = uvicorn.Server(config)

    async def watch() -> None:
        deadline = None if stop_after is None else time.monotonic() + stop_after
        while not server.started and not server.should_exit:
            await asyncio.sleep(0.05)
        if server.started:
            on_ready(base)
        while not server.should_exit:
            if deadline is not None and time.monotonic() >= deadline:
                server.should_exit = True
            if stop is not None and stop.is_set():
                server.should_exit = True
            await asyncio.sleep(0.2)
        stopping.set()  # the event streams end, so the shutdown need not wait for them
        service.terminals.close_all()

    async def main() -> None:
        watcher = asyncio.create_task(watch())
        try:
            await server.serve(sockets=[sock])
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher

    service.start()
    try:
        asyncio.run(main())
    finally:
        service.stop()
        sock.close()
