"""`labgen verify --junitxml`: a test suite per lab and engine (`lab@20.10`), a test case
per check of each step. With --hosts the suite is `lab@20.10 on HOST` with a property
`host`, and each case's classname starts with `HOST:`.

A step without checks of its own is one test case (its command); a step not reached
is skipped; a check that did not run, or passed before its step, is a failure. A step
compared with its recording adds a case `recorded-output`: with --strict, drift (or no
recording) fails it; without, it passes and carries the diff in its output.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import junitparser as jp

from labgen.checks.reader import read_checks
from labgen.core.lab import Lab
from labgen.core.results import (
    FAIL,
    MISSING,
    NOT_APPLICABLE,
    SKIPPED,
    VACUOUS,
    LabReport,
    StepReport,
)


def write_junit(path: Path, labs: Sequence[Lab], reports: Sequence[LabReport]) -> None:
    """Write the reports (one per lab, in the same order) as JUnit XML with totals."""
    xml = jp.JUnitXml("labgen verify")
    for lab, report in zip(labs, reports, strict=True):
        suite = jp.TestSuite(f"{report.lab}@{report.engine}" if report.engine else report.lab)
        if report.host:  # verify --hosts: where it ran, in the name CI readers see
            suite.name = f"{suite.name} on {report.host}"
            suite.add_property("host", report.host)
        suite.time = report.seconds
        if report.error:
            case = jp.TestCase(
                "machine", classname=f"{report.host}:{report.lab}" if report.host else report.lab
            )
            case.result = [jp.Error(report.error)]
            suite.add_testcase(case)
        names = {s.id: [c.name for c in read_checks(lab) if c.step == s.id] for s in lab.steps}
        for step in report.steps:
            for case in _cases(report.lab, step, names[step.step], report.host):
                suite.add_testcase(case)
            if step.recording:
                suite.add_testcase(_recording_case(report, step))
        xml.add_testsuite(suite)
    xml.update_statistics()
    xml.write(str(path), pretty=True)


def _cases(lab: str, step: StepReport, checks: list[str], host: str = "") -> list[jp.TestCase]:
    classname = f"{host}:{lab}.{step.step}" if host else f"{lab}.{step.step}"
    results = {r.name: r for r in step.checks}
    cases = []
    for name in checks or ["command"]:
        case = jp.TestCase(name, classname=classname, time=step.seconds / max(1, len(checks)))
        result = results.get(name)
        if step.status == SKIPPED:
            case.result = [jp.Skipped("not reached: an earlier step failed")]
        elif step.status == NOT_APPLICABLE:
            case.result = [jp.Skipped(step.reason)]
        elif step.status == VACUOUS and result is not None and result.ok:
            case.result = [jp.Failure(f"passed before step {step.step} ran: it proves nothing")]
        elif step.status == FAIL and (result is None or not result.ok):
            message = result.message.strip() if result is not None else step.reason
            case.result = [jp.Failure(message.splitlines()[0][:500] if message else step.reason)]
            case.result[0].text = f"{step.reason}\n\n--- output\n{step.output}"
        if step.output:
            case.system_out = step.output
        cases.append(case)
    failed = any(isinstance(r, jp.Failure) for case in cases for r in case.result)
    if step.status == FAIL and not failed:
        # Its own checks passed, but the state after it did not hold (an earlier step's
        # check stopped holding, or one its until= names still holds): never green.
        case = jp.TestCase("expected-state", classname=classname, time=0.0)
        case.result = [jp.Failure(step.reason.splitlines()[0][:500] if step.reason else "")]
        case.result[0].text = step.reason
        cases.append(case)
    return cases


def _recording_case(report: LabReport, step: StepReport) -> jp.TestCase:
    """The step's output against its recording for the engine."""
    prefix = f"{report.host}:" if report.host else ""
    case = jp.TestCase("recorded-output", classname=f"{prefix}{report.lab}.{step.step}")
    where = f"{report.lab} on Docker {report.engine}, step {step.step}"
    if step.recording == MISSING:
        message, text = f"{where}: no recording of this step", ""
    else:
        message, text = f"{where}: output drifted from its recording", step.drift
    if step in report.drifted:
        if report.strict:
            case.result = [jp.Failure(message)]
            case.result[0].text = text
        case.system_out = f"{message}\n{text}"
    return case
