"""`labgen guide`: walk a lab step by step in the terminal, with what each step changed.

For each step: its explanation and documented command; labgen runs it (or the
learner runs it in `labgen ssh` and comes back to check); the output; what changed
in the kernel's network state; and the step's checks as "done / not yet". The guide
resumes after the furthest step done: the same record `status` and `check` read.
At either prompt `p` writes a picture of the machine's network as it is (labgen draw);
after a step the lab marks `trace: true` ran, `t` traces its command (labgen trace) and
`k` follows its packets through the kernel (labgen trace --kernel).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Protocol

from labgen.checks.runner import run_checks
from labgen.core.errors import LabgenError
from labgen.core.lab import Step
from labgen.core.results import CheckRun, GuideResult
from labgen.inmachine.kernel import KernelWalk
from labgen.inmachine.trace import TraceResult
from labgen.machine import registry, ssh
from labgen.machine.steps import Session, furthest_done, record_done, run_step
from labgen.network.diff import Diff
from labgen.network.wiring import Picture
from labgen.verbs import draw, trace


class Screen(Protocol):
    """What the guide shows and asks; ui.guide_screen.TerminalScreen is the terminal's.

    The verb decides what comes next and never prints: a test or another front end
    hands it a screen of its own.
    """

    def step(self, number: int, total: int, step: Step, engine: str) -> None: ...
    def ask_before(self) -> str: ...
    def ask_after(self, retry: bool, trace: bool) -> str: ...
    def already_finished(self, lab: str) -> None: ...
    def resuming(self, lab: str, number: int, total: int) -> None: ...
    def running(self) -> None: ...
    def diff(self, changes: Diff) -> None: ...
    def command_failed(self) -> None: ...
    def verdict(self, run: CheckRun) -> None: ...
    def finished(self, lab: str, total: int) -> None: ...
    def picture(self, picture: Picture) -> None: ...
    def tracing(self, machine: str, command: str, kernel: bool = False) -> None: ...
    def trace(self, result: TraceResult) -> None: ...
    def walk(self, result: KernelWalk) -> None: ...
    def error(self, exc: LabgenError) -> None: ...


BEFORE = ("", "c", "s", "b", "q")  # run, check only, skip, back, quit


def guide(machine: str, *, auto: bool, restart: bool, screen: Screen) -> GuideResult:
    """Walk the machine's lab from after the furthest step done (or from the start)."""
    instance, state, lab = registry.running(machine)
    total = len(lab.steps)
    done = furthest_done(lab, state)
    index = 0 if restart or done is None else lab.step_index(done.id) + 1
    if index == total:
        screen.already_finished(lab.name)
        return GuideResult(lab.name, total, total)
    if index and not auto:
        screen.resuming(lab.name, index + 1, total)
    with ssh.connect(instance.ssh_config) as client:
        walk = _Walk(machine, Session(instance, state, lab, client), screen, auto)
        while index < total:
            moved = walk.step(index)
            if isinstance(moved, GuideResult):
                return moved
            index = moved
    screen.finished(lab.name, total)
    return GuideResult(lab.name, total, total)


@dataclass
class _Walk:
    """One guide's walk: a step shown, run, checked, and where to go next."""

    machine: str
    session: Session
    screen: Screen
    auto: bool

    def _result(self, *, failed: str | None = None, quit: bool = False) -> GuideResult:
        """How the walk ended; `completed` counts up to the furthest step done, where
        `labgen guide` resumes (not the step on screen: quitting after a step ran
        leaves that step done)."""
        lab = self.session.lab
        done = furthest_done(lab, self.session.state)
        completed = lab.step_index(done.id) + 1 if done is not None else 0
        return GuideResult(lab.name, completed, len(lab.steps), failed_step=failed, quit=quit)

    def step(self, index: int) -> int | GuideResult:
        """Show step `index` and act on the answers: the next index, or how it ended."""
        lab, screen = self.session.lab, self.screen
        step = lab.steps[index]
        screen.step(index + 1, len(lab.steps), step, self.session.state.engine)
        picture: dict[str, Callable[[], None]] = {
            "p": partial(_picture, self.machine, self.session, screen)
        }
        choice = "" if self.auto else _ask(screen.ask_before, BEFORE, picture)
        if choice == "q":
            return self._result(quit=True)
        if choice in ("b", "s"):
            return max(0, index - 1) if choice == "b" else index + 1
        if choice == "" and not self._run(step) and self.auto:
            return self._result(failed=step.id)
        verdict = _checks(self.session, step, screen)
        failing = verdict is not None and not verdict.ok
        if self.auto:
            return self._result(failed=step.id) if failing else index + 1
        return self._after(index, step, picture, retry=failing)

    def _run(self, step: Step) -> bool:
        self.screen.running()
        outcome = run_step(self.session, step, on_diff=self.screen.diff)
        if not outcome.ok:
            self.screen.command_failed()
        return outcome.ok

    def _after(
        self, index: int, step: Step, picture: Mapping[str, Callable[[], None]], retry: bool
    ) -> int | GuideResult:
        actions = dict(picture)
        if step.trace:  # offered after the step: the trace runs its command again
            actions["t"] = partial(_trace, self.machine, step, self.screen)
            actions["k"] = partial(_walk, self.machine, step, self.screen)
        allowed = ("", "b", "q", *(("r",) if retry else ()))
        after = _ask(partial(self.screen.ask_after, retry, "t" in actions), allowed, actions)
        if after == "q":
            return self._result(quit=True)
        if after == "r":
            return index
        return max(0, index - 1) if after == "b" else index + 1


def _ask(
    ask: Callable[[], str],
    allowed: tuple[str, ...],
    actions: Mapping[str, Callable[[], None]] | None = None,
) -> str:
    """The first answer in `allowed`; an answer in `actions` runs it and asks again."""
    while True:
        answer = ask().strip().lower()[:1]
        if actions and answer in actions:
            actions[answer]()
        elif answer in allowed:
            return answer


def _picture(machine: str, session: Session, screen: Screen) -> None:
    """Draw the machine's network as it is now, named after the furthest step done."""
    done = furthest_done(session.lab, session.state)
    name = f"{machine}-after-{done.id}.svg" if done is not None else f"{machine}-start.svg"
    try:
        screen.picture(draw.draw(machine, output=Path(name).resolve()))
    except LabgenError as exc:  # no Graphviz, a machine that stopped: say so, go on
        screen.error(exc)


def _trace(machine: str, step: Step, screen: Screen) -> None:
    """Run the step's command again under `labgen trace` and show the rules it met."""
    screen.tracing(machine, step.robot_command.strip())
    try:
        screen.trace(trace.trace_command(machine, step.robot_command))
    except LabgenError as exc:
        screen.error(exc)


def _walk(machine: str, step: Step, screen: Screen) -> None:
    """Run the step's command again under `labgen trace --kernel` and show where its
    packets went; a machine where the probes cannot run says what it lacks."""
    screen.tracing(machine, step.robot_command.strip(), kernel=True)
    try:
        screen.walk(trace.trace_kernel(machine, step.robot_command))
    except LabgenError as exc:
        screen.error(exc)


def _checks(session: Session, step: Step, screen: Screen) -> CheckRun | None:
    """The step's own checks, shown; a step whose checks pass is recorded as done."""
    lab, state = session.lab, session.state
    verdict = run_checks(
        lab, session.instance.ssh_config, target=step.id, only=True, engine=state.engine
    )
    screen.verdict(verdict)
    if not verdict.results and not verdict.problems:
        return None
    if verdict.ok:
        record_done(session, step)
    return verdict
