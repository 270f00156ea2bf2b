"""`labgen guide`: walk a lab step by step in the terminal, with what each step changed.

For each step: its explanation and documented command; labgen runs it (or the
learner runs it in `labgen ssh` and comes back to check); the output; what changed
in the kernel's network state; and the step's checks as "done / not yet". The guide
resumes after the furthest step done: the same record `status` and `check` read.
At either prompt `p` writes a picture of the machine's network as it is (labgen draw);
after a step the lab marks `trace: true` ran, `t` traces its command (labgen trace).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from labgen.checks.runner import run_checks
from labgen.core.errors import LabgenError
from labgen.core.lab import Step
from labgen.core.results import CheckRun
from labgen.machine import registry, ssh
from labgen.machine.steps import Session, furthest_done, record_done, run_step
from labgen.ui import printers as ui
from labgen.ui import views as ui_views
from labgen.verbs import draw, trace

Ask = Callable[[str], str]

BEFORE = ("", "c", "s", "b", "q")  # run, check only, skip, back, quit


@dataclass
class GuideResult:
    lab: str
    completed: int
    total: int
    failed_step: str | None = None
    quit: bool = False


def guide(machine: str, *, auto: bool, restart: bool, ask: Ask) -> GuideResult:
    """Walk the machine's lab from after the furthest step done (or from the start)."""
    instance, state, lab = registry.running(machine)
    total = len(lab.steps)
    done = furthest_done(lab, state)
    index = 0 if restart or done is None else lab.step_index(done.id) + 1
    if index == total:
        ui.out.print(f"You finished lab {lab.name} already; `--restart` walks it again.")
        return GuideResult(lab.name, total, total)
    if index and not auto:
        ui.note(f"Resuming lab {lab.name} at step {index + 1} of {total}.")
    with ssh.connect(instance.ssh_config) as client:
        session = Session(instance, state, lab, client)
        while index < total:
            step = lab.steps[index]
            ui.show_guide_step(index + 1, total, step, state.engine)
            picture = {"p": partial(_picture, machine, session)}
            prompt = ui.GUIDE_BEFORE + ui_views.guide_keys(picture=True)
            choice = "" if auto else _ask(ask, prompt, BEFORE, picture)
            if choice == "q":
                return GuideResult(lab.name, index, total, quit=True)
            if choice in ("b", "s"):
                index = max(0, index - 1) if choice == "b" else index + 1
                continue
            if choice == "":
                ui.note("running it on the machine:")
                outcome = run_step(session, step, on_diff=ui.show_diff)
                if not outcome.ok:
                    ui.out.print("[red]The step's command failed.[/]")
                    if auto:
                        return GuideResult(lab.name, index, total, failed_step=step.id)
            verdict = _checks(session, step)
            if auto:
                if verdict is not None and not verdict.ok:
                    return GuideResult(lab.name, index, total, failed_step=step.id)
                index += 1
                continue
            retry = verdict is not None and not verdict.ok
            actions = dict(picture)
            if step.trace:  # offered after the step: the trace runs its command again
                actions["t"] = partial(_trace, machine, step)
            prompt = ui.guide_after_prompt(retry) + ui_views.guide_keys(
                picture=True, trace="t" in actions
            )
            after = _ask(ask, prompt, ("", "b", "q", *(("r",) if retry else ())), actions)
            if after == "q":
                return GuideResult(lab.name, index, total, quit=True)
            if after != "r":
                index = max(0, index - 1) if after == "b" else index + 1
    ui.guide_finished(lab.name, total)
    return GuideResult(lab.name, total, total)


def _ask(
    ask: Ask,
    prompt: str,
    allowed: tuple[str, ...],
    actions: Mapping[str, Callable[[], None]] | None = None,
) -> str:
    """The first answer in `allowed`; an answer in `actions` runs it and asks again."""
    while True:
        answer = ask(prompt).strip().lower()[:1]
        if actions and answer in actions:
            actions[answer]()
        elif answer in allowed:
            return answer


def _picture(machine: str, session: Session) -> None:
    """Draw the machine's network as it is now, named after the furthest step done."""
    done = furthest_done(session.lab, session.state)
    name = f"{machine}-after-{done.id}.svg" if done is not None else f"{machine}-start.svg"
    try:
        ui_views.print_picture(draw.draw(machine, output=Path(name).resolve()), as_json=False)
    except LabgenError as exc:  # no Graphviz, a machine that stopped: say so, go on
        ui.error(exc)


def _trace(machine: str, step: Step) -> None:
    """Run the step's command again under `labgen trace` and show the rules it met."""
    ui.note(f"tracing it: labgen trace {machine} -- {step.robot_command.strip()}")
    try:
        ui_views.print_trace(trace.trace_command(machine, step.robot_command), as_json=False)
    except LabgenError as exc:
        ui.error(exc)


def _checks(session: Session, step: Step) -> CheckRun | None:
    """The step's own checks, shown; a step whose checks pass is recorded as done."""
    lab, state = session.lab, session.state
    verdict = run_checks(
        lab, session.instance.ssh_config, target=step.id, only=True, engine=state.engine
    )
    ui.show_guide_verdict(verdict)
    if not verdict.results and not verdict.problems:
        return None
    if verdict.ok:
        record_done(session, step)
    return verdict
