"""Background checks: each seat's next undone step, checked on a bounded pool.

Every check run is a child pytest (about a second of CPU), so the checker runs at most
`limit` at once. Unless `workers` fixes it, the limit follows the host and the checks
it measured: a check keeps busy = (CPU per check) / (wall time per check) of a core,
and the checks may take CHECK_SHARE of the host's cores, so

    limit = max(1, min(cores, CHECK_SHARE x cores / busy, rounded half up))

(two cores, 1.2 s of CPU in 1.5 s of wall: 0.75 x 2 / 0.8 = 1.9, so 2). The rest is the
server's and the machines' own: terminals' echo, pages, the checks' commands inside
the machines. The CPU per check is what the server's children used between two checks
ending (RUSAGE_CHILDREN is the process's: with checks in parallel a check's own window
would count its neighbours too; a reset's Vagrant is a child too, and the mean smooths
it), averaged. Typing seats are all due at once, so a room of up to 15 x limit / (wall
per check) typing seats has each rechecked within 15 s (bench/workshop.py measures it).

Idle re-checks are spread so that they take about `budget` of one core whatever the
number of seats: the period between two checks of one seat is seats x (measured CPU per
check) / budget, and never less than `min_period`.
What an attendee does makes their seat due sooner: a command typed in the terminal
(Enter) or a step run from the page pokes the seat, and it is checked a moment later,
then twice more a little after (commands take a while), whatever the idle period;
seats due at once go in the order they fell due, so typing seats take turns.
`run` is how a step's checks run on a seat (service.run_checks_of); `answers(seat)`,
asked before a check that did not pass is recorded, says whether the seat's machine
still answers: a machine that died under a check has nothing to say of the attendee.
"""

from __future__ import annotations

import functools
import logging
import os
import resource
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from labgen.core.errors import LabgenError
from labgen.core.lab import Lab
from labgen.core.results import CheckRun
from labgen.machine.instance import Instance
from labgen.workshop.grid import SEAT_READY, Grid

POKE_DELAY = 1.5  # after Enter in a terminal: most commands of a lab finish by then
FOLLOW_UP = 3.0  # and twice more at this interval, for the ones that take longer
FOLLOW_UPS = 2
FIRST_CPU_GUESS = 1.2  # seconds of CPU per check run until one is measured
FIRST_WALL_GUESS = 1.5  # and of wall time
CHECK_SHARE = 0.75  # of the host's cores, the most background checks may keep busy

# No handler of its own: without one Python prints warnings and worse on stderr, where
# `labgen workshop serve` writes; a server that configures logging gets them its way.
log = logging.getLogger("labgen.workshop.checker")


@dataclass
class _Seat:
    due: float = 0.0  # monotonic time it is next due
    busy: bool = False
    follow_ups: int = 0
    turn: int = 0  # alternates the frontier step with the steps after it


class Checker:
    """A thread that keeps the grid current; `stop()` ends it and waits for its pool."""

    def __init__(
        self,
        grid: Grid,
        lab: Lab,
        run: Callable[[Lab, Instance, str], CheckRun],
        *,
        workers: int | None = None,
        budget: float = 0.25,
        min_period: float = 10.0,
        answers: Callable[[str], bool] = lambda seat: True,
        cores: int | None = None,
    ):
        """`workers`: checks at once, fixed; None derives the limit (the module's rule)
        from `cores` (default: os.cpu_count())."""
        self.grid, self.lab, self._run, self._answers = grid, lab, run, answers
        self.workers, self.budget, self.min_period = workers, budget, min_period
        self.cores = max(1, cores or os.cpu_count() or 1)
        self._seats = {s: _Seat(due=time.monotonic() + i * 0.5) for i, s in enumerate(grid.seats)}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._cpu_per_check = FIRST_CPU_GUESS
        self._wall_per_check = FIRST_WALL_GUESS
        self._children_cpu = _children_cpu()
        self.checks_run = 0
        self._thread = threading.Thread(target=self._loop, name="checker", daemon=True)
        self._pool = ThreadPoolExecutor(
            max_workers=workers or self.cores, thread_name_prefix="check"
        )

    @property
    def limit(self) -> int:
        """How many checks may run at once now (`workers`, or the module's rule).

        >>> from labgen.workshop.grid import Grid
        >>> checker = Checker(Grid([], [], set()), None, None, cores=2)
        >>> checker._cpu_per_check, checker._wall_per_check = 1.2, 1.5
        >>> checker.limit
        2
        >>> checker._wall_per_check = 1.2  # checks all CPU: 0.75 x 2 cores, rounded
        >>> checker.limit
        2
        >>> Checker(Grid([], [], set()), None, None, cores=1).limit
        1
        """
        if self.workers is not None:
            return self.workers
        busy = max(0.05, self._cpu_per_check / max(0.05, self._wall_per_check))
        return max(1, min(self.cores, int(CHECK_SHARE * self.cores / busy + 0.5)))

    @property
    def period(self) -> float:
        """Seconds between two idle checks of one seat, from the CPU a check measured."""
        spread = len(self._seats) * self._cpu_per_check / self.budget
        return max(self.min_period, spread)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self._pool.shutdown(wait=True, cancel_futures=True)

    def poke(self, seat: str) -> None:
        """Something happened on `seat`: check it soon, and twice more a little later."""
        with self._lock:
            state = self._seats.get(seat)
            if state is not None:
                state.due = min(state.due, time.monotonic() + POKE_DELAY)
                state.follow_ups = FOLLOW_UPS

    def _loop(self) -> None:
        while not self._stop.wait(0.25):
            now = time.monotonic()
            with self._lock:
                busy = sum(s.busy for s in self._seats.values())
                due = sorted(
                    (s.due, name) for name, s in self._seats.items() if not s.busy and s.due <= now
                )
                for _, name in due[: max(0, self.limit - busy)]:
                    self._seats[name].busy = True
                    future = self._pool.submit(self._check, name)
                    future.add_done_callback(functools.partial(self._reported, name))

    def _reported(self, seat: str, future: Future[None]) -> None:
        """What escaped a check of `seat` (a bug in the checker itself), logged: a
        future nobody reads would keep it to itself."""
        if not future.cancelled() and future.exception() is not None:
            exc = future.exception()
            log.error("background check of seat %s failed", seat, exc_info=exc)

    def _check(self, seat: str) -> None:
        try:
            step = self._next_step(seat)
            if step is not None and not self._stop.is_set():
                verdict = self._guarded_run(seat, step)
                if verdict is not None and (verdict.ok or self._answers(seat)):
                    self.grid.record(seat, step, verdict, attempted=False)
        finally:
            with self._lock:
                state = self._seats[seat]
                state.busy = False
                if state.follow_ups > 0:
                    state.follow_ups -= 1
                    state.due = time.monotonic() + FOLLOW_UP
                else:
                    state.due = time.monotonic() + self.period

    def _next_step(self, seat: str) -> str | None:
        """The seat's first undone step with checks, or every other turn one after it.

        An attendee may run ahead of the checker (or past a step whose state a later
        step undoes), so the steps after the first undone one get their turns too.
        """
        if self.grid.snapshot(seat)["rows"][0]["machine"] != SEAT_READY:
            return None
        done = self.grid.done(seat)
        undone = [s.id for s in self.lab.steps if s.id in self.grid.checked and s.id not in done]
        if not undone:
            return None
        with self._lock:
            state = self._seats[seat]
            state.turn += 1
            turn = state.turn
        if turn % 2 == 1 or len(undone) == 1:
            return undone[0]
        later = undone[1:]
        return later[(turn // 2 - 1) % len(later)]

    def _guarded_run(self, seat: str, step: str) -> CheckRun | None:
        """The step's check run, or, when it raised what no check run should, that
        error logged and as a verdict with a problem: the cell shows failing with the
        message, where a lost exception would leave it at "not yet" for ever."""
        try:
            return self._measured_run(seat, step)
        except Exception as exc:
            log.exception("background check of step %s on seat %s failed", step, seat)
            problem = f"the background check could not run: {type(exc).__name__}: {exc}"
            return CheckRun(self.lab.name, step, True, [], problems=[problem])

    def _measured_run(self, seat: str, step: str) -> CheckRun | None:
        """Run the step's own checks; fold its wall time, and the CPU the server's
        children used since the previous check ended, into the means."""
        began = time.monotonic()
        try:
            verdict = self._run(self.lab, Instance(seat), step)
        except LabgenError:
            return None  # the machine does not answer (being reset?): nothing to say
        wall = time.monotonic() - began
        now = _children_cpu()
        with self._lock:
            limit = self.limit
            self.checks_run += 1
            used, self._children_cpu = now - self._children_cpu, now
            if used > 0:
                self._cpu_per_check = 0.8 * self._cpu_per_check + 0.2 * used
            self._wall_per_check = 0.8 * self._wall_per_check + 0.2 * wall
            if self.limit != limit:
                log.info("background checks at once: %d (was %d)", self.limit, limit)
        # For a server that logs at DEBUG (bench/workshop.py): each check's cost.
        log.debug("checked %s on %s: %.2f s, %.2f s of CPU since the last", step, seat, wall, used)
        return verdict

    def figures(self) -> dict[str, float]:
        """What the checker measured: CPU and wall seconds per check, the limit, the period.

        >>> from labgen.workshop.grid import Grid
        >>> Checker(Grid([], [], set()), None, None, workers=2).figures()["limit"]
        2
        """
        with self._lock:
            cpu, wall = self._cpu_per_check, self._wall_per_check
        return {
            "cpu_per_check": round(cpu, 3),
            "wall_per_check": round(wall, 3),
            "limit": self.limit,
            "idle_period": round(self.period, 1),
            "checks_run": self.checks_run,
        }


def _children_cpu() -> float:
    """User and system CPU seconds of this process's children that were waited for."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
