"""Each seat's terminal: one interactive shell (an SSH pty, paramiko) that pages share.

The browser's terminal speaks to the server over a websocket and the server relays an
SSH pty on the seat's machine, so no further port of the machine is published and the
machine keeps accepting only its own key, which never leaves the host. One shell per
seat, shared by the attendee's tabs (a reload finds the same shell and its last screen)
and by the instructor, who only watches: a watcher's keys are never sent.

`relay` is the websocket's side: the shell's output as binary frames; the page's keys
and size as JSON text frames ({"input": ...} or {"cols": C, "rows": R}). Any other
frame (binary, not JSON, not an object, numbers that are not integers) closes the
socket with one log line: the page reconnects by itself, and the log carries no
traceback. Frames over MAX_FRAME are closed by uvicorn (1009) before they get here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import paramiko
from starlette.concurrency import run_in_threadpool
from starlette.websockets import WebSocket, WebSocketDisconnect

from labgen.core.errors import LabgenError
from labgen.machine import ssh

BACKLOG = 64 * 1024  # what a page that joins late sees of the screen so far
TERM = "xterm-256color"
MAX_FRAME = 256 * 1024  # a page's frame: a paste of a few thousand lines at most

log = logging.getLogger(__name__)


class BadFrame(Exception):
    """A frame from the page that is none of the two kinds it sends."""


def parse_frame(message: Mapping[str, Any]) -> tuple[str, str] | tuple[int, int]:
    """A websocket message from the page: ("input", keys) or (cols, rows); BadFrame
    (saying what was wrong, without echoing the frame) for anything else."""
    text = message.get("text")
    if text is None:
        raise BadFrame("a binary frame")
    try:
        data = json.loads(text)
    except ValueError:  # json's own errors
        raise BadFrame("a frame that is not JSON") from None
    except RecursionError:
        raise BadFrame("a frame nested too deep") from None
    if not isinstance(data, dict):
        raise BadFrame(f"a JSON {type(data).__name__}, not an object")
    if "input" in data:
        if not isinstance(data["input"], str):
            raise BadFrame("an input that is not a string")
        return ("input", data["input"])
    cols, rows = data.get("cols"), data.get("rows")
    # bool is an int to Python, not to the page; 1e999 is a float (inf) and refused here
    if type(cols) is int and type(rows) is int:
        return (cols, rows)
    raise BadFrame("neither input nor a size in whole numbers")


class Terminal:
    """One seat's shell and the pages that show it."""

    def __init__(self, seat: str, ssh_config: Path, on_enter: Callable[[str], None]):
        self.seat = seat
        self._on_enter = on_enter  # told when the attendee ends a line (a command ran)
        self._stack = contextlib.ExitStack()
        client: paramiko.SSHClient = self._stack.enter_context(ssh.connect(ssh_config))
        try:
            # A login shell as the lab user, the same as `labgen ssh` gives.
            self._channel = client.invoke_shell(term=TERM, width=100, height=30)
        except BaseException:
            self._stack.close()
            raise
        self._backlog = bytearray()
        self._lock = threading.Lock()
        self._listeners: list[tuple[asyncio.AbstractEventLoop, asyncio.Queue[bytes | None]]] = []
        self.closed = False
        self._reader = threading.Thread(target=self._read, name=f"pty-{seat}", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        """Relay what the shell writes to every page (and keep the last screenful)."""
        try:
            while True:
                data = self._channel.recv(32768)
                if not data:
                    break
                with self._lock:
                    self._backlog += data
                    del self._backlog[:-BACKLOG]
                    listeners = list(self._listeners)
                for loop, queue in listeners:
                    _send(loop, queue, data)
        except (OSError, EOFError, paramiko.SSHException):
            pass
        finally:
            self.close()

    def join(self) -> tuple[asyncio.Queue[bytes | None], bytes]:
        """A queue of the shell's output for this page (None at its end), and the backlog."""
        queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=4096)
        with self._lock:
            self._listeners.append((asyncio.get_running_loop(), queue))
            return queue, bytes(self._backlog)

    def leave(self, queue: asyncio.Queue[bytes | None]) -> None:
        with self._lock:
            self._listeners = [e for e in self._listeners if e[1] is not queue]

    def write(self, data: str) -> None:
        if self.closed:
            return
        self._channel.sendall(data.encode())
        if "\r" in data or "\n" in data:
            self._on_enter(self.seat)

    def resize(self, cols: int, rows: int) -> None:
        if not self.closed and 2 <= cols <= 500 and 2 <= rows <= 200:
            self._channel.resize_pty(width=cols, height=rows)

    def close(self) -> None:
        with self._lock:
            if self.closed:
                return
            self.closed = True
            listeners = list(self._listeners)
        for loop, queue in listeners:
            _send(loop, queue, None)
        with contextlib.suppress(Exception):
            self._channel.close()
        self._stack.close()


def _send(loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[Any], item: Any) -> None:
    def offer() -> None:
        if not queue.full():
            queue.put_nowait(item)

    # The page's loop may be gone already (server stopping): nothing left to tell.
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(offer)


class Terminals:
    """The open shells, one per seat, opened on first use."""

    def __init__(self, ssh_config: Callable[[str], Path], on_enter: Callable[[str], None]):
        self._ssh_config = ssh_config
        self._on_enter = on_enter
        self._open: dict[str, Terminal] = {}
        self._lock = threading.Lock()

    def get(self, seat: str) -> Terminal:
        """The seat's shell; a new one when there is none or the last one ended (blocks)."""
        with self._lock:
            term = self._open.get(seat)
            if term is None or term.closed:
                term = Terminal(seat, self._ssh_config(seat), self._on_enter)
                self._open[seat] = term
            return term

    def close(self, seat: str) -> None:
        with self._lock:
            term = self._open.pop(seat, None)
        if term is not None:
            term.close()

    def close_all(self) -> None:
        for seat in list(self._open):
            self.close(seat)


async def relay(websocket: WebSocket, terminals: Terminals, seat: str, read_only: bool) -> None:
    """Relay the seat's shell over `websocket` until either end closes; a `read_only`
    page (the instructor's) sees the shell but its keys and size are dropped."""
    await websocket.accept()
    try:
        term = await run_in_threadpool(terminals.get, seat)
    except (LabgenError, OSError) as exc:  # OSError: the seat's instance dir is gone
        message = exc.message if isinstance(exc, LabgenError) else "the seat has no machine now"
        await websocket.send_text(json.dumps({"error": message}))
        await websocket.close(code=1011)
        return
    queue, backlog = term.join()
    sender = asyncio.create_task(_pump(websocket, queue, backlog))
    try:
        await _take_keys(websocket, term, read_only)
    except BadFrame as exc:
        log.warning("%s: closed a terminal socket that sent %s", seat, exc)
        with contextlib.suppress(Exception):  # the page may be gone already
            await websocket.close(code=1003 if str(exc) == "a binary frame" else 1007)
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        term.leave(queue)
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await sender


async def _pump(websocket: WebSocket, queue: asyncio.Queue[bytes | None], backlog: bytes) -> None:
    """The shell's output to the page, the backlog first; a normal close at its end."""
    if backlog:
        await websocket.send_bytes(backlog)
    while True:
        data = await queue.get()
        if data is None:
            break
        await websocket.send_bytes(data)
    await websocket.close(code=1000)


async def _take_keys(websocket: WebSocket, term: Terminal, read_only: bool) -> None:
    """The page's frames to the shell, until the page goes (WebSocketDisconnect)."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(int(message.get("code", 1000)))
        frame = parse_frame(message)
        if read_only:
            continue  # a watcher's keys never reach the shell
        if frame[0] == "input":
            await run_in_threadpool(term.write, str(frame[1]))
        else:
            term.resize(int(frame[0]), int(frame[1]))
