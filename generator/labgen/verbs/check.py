"""`labgen check`: is the machine in the state the steps run so far should leave it in?"""

from __future__ import annotations

from labgen.checks.runner import run_checks
from labgen.core.errors import EXIT_FAILED, EXIT_OK, LabgenError
from labgen.core.lab import Lab
from labgen.core.results import CHECKS_PASSED, NOTHING_CHECKED, CheckRun
from labgen.machine import recipe, registry
from labgen.machine.steps import furthest_done


def check(
    machine: str, step: str | None = None, only: bool = False, expect_engine: str | None = None
) -> tuple[CheckRun, Lab]:
    """Run the checks that must hold after `step`, else after the furthest step done
    (else the lab's last step: it tells what is not there yet).

    `expect_engine`: hold the machine to another engine's expected state (the checks
    are told that engine): how a lab shows that its engines really differ.
    """
    instance, state, lab = registry.running(machine)
    if step is None:
        done = furthest_done(lab, state)
        step = done.id if done else None
    engine = recipe.engine(expect_engine) if expect_engine else state.engine or None
    return run_checks(lab, instance.ssh_config, target=step, only=only, engine=engine), lab


def exit_status(run: CheckRun) -> int:
    """`labgen check`'s exit status: 0 only when checks ran and all passed.

    A run that checked nothing exits 1 like a failure: a script that asks "is the
    machine in this state?" must not read "no check applies" as yes.
    """
    return EXIT_OK if run.verdict == CHECKS_PASSED else EXIT_FAILED


def nothing_checked(run: CheckRun) -> LabgenError | None:
    """Why a run that checked nothing exits 1, for the user; None when checks ran."""
    if run.verdict != NOTHING_CHECKED:
        return None
    which = f"is step {run.target}'s own" if run.only else f"holds after step {run.target}"
    return LabgenError(
        f"nothing was checked: no check of lab {run.lab} {which}",
        hint="pick a step that has checks with --step STEP",
    )
