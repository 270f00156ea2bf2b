"""Whether each seat's machine answers, while the room is served: the grid's row says
"machine down" for a machine that stopped answering, and "ready" again once it answers.

The `Watch` asks every seat's machine every PROBE_EVERY seconds whether it answers: one
command line written to a shell it keeps open on the seat (its inner Docker's /_ping,
through curl on the Docker socket: about 10 ms of CPU in the machine and under 1 ms on
the host, no new connection, channel or key exchange; 0.3% of a core per seat).
MISSES_FOR_DOWN probes in a row that get no answer within PROBE_TIMEOUT (the second
RETRY_AFTER the first) turn the grid's row to MACHINE_DOWN: a machine that stops
answering shows within PROBE_EVERY + 2 x PROBE_TIMEOUT + RETRY_AFTER = 11 s at worst, a
killed one (its port refuses at once) within about PROBE_EVERY + RETRY_AFTER. A machine
that answers while its Docker does not is probed again at the usual PROBE_EVERY, so that
a restart of dockerd (a few seconds) is not a machine down. The first answer after that
turns the row back to ready. Seats being reset, or whose reset failed, are the reset's,
not the watch's.

A seat on another host (`workshop up --hosts`) has its host probed too, once per host
(not per seat) every HOST_EVERY seconds: an `ssh HOST docker version` through labgen's
ssh settings. A host that fails HOST_MISSES_FOR_LOST of them in a row turns each of its
seats' rows to "lost (host NAME does not answer)", distinct from a machine down: its
seats are the host's problem, not theirs (shown within HOST_EVERY x HOST_MISSES_FOR_LOST
+ HOST_TIMEOUT x 2 = 50 s at worst). When the host answers again its seats show down
until their own probes find them.

A seat shown down or lost is never checked (checker.py asks `probe_now` before it records a
check that did not pass; service.py before an attendee's Check or "Run it for me"): a
dead machine is the instructor's to reset, not the attendee's failure. The probes cost
the host a thread per seat (asleep between probes) and one SSH connection per seat.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import paramiko

from labgen.core.errors import LabgenError
from labgen.machine import ssh
from labgen.machine.instance import Instance
from labgen.workshop.grid import SEAT_READY, Grid

# The grid's row while the watch finds the seat's machine silent (grid.py's states are
# ready, resetting, failed; instructor.js shows any state but ready as its text).
MACHINE_DOWN = "machine down"
PROBE_EVERY = 4.0  # seconds between two probes of a seat
PROBE_TIMEOUT = 3.0  # a probe with no answer by then is a miss
MISSES_FOR_DOWN = 2  # one miss may be a busy moment; two in a row are a machine down
RETRY_AFTER = 1.0  # seconds to the next probe after a miss
HOST_EVERY = 10.0  # seconds between two probes of a remote host
HOST_TIMEOUT = 12.0  # an ssh + docker version over it, with no answer by then, is a miss
HOST_MISSES_FOR_LOST = 2
HOST_PROBE = "docker version --format '{{.Server.Version}}'"
# The inner Docker's ping, as the lab user (in the docker group): "OK" from a live daemon.
PROBE = "curl -sS --max-time 2 --unix-socket /var/run/docker.sock http://docker/_ping"

# No handler of its own, as checker.py: `workshop serve` gets WARNING lines on stderr.
log = logging.getLogger("labgen.workshop.watch")


@dataclass
class _Line:
    """A seat's probe connection (a shell kept open on it) and what the watch counts."""

    stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)
    shell: paramiko.Channel | None = None
    stamp: tuple[int, int] = (0, 0)  # the ssh-config's mtime and size it was opened with
    asked: int = 0  # the number of the last probe written to the shell
    unread: bytes = b""  # what the shell said after the last answer read
    misses: int = 0
    shell_answered: bool = False  # the last probe's shell answered (whatever Docker said)
    generation: int = 0  # bumped by forget(): a probe begun before it counts for nothing
    opened_for: int = -1  # the generation the shell was opened in
    busy: threading.Lock = field(default_factory=threading.Lock)  # one probe at a time

    def close(self) -> None:
        self.stack.close()
        self.shell, self.unread, self.shell_answered = None, b"", False


def probe_machine(line: _Line, seat: str) -> str | None:
    """One probe of the seat's machine over `line` (opened or reopened as needed): None
    when it and its Docker answer, else why not, in a few words."""
    config = Instance(seat).ssh_config
    try:
        stat = config.stat()
    except OSError:
        return "it has no SSH configuration (no machine)"
    stamp = (stat.st_mtime_ns, stat.st_size)
    stale = line.opened_for != line.generation or stamp != line.stamp
    if line.shell is None or line.shell.closed or stale:
        line.close()
        try:
            client = line.stack.enter_context(ssh.connect(config, timeout=PROBE_TIMEOUT))
            transport = client.get_transport()
            assert transport is not None
            line.shell = transport.open_session(timeout=PROBE_TIMEOUT)
            line.shell.settimeout(PROBE_TIMEOUT)
            line.shell.exec_command("sh")
            line.opened_for = line.generation
        except LabgenError as exc:
            line.close()
            return exc.message
        except (OSError, EOFError, paramiko.SSHException) as exc:
            line.close()
            return _no_answer(exc)
        line.stamp = stamp
    return _ping(line)


def _ping(line: _Line) -> str | None:
    """PROBE, written to the line's shell, and its answer read within PROBE_TIMEOUT.

    Each probe is numbered: the late answer of a probe that timed out (a machine that
    stalled, then woke) is skipped, never taken for this one's. The channel stays
    open across a miss: a stalled machine may answer the next probe on it.
    """
    assert line.shell is not None
    line.shell_answered = False
    line.asked += 1
    marker = f"@@{line.asked} ".encode()
    deadline = time.monotonic() + PROBE_TIMEOUT
    try:
        line.shell.sendall(f'r=$({PROBE}); echo "@@{line.asked} $? $r"\n'.encode())
        while marker not in line.unread:
            if time.monotonic() >= deadline:
                return f"SSH gave no answer within {PROBE_TIMEOUT:g} s"
            chunk = line.shell.recv(4096)
            if not chunk:
                line.close()
                return "its SSH connection closed"
            line.unread = line.unread[-4096:] + chunk
    except (OSError, EOFError, paramiko.SSHException) as exc:
        return _no_answer(exc)
    answer, _, rest = line.unread[line.unread.index(marker) + len(marker) :].partition(b"\n")
    line.unread, line.shell_answered = rest, True
    code, _, said = answer.decode(errors="replace").partition(" ")
    if code != "0" or said.strip() != "OK":
        return f"its Docker does not answer (curl exit {code})"
    return None


def lost(host: str) -> str:
    """The grid's row of a seat whose host does not answer.

    >>> lost("sim-b")
    'lost (host sim-b does not answer)'
    """
    return f"lost (host {host} does not answer)"


def is_lost(machine: str) -> bool:
    """Whether a row's machine state is lost with its host."""
    return machine.startswith("lost (host ")


def probe_host(name: str) -> str | None:
    """One probe of registered host `name`: None when its sshd and dockerd answer."""
    import subprocess

    from labgen.hosts import registry

    try:
        host = registry.get(name)
        done = subprocess.run(
            [*host.ssh_command(), HOST_PROBE],
            capture_output=True,
            text=True,
            timeout=HOST_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"no answer within {HOST_TIMEOUT:g} s"
    except (OSError, LabgenError) as exc:
        return str(exc)
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        return lines[-1] if lines else f"exit status {done.returncode}"
    return None


def _no_answer(exc: BaseException) -> str:
    # socket.timeout is an OSError: the machine stopped answering mid-probe.
    if isinstance(exc, TimeoutError):
        return f"SSH gave no answer within {PROBE_TIMEOUT:g} s"
    detail = f": {exc}" if str(exc) else ""
    return f"SSH gave no answer ({type(exc).__name__}{detail})"


class Watch:
    """A thread per seat probing its machine; the grid's row follows (ready <-> down).

    `probe(line, seat)` is probe_machine but for tests of the counting rule. `stop()`
    ends the threads and closes the connections.
    """

    def __init__(
        self,
        grid: Grid,
        probe: Callable[[_Line, str], str | None] = probe_machine,
        every: float = PROBE_EVERY,
        hosts: dict[str, str] | None = None,
        host_probe: Callable[[str], str | None] = probe_host,
        host_every: float = HOST_EVERY,
    ):
        self.grid, self._probe, self.every = grid, probe, every
        self._lines = {seat: _Line() for seat in grid.seats}
        # seat -> its remote host; seats of this machine are not in it.
        self._host_of = {s: h for s, h in (hosts or {}).items() if h and h != "local"}
        self._host_probe, self.host_every = host_probe, host_every
        self._host_misses: dict[str, int] = {}
        self._lost_hosts: set[str] = set()
        self._why: dict[str, str] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._loop, args=(seat, i), name=f"watch-{seat}", daemon=True)
            for i, seat in enumerate(grid.seats)
        ]
        self._threads += [
            threading.Thread(target=self._host_loop, args=(h,), name=f"watch-{h}", daemon=True)
            for h in sorted(set(self._host_of.values()))
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            if thread.is_alive():
                thread.join(timeout=PROBE_TIMEOUT + 2)
        for line in self._lines.values():
            with line.busy:
                line.close()

    def why_down(self, seat: str) -> str:
        """What the last probes of a seat shown down found (empty when it is not)."""
        with self._lock:
            return self._why.get(seat, "")

    def forget(self, seat: str) -> None:
        """The seat is getting a new machine: its next probe opens a new connection, its
        misses are forgotten, and no probe begun before now changes its row (a reset
        owns it meanwhile). Never waits for a probe: the instructor's request is on the
        server's event loop."""
        with self._lock:
            line = self._lines[seat]
            line.generation += 1
            line.misses = 0
            self._why.pop(seat, None)

    def probe_now(self, seat: str) -> str | None:
        """Probe the seat at once (an attendee's Check is waiting): None when its machine
        answers; else why not, and the row is down, as after MISSES_FOR_DOWN misses
        (the second try on a connection opened afresh)."""
        gone = self.host_lost(seat)
        if gone:
            return gone  # its host does not answer: no probe through it to wait for
        why = None
        # Already down: one try says whether it came back (a dead one costs a timeout).
        machine = self._machine(seat)
        tries = 1 if machine == MACHINE_DOWN or is_lost(machine) else MISSES_FOR_DOWN
        for attempt in range(tries):
            why = self.probe_once(seat, fresh=attempt > 0)  # the second on a new connection
            if why is None:
                return None
        return why

    def _loop(self, seat: str, index: int) -> None:
        # Staggered, so that the seats' probes do not all fall on the same moment.
        if self._stop.wait(self.every * index / max(1, len(self._lines))):
            return
        while not self._stop.is_set():
            why = None
            try:
                why = self.probe_once(seat)
            except Exception:  # a bug here must not end the seat's watch silently
                log.exception("watching seat %s failed", seat)
            # A silent machine is probed again soon; a machine whose shell answers but
            # whose Docker does not may be restarting it (a few seconds): the usual wait.
            soon = why is not None and not self._lines[seat].shell_answered
            self._stop.wait(min(self.every, RETRY_AFTER) if soon else self.every)

    def probe_once(self, seat: str, fresh: bool = False) -> str | None:
        """One probe of `seat` (`fresh`: on a new connection) and its effect on the row;
        None when it answered."""
        with self._lock:
            line = self._lines[seat]
            generation = line.generation
        machine = self._machine(seat)
        if machine not in (SEAT_READY, MACHINE_DOWN) and not is_lost(machine):
            return None  # being reset, or its reset failed: the reset's business
        with line.busy:
            if fresh:
                line.close()
            why = self._probe(line, seat)
        with self._lock:
            if line.generation != generation:
                return why  # forgotten meanwhile: a reset owns the row now
            self._count(seat, line, why)
        return why

    def _count(self, seat: str, line: _Line, why: str | None) -> None:
        """Under the lock: the row after a probe's answer (`why` None) or miss."""
        machine = self._machine(seat)
        host = self._host_of.get(seat, "")
        if why is None:
            line.misses = 0
            if host in self._lost_hosts:
                return  # through a host that does not answer: not to be believed yet
            if machine == MACHINE_DOWN or is_lost(machine):
                self._why.pop(seat, None)
                log.warning("seat %s answers again", seat)
                self.grid.set_machine(seat, SEAT_READY)
            return
        line.misses += 1
        self._why[seat] = why
        if line.misses >= MISSES_FOR_DOWN and machine == SEAT_READY:
            log.warning("seat %s is down: %s", seat, why)
            self.grid.set_machine(seat, MACHINE_DOWN)

    def host_lost(self, seat: str) -> str:
        """Why the seat's host is lost ("" when it answers, or the seat is local)."""
        host = self._host_of.get(seat, "")
        with self._lock:
            return lost(host) if host in self._lost_hosts else ""

    def _host_loop(self, host: str) -> None:
        while not self._stop.is_set():
            try:
                why = self._host_probe(host)
            except Exception:  # a bug here must not end the host's watch silently
                log.exception("watching host %s failed", host)
                why = None
            self._count_host(host, why)
            self._stop.wait(min(self.host_every, RETRY_AFTER * 2) if why else self.host_every)

    def _count_host(self, host: str, why: str | None) -> None:
        """The host's seats' rows after a probe of the host."""
        seats = [s for s, h in self._host_of.items() if h == host]
        with self._lock:
            if why is None:
                self._host_misses[host] = 0
                if host not in self._lost_hosts:
                    return
                self._lost_hosts.discard(host)
                log.warning("host %s answers again", host)
                # Its seats' own probes say when each is back.
                for seat in seats:
                    if is_lost(self._machine(seat)):
                        self.grid.set_machine(seat, MACHINE_DOWN)
                return
            self._host_misses[host] = self._host_misses.get(host, 0) + 1
            if self._host_misses[host] < HOST_MISSES_FOR_LOST or host in self._lost_hosts:
                return
            self._lost_hosts.add(host)
            log.warning("host %s does not answer: %s", host, why)
            for seat in seats:
                self._why[seat] = f"host {host} does not answer: {why}"
                if self._machine(seat) in (SEAT_READY, MACHINE_DOWN):
                    self.grid.set_machine(seat, lost(host))

    def _machine(self, seat: str) -> str:
        return str(self.grid.snapshot(seat)["rows"][0]["machine"])
