"""Each attendee's terminals: shells in tmux sessions on the seat's machine, which the
server only attaches to, so they outlive it.

The browser's terminal speaks to the server over a websocket and the server relays an
SSH pty on the seat's machine, so no further port of the machine is published and the
machine keeps accepting only its own key, which never leaves the host. The pty runs a
tmux client, never the shell itself: the shell lives in a tmux session (`labgen-1`,
`labgen-2`: the page's Terminal 1 and Terminal 2) on the machine's own tmux server, so
a restart of `serve`, a dropped Wi-Fi or a closed tab detaches a client and leaves the
shell, its variables, its working directory, its screen and whatever it runs. The next
page attaches again, and tmux draws the screen afresh for it: the server keeps no
backlog of its own. A seat reset gives a new machine, and so new shells. tmux's server
leaves the SSH session when it starts (it is a daemon), so the end of the connection
that started it ends nothing: the docker provider's machines have no logind, and where
systemd-logind runs (a VM), Debian's default KillUserProcesses=no keeps them.

Why a session per terminal, not windows of one session: every client of a session
shows the session's current window, so two tabs on two windows would flip each other
(grouped sessions would fix that, with a session per page to clean up).

Every page is a client of its own (its own SSH connection and pty): tmux then sizes
the window to the page that typed last (`window-size latest`), redraws each page on
attach, and two tabs of a seat show the same shell. The instructor's watch attaches
read-only and ignoring its size (`attach-session -r -f ignore-size`): it sees the
attendee's screen at the attendee's size, and its keys go nowhere, twice over: the
relay drops them, and tmux would too. (With no attendee's page attached, tmux sizes
the window to the watcher all the same: it has no client that never counts. The
attendee's page, back, sizes it again.)

`relay` is the websocket's side: the shell's output as binary frames; the page's keys
and size as JSON text frames ({"input": ...} or {"cols": C, "rows": R}). Which shell
and at what size come in the socket's query string (`terminal?n=2&cols=120&rows=40`,
see `requested`), so that tmux draws the screen at the page's size the first time.
Any other frame (binary, not JSON, not an object, numbers that are not integers)
closes the socket with one log line: the page reconnects by itself, and the log
carries no traceback. Frames over MAX_FRAME are closed by uvicorn (1009) before they
get here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shlex
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paramiko
from starlette.concurrency import run_in_threadpool
from starlette.websockets import WebSocket, WebSocketDisconnect

from labgen.core.errors import LabgenError
from labgen.machine import ssh

TERM = "xterm-256color"
MAX_FRAME = 256 * 1024  # a page's frame: a paste of a few thousand lines at most
TERMINALS = 4  # shells a seat's pages may open: the page offers two; a lab may ask more
COLS, ROWS = (2, 500), (2, 200)  # the sizes a pty may take (a page's window, generously)
DEFAULT_SIZE = (100, 30)  # a page that does not say its size (a program)
EARLY = 256 * 1024  # what tmux sends before the page joins: its drawing of the screen
SOCKET = "labgen"  # tmux -L: the workshop's own tmux server, apart from any a lab runs
# The workshop's tmux server, set on every attach (idempotent, and a machine made
# before a change of these gets it). Why each:
OPTIONS = (
    # The page's tabs name the terminals; a status line would take a row of the screen
    # to say what the page says.
    ("status", "off"),
    # Every key reaches the shell, as in a plain login shell: Ctrl-B is readline's
    # back-a-character, and an attendee who does not know tmux never meets its keys.
    ("prefix", "None"),
    # The mouse wheel scrolls tmux's history (copy mode), which outlives the page;
    # xterm.js's own scrollback holds only what this page saw. Shift+drag selects text
    # in the browser (xterm.js lets a page take the selection back from the mouse).
    ("mouse", "on"),
    ("history-limit", "10000"),
    # tmux waits this long after Esc to tell Alt+key from Esc: 500 ms by default, which
    # an editor's Esc would feel; the relay delivers a key's bytes together.
    ("escape-time", "10"),
    # The window follows the page that typed last (tmux 3.1's default, said here: a
    # watcher never types, and attaches with ignore-size besides).
    ("window-size", "latest"),
    # 256 colours and italics inside (bookworm's tmux 3.3 says "screen"); Debian's
    # ncurses-base ships its terminfo on every suite the machines use.
    ("default-terminal", "tmux-256color"),
)
# A seat made from a box older than tmux in the recipe: say so, in the terminal.
NO_TMUX = "labgen: this machine has no tmux (it was made from an older box)"
NO_TMUX_FIX = "`labgen box build` and a new `labgen workshop up` give seats that have it"

log = logging.getLogger(__name__)


class BadFrame(Exception):
    """A frame from the page that is none of the two kinds it sends."""


class BadRequest(Exception):
    """A terminal socket's query string that names no shell a page may open."""


@dataclass(frozen=True)
class Attach:
    """Which of a seat's shells a page shows, at what size, and whether it only watches.

    >>> Attach("pf-01", 2).session
    'labgen-2'
    """

    seat: str
    number: int = 1  # the page's Terminal 1, 2...
    cols: int = DEFAULT_SIZE[0]
    rows: int = DEFAULT_SIZE[1]
    watch: bool = False  # the instructor: read-only, and never sizing the window

    @property
    def session(self) -> str:
        """The tmux session the shell lives in (a name made of a number, safe as is)."""
        return f"labgen-{self.number}"


def requested(seat: str, query: Mapping[str, str], watch: bool) -> Attach:
    """The shell a terminal socket's query string asks for (n, cols, rows: whole
    numbers, each optional); BadRequest naming the parameter and what it may be.

    >>> requested("pf-01", {"n": "2", "cols": "120", "rows": "40"}, watch=False)
    Attach(seat='pf-01', number=2, cols=120, rows=40, watch=False)
    >>> requested("pf-01", {}, watch=True).number
    1
    >>> requested("pf-01", {"n": "9"}, watch=False)
    Traceback (most recent call last):
    ...
    labgen.workshop.terminal.BadRequest: the terminal's n=9 is not a whole number from 1 to 4
    """
    number = _whole(query, "n", 1, (1, TERMINALS))
    cols = _whole(query, "cols", DEFAULT_SIZE[0], COLS)
    rows = _whole(query, "rows", DEFAULT_SIZE[1], ROWS)
    return Attach(seat, number, cols, rows, watch)


def _whole(query: Mapping[str, str], name: str, default: int, bounds: tuple[int, int]) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    low, high = bounds
    # isdecimal, not int(): int() takes " 7", "+7", "٧" and "1_0"; and a few digits
    # only: int() refuses over 4300 (a ValueError that would escape as a traceback)
    if not (raw.isascii() and raw.isdecimal() and len(raw) <= 6 and low <= int(raw) <= high):
        shown = repr(raw[:20]) if not raw.isdecimal() else raw[:20]
        raise BadRequest(
            f"the terminal's {name}={shown} is not a whole number from {low} to {high}"
        )
    return int(raw)


def command(attach: Attach) -> str:
    """The command the page's SSH pty runs: make the shell's session if it is not
    there yet (at the page's size), then attach to it; a watcher attaches read-only
    and ignoring its size. A machine without tmux gives a plain login shell that says
    so (an attendee) or the reason there is nothing to watch (the instructor).

    >>> for part in command(Attach("pf-01", 2, 120, 40)).split("; "):
    ...     print(part.replace(" ';' set -g ", " + "))  # doctest: +ELLIPSIS
    if command -v tmux >/dev/null
    then tmux -u -f /dev/null -L labgen set -g status off + prefix None + ... ';' new-session \
-d -s labgen-2 -x 120 -y 40 2>/dev/null
    exec tmux -u -f /dev/null -L labgen attach-session -t =labgen-2
    fi
    echo 'labgen: this machine has no tmux ...'
    exec "$SHELL" -l
    >>> command(Attach("pf-01", watch=True)).split("; ")[2]
    'exec tmux -u -f /dev/null -L labgen attach-session -r -f ignore-size -t =labgen-1'
    """
    # -u: UTF-8 whatever the machine's locale (it has none: POSIX), -f /dev/null: these
    # options only, whatever a lab puts in ~/.tmux.conf
    tmux = shlex.join(["tmux", "-u", "-f", "/dev/null", "-L", SOCKET])
    settings = " ';' ".join(shlex.join(["set", "-g", name, value]) for name, value in OPTIONS)
    session = shlex.quote(attach.session)
    # "duplicate session" when it is there already: that is what we hoped, hence 2>/dev/null
    create = (
        f"{tmux} {settings} ';' new-session -d -s {session}"
        f" -x {attach.cols} -y {attach.rows} 2>/dev/null"
    )
    flags = "-r -f ignore-size " if attach.watch else ""
    join = f"exec {tmux} attach-session {flags}-t {shlex.quote('=' + attach.session)}"
    if attach.watch:  # nothing to watch: keep the socket open rather than reconnect
        said = f"{NO_TMUX}: nothing to watch. {NO_TMUX_FIX}."
        fallback = f"echo {shlex.quote(said)}; exec sleep infinity"
    else:  # the shell of before, which ends with the server
        said = f"{NO_TMUX}: this shell ends with the server. {NO_TMUX_FIX}."
        fallback = f'echo {shlex.quote(said)}; exec "$SHELL" -l'
    return f"if command -v tmux >/dev/null; then {create}; {join}; fi; {fallback}"


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
    """One page's view of a seat's shell: a tmux client on an SSH pty of its own.

    Closing it (the page left, the server stops) detaches that client only: the shell
    stays in its session on the machine.
    """

    def __init__(self, attach: Attach, ssh_config: Path, on_enter: Callable[[str], None]):
        self.attach = attach
        self.seat = attach.seat
        self._on_enter = on_enter  # told when the attendee ends a line (a command ran)
        self._stack = contextlib.ExitStack()
        client: paramiko.SSHClient = self._stack.enter_context(ssh.connect(ssh_config))
        try:
            transport = client.get_transport()
            assert transport is not None  # connect() returned: it is connected
            self._channel = transport.open_session()
            self._channel.get_pty(term=TERM, width=attach.cols, height=attach.rows)
            self._channel.exec_command(command(attach))
        except BaseException:
            self._stack.close()
            raise
        self._early = bytearray()  # until the page joins: tmux's drawing of the screen
        self._lock = threading.Lock()
        self._listener: tuple[asyncio.AbstractEventLoop, asyncio.Queue[bytes | None]] | None
        self._listener = None
        self.closed = False
        self._reader = threading.Thread(target=self._read, name=f"pty-{self.seat}", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        """Relay what tmux writes to the page (kept until the page joins)."""
        try:
            while True:
                data = self._channel.recv(32768)
                if not data:
                    break
                with self._lock:
                    listener = self._listener
                    if listener is None:
                        self._early += data
                        del self._early[:-EARLY]
                if listener is not None:
                    _send(*listener, data)
        except (OSError, EOFError, paramiko.SSHException):
            pass
        finally:
            self.close()

    def join(self) -> tuple[asyncio.Queue[bytes | None], bytes]:
        """A queue of the client's output for the page (None at its end), and what it
        wrote before (the screen, as tmux draws it on attach)."""
        queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=4096)
        with self._lock:
            self._listener = (asyncio.get_running_loop(), queue)
            early, self._early = bytes(self._early), bytearray()
            if self.closed:
                _send(*self._listener, None)
        return queue, early

    def leave(self, queue: asyncio.Queue[bytes | None]) -> None:
        """The page went: its client detaches (the shell lives on in its session)."""
        with self._lock:
            if self._listener is not None and self._listener[1] is queue:
                self._listener = None
        self.close()

    def write(self, data: str) -> None:
        if self.closed or self.attach.watch:
            return
        self._channel.sendall(data.encode())
        if "\r" in data or "\n" in data:
            self._on_enter(self.seat)

    def resize(self, cols: int, rows: int) -> None:
        if self.closed or self.attach.watch:
            return
        if COLS[0] <= cols <= COLS[1] and ROWS[0] <= rows <= ROWS[1]:
            self._channel.resize_pty(width=cols, height=rows)

    def close(self) -> None:
        with self._lock:
            if self.closed:
                return
            self.closed = True
            listener = self._listener
        if listener is not None:
            _send(*listener, None)
        with contextlib.suppress(Exception):
            self._channel.close()
        self._stack.close()


def _send(loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[Any], item: Any) -> None:
    def offer() -> None:
        if queue.full():
            # The page fell behind: a hole in what it shows would stay there. Its end
            # instead: the page reconnects, and tmux draws the screen whole again.
            while not queue.empty():
                queue.get_nowait()
            queue.put_nowait(None)
        else:
            queue.put_nowait(item)

    # The page's loop may be gone already (server stopping): nothing left to tell.
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(offer)


class Terminals:
    """The pages' open tmux clients, by seat, so that a reset or the server's stop
    can detach them all."""

    def __init__(self, ssh_config: Callable[[str], Path], on_enter: Callable[[str], None]):
        self._ssh_config = ssh_config
        self._on_enter = on_enter
        self._open: dict[str, list[Terminal]] = {}
        self._lock = threading.Lock()

    def get(self, attach: Attach) -> Terminal:
        """A new client on the shell `attach` names, made first if need be (blocks: an
        SSH connection); a MachineError when the seat's machine does not answer."""
        term = Terminal(attach, self._ssh_config(attach.seat), self._on_enter)
        with self._lock:
            kept = [t for t in self._open.get(attach.seat, []) if not t.closed]
            self._open[attach.seat] = [*kept, term]
        return term

    def close(self, seat: str) -> None:
        """Detach every page of the seat (its machine is being replaced)."""
        with self._lock:
            terms = self._open.pop(seat, [])
        for term in terms:
            term.close()

    def close_all(self) -> None:
        for seat in list(self._open):
            self.close(seat)


async def relay(websocket: WebSocket, terminals: Terminals, seat: str, read_only: bool) -> None:
    """Relay one of the seat's shells over `websocket` until either end closes; a
    `read_only` page (the instructor's) sees the shell but its keys and size are dropped."""
    await websocket.accept()
    try:
        attach = requested(seat, websocket.query_params, watch=read_only)
    except BadRequest as exc:
        log.warning("%s: refused a terminal socket: %s", seat, exc)
        await _refuse(websocket, str(exc), code=1008)
        return
    try:
        term = await run_in_threadpool(terminals.get, attach)
    except (LabgenError, OSError) as exc:  # OSError: the seat's instance dir is gone
        await _refuse(
            websocket,
            exc.message if isinstance(exc, LabgenError) else "the seat has no machine now",
        )
        return
    queue, early = term.join()
    sender = asyncio.create_task(_pump(websocket, queue, early))
    try:
        await _take_keys(websocket, term, read_only)
    except BadFrame as exc:
        log.warning("%s: closed a terminal socket that sent %s", seat, exc)
        with contextlib.suppress(Exception):  # the page may be gone already
            await websocket.close(code=1003 if str(exc) == "a binary frame" else 1007)
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        await run_in_threadpool(term.leave, queue)
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await sender


async def _refuse(websocket: WebSocket, message: str, code: int = 1011) -> None:
    """Say why on the page's terminal, then close."""
    await websocket.send_text(json.dumps({"error": message}))
    await websocket.close(code=code)


async def _pump(websocket: WebSocket, queue: asyncio.Queue[bytes | None], early: bytes) -> None:
    """The client's output to the page, what came before the page joined first; a
    normal close at its end."""
    if early:
        await websocket.send_bytes(early)
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
