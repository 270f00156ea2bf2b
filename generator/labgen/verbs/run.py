"""`labgen run`: run steps of the lab on its machine, in order, showing their output."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from labgen.core.errors import UsageError
from labgen.core.lab import Lab, Step
from labgen.core.results import StepOutcome
from labgen.machine import registry, ssh
from labgen.machine.steps import Session, run_step
from labgen.network.diff import Diff

Announce = Callable[[Lab, Step, str], None]  # (lab, step, the machine's engine)


def run(
    machine: str,
    step_ids: Sequence[str],
    every: bool,
    announce: Announce,
    on_diff: Callable[[Diff], None] | None = None,
) -> list[StepOutcome]:
    """Run the named steps (or all) on the machine; stop at the first that fails.

    `announce` is told of each step before it runs; with `on_diff`, what each step
    changed in the network state is handed over after it.
    """
    instance, state, lab = registry.running(machine)
    if every and step_ids:
        raise UsageError("give step names or --all, not both")
    if not every and not step_ids:
        raise UsageError(
            "which steps? name them, or pass --all",
            hint=f"lab {lab.name!r} has: {', '.join(s.id for s in lab.steps)}",
        )
    steps = lab.steps if every else [lab.step(s) for s in step_ids]
    outcomes = []
    with ssh.connect(instance.ssh_config) as client:
        session = Session(instance, state, lab, client)
        for step in steps:
            announce(lab, step, state.engine)
            outcome = run_step(session, step, on_diff=on_diff)
            outcomes.append(outcome)
            if not outcome.ok:
                break
    return outcomes
