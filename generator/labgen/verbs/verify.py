"""`labgen verify`: prove that a lab's material still works, step by step, on a fresh machine.

For each step, in order: its own checks must fail (a check that already holds proves
nothing), the step's command must succeed, and then its checks must pass. Checks
that could not run fail the step. Everything lint can find is found first, before
any machine starts.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from enum import Enum

from .. import machines, providers, ssh
from ..checks import run_checks
from ..context import Context
from ..errors import LabgenError, UsageError
from ..lab import Lab
from ..results import FAIL, PASS, RAN, VACUOUS, CheckRun, LabReport, StepReport
from ..steps import Session, run_step
from .destroy import destroy as destroy_machines
from .lint import lint_lab_dir
from .up import up


class Destroy(str, Enum):
    ALWAYS = "always"
    NEVER = "never"
    ON_SUCCESS = "on-success"


Event = Callable[[str, str], None]  # (lab, message)


def prepare(ctx: Context, labs: Sequence[Lab]) -> Context:
    """Lint the labs, choose the provider and build its box, before any machine starts.

    Returns the context with the chosen provider, for every lab's machine.
    """
    problems = [p for lab in labs for p in lint_lab_dir(lab.path).problems]
    if problems:
        raise UsageError("lint found problems; no machine was started:\n" + "\n".join(problems))
    provider = providers.choose(ctx.provider, ctx.say)
    provider.ensure_box(ctx.say)
    return replace(ctx, provider=provider.name)


def verify_labs(
    ctx: Context, labs: Sequence[Lab], destroy: Destroy, jobs: int, on_event: Event
) -> list[LabReport]:
    """Verify each lab on its own fresh machine, `jobs` at a time; reports in lab order.

    Call `prepare` first: it lints and picks the provider.
    """
    lock = threading.Lock()

    def event(lab: str, message: str) -> None:
        with lock:
            on_event(lab, message)

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = [pool.submit(verify_lab, ctx, lab, destroy, event) for lab in labs]
        return [f.result() for f in futures]


def machine_name(lab: Lab) -> str:
    """The machine verify brings up for `lab`."""
    return f"verify-{lab.name}"[:40].rstrip("-")


def verify_lab(ctx: Context, lab: Lab, destroy: Destroy, event: Event) -> LabReport:
    """Bring up a fresh machine for `lab`, walk its steps, destroy as asked."""
    started = time.monotonic()
    name = machine_name(lab)
    report = LabReport(lab.name, name, [StepReport(s.id, s.title) for s in lab.steps])
    instance = machines.instance_named(name)
    if instance.exists():
        report.error = f"a machine called {name!r} already exists; `labgen destroy {name}` first"
        return report
    quiet = replace(ctx, say=lambda line: None)
    try:
        event(lab.name, "bringing up a fresh machine")
        up(quiet, str(lab.path), name)
        _walk_steps(name, report, event)
    except LabgenError as exc:
        report.error = exc.message
    finally:
        if instance.exists() and (
            destroy is Destroy.ALWAYS or (destroy is Destroy.ON_SUCCESS and report.ok)
        ):
            event(lab.name, "destroying the machine")
            try:
                destroy_machines(quiet, [name], False)
                report.destroyed = True
            except LabgenError as exc:
                report.error = report.error or f"destroy failed: {exc.message}"
        report.seconds = round(time.monotonic() - started, 1)
    event(lab.name, "PASSED" if report.ok else "FAILED")
    return report


def _walk_steps(name: str, report: LabReport, event: Event) -> None:
    instance, state, lab = machines.running(name)
    with ssh.connect(instance.ssh_config) as client:
        session = Session(instance, state, lab, client)
        for index, (step, step_report) in enumerate(
            zip(lab.steps, report.steps, strict=True), start=1
        ):
            began = time.monotonic()
            before = run_checks(lab, instance.ssh_config, target=step.id, only=True)
            already = [r for r in before.results if r.ok]
            if before.problems:
                _fail(step_report, before, "its checks could not run")
            elif already:
                step_report.status = VACUOUS
                step_report.checks = before.results
                step_report.reason = "checks pass before the step ran, so they prove nothing: " + (
                    ", ".join(r.name for r in already)
                )
            else:
                outcome = run_step(session, step, capture=True)
                step_report.output = outcome.output[-4000:]
                if not outcome.ok:
                    step_report.status = FAIL
                    step_report.reason = (
                        f"the step's command exited with status {outcome.exit_code}"
                    )
                elif before.results:
                    after = run_checks(lab, instance.ssh_config, target=step.id, only=True)
                    step_report.checks = after.results
                    step_report.status = PASS if after.ok else FAIL
                    if not after.ok:
                        _fail(step_report, after, "")
                else:
                    step_report.status = RAN
            step_report.seconds = round(time.monotonic() - began, 1)
            event(lab.name, f"step {index}/{len(lab.steps)} {step.id}: {step_report.status}")
            if step_report.status not in (PASS, RAN):
                return


def _fail(report: StepReport, run: CheckRun, why: str) -> None:
    report.status = FAIL
    report.checks = run.results
    failed = [f"check {r.name} failed: {r.message.strip()[:500]}" for r in run.results if not r.ok]
    report.reason = "; ".join(filter(None, [why, *run.problems, *failed]))
