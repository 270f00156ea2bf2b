"""verify's rule for the state after a step (issue 21, item 1), as pure logic: every
check whose window holds the step passes, and every check whose until= is the step
fails now. The e2e side (tests/e2e/test_verify.py) runs the same on real machines."""

from __future__ import annotations

from pathlib import Path

from helpers import labgen, show
from labgen.core.results import FAIL, PASS, RAN, CheckResult, CheckRun, StepReport
from labgen.verbs.verify import _judge_after


def result(name: str, step: str, outcome: str, until: str | None = None) -> CheckResult:
    return CheckResult(name, name, step, outcome, f"{name} said {outcome}", 0.1, until)


def judge(step: str, results: list[CheckResult], has_own: bool = True) -> StepReport:
    report = StepReport(step, step)
    _judge_after(report, step, CheckRun("lab", step, False, results), has_own)
    return report


def test_own_and_earlier_checks_holding_and_an_until_failing_pass() -> None:
    report = judge(
        "b",
        [
            result("own", "b", "passed"),
            result("earlier", "a", "passed"),
            result("undone", "a", "failed", until="b"),
        ],
    )
    assert (report.status, report.reason) == (PASS, "")


def test_an_earlier_check_that_stops_holding_without_until_fails_the_step() -> None:
    report = judge("b", [result("own", "b", "passed"), result("earlier", "a", "failed")])
    assert report.status == FAIL
    assert "check earlier (from step a) no longer holds after step b" in report.reason
    assert "mark it until='b'" in report.reason


def test_a_check_that_holds_past_its_until_fails_the_step() -> None:
    report = judge("b", [result("own", "b", "passed"), result("sticky", "a", "passed", "b")])
    assert report.status == FAIL
    assert "check sticky still holds after step b, though its until='b'" in report.reason


def test_an_until_check_that_could_not_run_is_no_proof_that_the_step_undid_it() -> None:
    report = judge("b", [result("own", "b", "passed"), result("broken", "a", "error", "b")])
    assert report.status == FAIL
    assert "check broken did not run (error)" in report.reason


def test_a_skipped_earlier_check_is_not_a_pass() -> None:
    report = judge("b", [result("own", "b", "passed"), result("earlier", "a", "skipped")])
    assert report.status == FAIL


def test_a_step_without_checks_of_its_own_ran_when_the_rest_holds() -> None:
    report = judge("b", [result("earlier", "a", "passed")], has_own=False)
    assert (report.status, report.reason) == (RAN, "")


def test_own_checks_that_did_not_come_back_after_the_step_fail_it() -> None:
    report = judge("b", [result("earlier", "a", "passed")], has_own=True)
    assert report.status == FAIL
    assert "no check of the step ran after it" in report.reason


def test_problems_of_the_run_fail_the_step() -> None:
    report = StepReport("b", "b")
    run = CheckRun("lab", "b", False, [result("own", "b", "passed")], ["the checks did not load"])
    _judge_after(report, "b", run, has_own=True)
    assert report.status == FAIL and "the checks did not load" in report.reason


def test_a_lab_without_checks_is_refused_before_any_machine(
    labgen_home: Path, tmp_path: Path
) -> None:
    """A lab whose checks.py holds no checks would verify green (every step "ran")
    though verify proved nothing about it: it is bad input (lint's), exit 2, naming
    the file, and no machine is made."""
    made = labgen("new", "unchecked", "--dir", str(tmp_path))
    assert made.returncode == 0, show(made)
    checks = tmp_path / "unchecked" / "checks.py"
    checks.write_text('"""Nothing checked yet."""\n')
    proc = labgen("verify", str(tmp_path / "unchecked"))
    assert proc.returncode == 2, show(proc)
    assert f"{checks}: no checks" in proc.stderr and "Traceback" not in proc.stderr
    assert "no machine was started" in proc.stderr
    instances = labgen_home / "instances"
    assert not instances.exists() or not any(instances.iterdir())
