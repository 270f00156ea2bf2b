"""The room while it is served: the grid, the background checker, the seats' shells, and
what pages ask of a seat (check a step, run it, reset the machine).

Everything here blocks (SSH, a child pytest, Vagrant); app.py calls it from worker
threads. One action at a time per seat: two presses of Check on one machine would
only race each other. A seat whose machine does not answer (watch.py) is never
checked: Check and "Run it for me" say the machine is down (a MachineError, which the
page shows), and nothing is recorded against the attendee.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from labgen.checks.runner import run_checks
from labgen.core.context import Context
from labgen.core.errors import LabgenError, MachineError, UsageError
from labgen.core.lab import Lab, load_lab_dir
from labgen.core.results import CheckRun
from labgen.machine import registry, ssh
from labgen.machine.instance import Instance
from labgen.machine.steps import Session, record_done, run_step
from labgen.workshop import seats as seat_ops
from labgen.workshop import watch as watching
from labgen.workshop.checker import Checker
from labgen.workshop.db import RoomDB, lab_steps
from labgen.workshop.grid import SEAT_FAILED, SEAT_READY, SEAT_RESETTING, Grid
from labgen.workshop.room import Room
from labgen.workshop.terminal import Terminals

log = logging.getLogger(__name__)


class Busy(Exception):
    """The seat is already doing something (a check, a run, a reset)."""


@dataclass(frozen=True)
class RunResult:
    step: str
    exit_code: int
    output: str
    seconds: float


def ssh_config_of(seat: str) -> Path:
    return Instance(seat).ssh_config


class RoomService:
    """One workshop being served."""

    def __init__(
        self,
        room: Room,
        ctx: Context,
        *,
        workers: int | None = None,
        min_period: float = 10.0,
        store: RoomDB | None = None,
    ):
        """`store`: the room's database; the grid is rebuilt from it and writes to it
        (without one, as in tests of the pages, the room lives in memory only).
        `workers`: background checks at once; None derives it from the host's cores
        and the CPU a check measures (checker.py)."""
        self.room = room
        self.ctx = ctx
        self.store = store
        self.lab: Lab = load_lab_dir(Path(room.lab_path))
        steps = lab_steps(self.lab)
        if store is not None:
            store.describe(
                workshop=room.name,
                lab=room.lab,
                created=room.created,
                steps=steps,
                seats=room.seats,
            )
        checked = {s.id for s in steps if s.checked}
        self.grid = Grid(room.seats, [s.id for s in steps], checked, store)
        self.watch = watching.Watch(self.grid, hosts=room.seat_hosts)
        self.checker = Checker(
            self.grid,
            self.lab,
            run_checks_of,
            workers=workers,
            min_period=min_period,
            answers=lambda seat: self.watch.probe_now(seat) is None,
        )
        self.terminals = Terminals(ssh_config_of, self._typed)
        self._locks = {seat: threading.Lock() for seat in room.seats}

    def _typed(self, seat: str) -> None:
        """A key that ends a line in a seat's terminal: a command ran, so the seat is
        checked soon, and it is the attendee's last activity on the grid."""
        self.checker.poke(seat)
        self.grid.touch(seat)

    def start(self) -> None:
        self.watch.start()
        self.checker.start()

    def stop(self) -> None:
        self.checker.stop()
        self.watch.stop()
        self.terminals.close_all()

    # --- what a seat's page asks -------------------------------------------------------

    def check(self, seat: str, step_id: str) -> tuple[CheckRun, str]:
        """Run the step's own checks on the seat: the verdict and the grid cell's state."""
        step = self.lab.step(step_id)
        with self._exclusive(seat):
            self._refuse_if_down(seat)
            instance, state, lab = registry.running(seat)
            verdict = run_checks_of(lab, instance, step.id)
            if not verdict.ok:
                self._refuse_if_down(seat)  # it died during the checks: not their fault
            cell = self.grid.record(seat, step.id, verdict, attempted=True)
            if verdict.ok and verdict.results:
                # The guide's rule: a step whose checks pass is recorded as done.
                with ssh.connect(instance.ssh_config) as client:
                    record_done(Session(instance, state, lab, client), step)
        return verdict, cell

    def run(self, seat: str, step_id: str) -> RunResult:
        """ "Run it for me": the step's robot form, through the one step runner."""
        if not self.grid.run_for_me:
            raise PermissionError('the instructor turned "Run it for me" off')
        step = self.lab.step(step_id)
        with self._exclusive(seat):
            self._refuse_if_down(seat)
            instance, state, lab = registry.running(seat)
            with ssh.connect(instance.ssh_config) as client:
                outcome = run_step(Session(instance, state, lab, client), step, capture=True)
        self.grid.record_run(seat, step.id, outcome.exit_code, outcome.seconds, outcome.output)
        self.checker.poke(seat)
        return RunResult(step.id, outcome.exit_code, outcome.output, outcome.seconds)

    # --- what the instructor asks ------------------------------------------------------

    def reset(self, seat: str) -> None:
        """Give the seat a fresh machine, in the background: a spare from the pool when
        there is one (ready in about two seconds; the old machine is destroyed behind it),
        then the pool refilled to the workshop's --spares."""
        if seat not in self._locks:
            raise UsageError(f"no seat {seat!r}")
        lock = self._locks[seat]
        if not lock.acquire(blocking=False):
            raise Busy(seat)
        self.watch.forget(seat)  # before the row changes: no probe of the old machine counts
        self.grid.set_machine(seat, SEAT_RESETTING)
        self.terminals.close(seat)

        def ready_at_once(event: seat_ops.SeatEvent) -> None:
            if event.state == seat_ops.READY:  # before the old machine is gone
                self.grid.set_machine(seat, SEAT_READY)

        def work() -> None:
            try:
                final = seat_ops.reset_seat(
                    self.ctx, self.room.lab_path, seat, ready_at_once, self.room.kernel_trace
                )
                self.grid.set_machine(seat, SEAT_READY if final.state == "ready" else SEAT_FAILED)
            finally:
                lock.release()
            try:
                seat_ops.keep_spares(self.ctx, self.room.lab_path, self.room.spares)
            except LabgenError as exc:  # the seat is fine; the next reset waits for Vagrant
                log.warning("refilling the spares after resetting %s failed: %s", seat, exc)

        threading.Thread(target=work, name=f"reset-{seat}", daemon=True).start()

    def _refuse_if_down(self, seat: str) -> None:
        """A MachineError saying the seat's machine is down, when a probe finds it so
        (one SSH round trip when it answers)."""
        why = self.watch.probe_now(seat)
        if why is not None and watching.is_lost(why):
            raise MachineError(
                f"{seat} is {why}: nothing was checked and nothing counts against you;"
                " the instructor sees it on the grid."
            )
        if why is not None:
            raise MachineError(
                f"{seat}'s machine is down: it does not answer ({why}). Nothing was checked"
                " and nothing counts against you; ask the instructor to reset the seat"
                " (Reset on the grid gives it a fresh machine)."
            )

    def _exclusive(self, seat: str) -> _Held:
        lock = self._locks[seat]
        if not lock.acquire(blocking=False):
            raise Busy(seat)
        return _Held(lock)


class _Held:
    """A lock already taken, released on leaving the `with`."""

    def __init__(self, lock: threading.Lock):
        self.lock = lock

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        self.lock.release()


def engine_of(seat: str, lab: Lab) -> str:
    """The Docker engine inside the seat's machine (the lab's default if unrecorded)."""
    instance = Instance(seat)
    recorded = instance.load().engine if instance.exists() else ""
    return recorded or lab.spec.engine


def run_checks_of(lab: Lab, instance: Instance, step: str) -> CheckRun:
    """The step's own checks on the machine, for the engine it has."""
    engine = engine_of(instance.name, lab)
    return run_checks(lab, instance.ssh_config, target=step, only=True, engine=engine)
