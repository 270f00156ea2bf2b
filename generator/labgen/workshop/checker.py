"""Background checks: each seat's next undone step, checked on a bounded pool.

Every check run is a child pytest (about a second of CPU), so the checker never runs
more than `workers` at once, and spreads the idle re-checks so that they take about
`budget` of one core whatever the number of seats: the period between two checks of
one seat is seats x (measured CPU per check) / budget, and never less than `min_period`.
What an attendee does makes their seat due sooner: a command typed in the terminal
(Enter) or a step run from the page pokes the seat, and it is checked a moment later,
then twice more a little after (commands take a while), whatever the idle period.
`run` is how a step's checks run on a seat (service.run_checks_of).
"""

from __future__ import annotations

import functools
import logging
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
        workers: int = 1,
        budget: float = 0.25,
        min_period: float = 10.0,
    ):
        self.grid, self.lab, self._run = grid, lab, run
        self.workers, self.budget, self.min_period = workers, budget, min_period
        self._seats = {s: _Seat(due=time.monotonic() + i * 0.5) for i, s in enumerate(grid.seats)}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._cpu_per_check = FIRST_CPU_GUESS
        self.checks_run = 0
        self._thread = threading.Thread(target=self._loop, name="checker", daemon=True)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="check")

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
                for _, name in due[: max(0, self.workers - busy)]:
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
                if verdict is not None:
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
        """Run the step's own checks; fold the CPU the child pytest used into the mean."""
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        try:
            verdict = self._run(self.lab, Instance(seat), step)
        except LabgenError:
            return None  # the machine does not answer (being reset?): nothing to say
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        used = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        with self._lock:
            self.checks_run += 1
            # With one worker the difference is this run's alone; with more it is shared
            # out, which the moving mean smooths.
            if used > 0:
                self._cpu_per_check = 0.8 * self._cpu_per_check + 0.2 * used
        return verdict
