"""Serving a room: uvicorn on a socket labgen binds itself, until Ctrl-C (or a deadline).

labgen binds the socket before uvicorn starts so that a port in use is a clear error
before anything else happens; uvicorn's access log stays off (every path carries a
token), and so does its Server header.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import threading
import time
from collections.abc import Callable

import uvicorn

from labgen.core.errors import UsageError
from labgen.workshop.app import build_app
from labgen.workshop.service import RoomService

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


def base_url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    if ipaddress.ip_address(host).is_unspecified:
        host = socket.getfqdn()  # all addresses: name the host the room can reach
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def serve(
    service: RoomService,
    listen: str,
    on_ready: Callable[[str], None],
    stop_after: float | None = None,
    stop: threading.Event | None = None,
) -> None:
    """Serve the room until Ctrl-C, `stop_after` seconds, or `stop` is set (by another
    thread); `on_ready(base_url)` once it is up."""
    sock = bind(*parse_listen(listen))
    stopping = asyncio.Event()
    app = build_app(service, stopping)
    config = uvicorn.Config(
        app,
        access_log=False,
        server_header=False,
        log_level="warning",
        lifespan="off",
        # Open event streams and terminals get this long to end once stopping.
        timeout_graceful_shutdown=3,
    )
    server = uvicorn.Server(config)

    async def watch() -> None:
        deadline = None if stop_after is None else time.monotonic() + stop_after
        while not server.started and not server.should_exit:
            await asyncio.sleep(0.05)
        if server.started:
            on_ready(base_url(sock))
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
