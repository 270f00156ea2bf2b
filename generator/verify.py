"""`labgen verify`: prove that a lab's material still works, step by step, on a fresh machine.

For each step, in order: its own checks must fail (a check that already holds proves
nothing), the step's command must succeed, and then its checks must pass.
"""

from __future__ import annotations

import io
import shlex
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from enum import Enum

from . import lifecycle, ssh
from .checks import CheckResult, run_checks
from .errors import LabgenError
from .instance import Instance
from .lab import Lab


class Destroy(str, Enum):
    ALWAYS = "always"
    NEVER = "never"
    ON_SUCCESS = "on-success"


# A step's verdict.
PASS = "pass"  # checks failed before, command succeeded, checks pass after
RAN = "ran"  # a step without checks of its own whose command succeeded
FAIL = "fail"  # command failed, or a check failed after the step
VACUOUS = "vacuous"  # a check already passed before its step
SKIPPED = "skipped"  # not reached: an earlier step failed


@dataclass
class StepReport:
    step: str
    title: str
    status: str = SKIPPED
    seconds: float = 0.0
    reason: str = ""
    checks: list[str] = field(default_factory=list)
    output: str = ""


@dataclass
class LabReport:
    lab: str
    machine: str
    steps: list[StepReport]
    error: str = ""
    seconds: float = 0.0
    destroyed: bool = False

    @property
    def ok(self) -> bool:
        return not self.error and all(s.status in (PASS, RAN) for s in self.steps)

    def to_json(self) -> dict[str, object]:
        return {**asdict(self), "ok": self.ok}


Event = Callable[[str, str], None]  # (lab, message)


def verify_labs(
    labs: Sequence[Lab], destroy: Destroy, jobs: int, on_event: Event
) -> list[LabReport]:
    """Verify each lab on its own fresh machine, `jobs` at a time; reports in lab order."""
    lock = threading.Lock()

    def event(lab: str, message: str) -> None:
        with lock:
            on_event(lab, message)

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = [pool.submit(verify_lab, lab, destroy, event) for lab in labs]
        return [f.result() for f in futures]


def machine_name(lab: Lab) -> str:
    return f"verify-{lab.name}"[:40].rstrip("-")


def verify_lab(lab: Lab, destroy: Destroy, event: Event) -> LabReport:
    """Bring up a fresh machine for `lab`, walk its steps, destroy as asked."""
    started = time.monotonic()
    name = machine_name(lab)
    report = LabReport(lab.name, name, [StepReport(s.id, s.title) for s in lab.steps])
    instance = Instance(name)
    if instance.exists():
        report.error = f"a machine called {name!r} already exists; `labgen destroy {name}` first"
        return report
    try:
        event(lab.name, "bringing up a fresh machine")
        lifecycle.up(str(lab.path), None, name, lambda line: None)
        _walk_steps(lab, instance, report, event)
    except LabgenError as exc:
        report.error = exc.message
    finally:
        if instance.exists() and (
            destroy is Destroy.ALWAYS or (destroy is Destroy.ON_SUCCESS and report.ok)
        ):
            event(lab.name, "destroying the machine")
            try:
                lifecycle.destroy([name], False, lambda line: None)
                report.destroyed = True
            except LabgenError as exc:
                report.error = report.error or f"destroy failed: {exc.message}"
        report.seconds = round(time.monotonic() - started, 1)
    event(lab.name, "PASSED" if report.ok else "FAILED")
    return report


def _walk_steps(lab: Lab, instance: Instance, report: LabReport, event: Event) -> None:
    total = len(lab.steps)
    with ssh.connect(instance.ssh_config) as client:
        for index, (step, step_report) in enumerate(
            zip(lab.steps, report.steps, strict=True), start=1
        ):
            began = time.monotonic()
            before = run_checks(lab, instance.ssh_config, target=step.id, only=True).results
            step_report.checks = [r.name for r in before]
            already = [r for r in before if r.ok]
            if already:
                step_report.status = VACUOUS
                step_report.reason = (
                    "checks pass before the step ran, so they prove nothing: "
                    + ", ".join(r.name for r in already)
                )
            else:
                out = io.BytesIO()
                code = ssh.run(client, f"labgen-lab run {shlex.quote(step.id)}", out, out)
                step_report.output = out.getvalue().decode(errors="replace")[-4000:]
                if code != 0:
                    step_report.status = FAIL
                    step_report.reason = f"the step's command exited with status {code}"
                elif before:
                    after = run_checks(lab, instance.ssh_config, target=step.id, only=True)
                    failed = [r for r in after.results if not r.ok]
                    step_report.status = FAIL if failed else PASS
                    step_report.reason = _describe_failures(failed)
                else:
                    step_report.status = RAN
            step_report.seconds = round(time.monotonic() - began, 1)
            event(lab.name, f"step {index}/{total} {step.id}: {step_report.status}")
            if step_report.status not in (PASS, RAN):
                return


def _describe_failures(failed: list[CheckResult]) -> str:
    return "; ".join(f"check {r.name} failed: {r.message.strip()[:500]}" for r in failed)


def junit_xml(reports: Sequence[LabReport]) -> str:
    """JUnit XML: a test suite per lab, a test case per step."""
    import xml.etree.ElementTree as ET

    suites = ET.Element("testsuites", name="labgen verify")
    for rep in reports:
        failures = sum(s.status in (FAIL, VACUOUS) for s in rep.steps) + bool(rep.error)
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=rep.lab,
            tests=str(len(rep.steps)),
            failures=str(failures),
            skipped=str(sum(s.status == SKIPPED for s in rep.steps)),
            time=str(rep.seconds),
        )
        if rep.error:
            case = ET.SubElement(suite, "testcase", classname=rep.lab, name="machine", time="0")
            ET.SubElement(case, "error", message=rep.error).text = rep.error
        for step in rep.steps:
            case = ET.SubElement(
                suite, "testcase", classname=rep.lab, name=step.step, time=str(step.seconds)
            )
            if step.status in (FAIL, VACUOUS):
                failure = ET.SubElement(case, "failure", message=f"{step.status}: {step.reason}")
                failure.text = f"{step.reason}\n\n--- output\n{step.output}"
            elif step.status == SKIPPED:
                ET.SubElement(case, "skipped", message="an earlier step failed")
            if step.output:
                ET.SubElement(case, "system-out").text = step.output
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"
