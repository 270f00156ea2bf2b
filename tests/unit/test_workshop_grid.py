"""The grid's rule (a check that did not run is never done) and the background checker."""

from __future__ import annotations

import threading
import time

import pytest
from labgen.core.lab import Lab, load_lab
from labgen.core.results import CheckResult, CheckRun
from labgen.machine.instance import Instance
from labgen.workshop.checker import Checker
from labgen.workshop.grid import DONE, FAILING, NO_CHECKS, NOT_YET, SEAT_RESETTING, Grid


def verdict(*outcomes: str, problems: tuple[str, ...] = ()) -> CheckRun:
    results = [
        CheckResult(f"c{i}", f"check {i}", "b", o, "why", 0.1) for i, o in enumerate(outcomes)
    ]
    return CheckRun("lab", "b", True, results, list(problems))


@pytest.fixture
def grid() -> Grid:
    return Grid(["s-01", "s-02"], ["a", "b", "c"], {"b", "c"})


def test_steps_without_checks_are_never_not_yet(grid: Grid) -> None:
    assert grid.cell("s-01", "a").state == NO_CHECKS
    assert grid.cell("s-01", "b").state == NOT_YET


@pytest.mark.parametrize(
    "run",
    [verdict(), verdict("passed", problems=("the checks did not load",))],
    ids=["no check ran", "checks with problems"],
)
def test_a_check_that_did_not_run_is_never_done(grid: Grid, run: CheckRun) -> None:
    grid.record("s-01", "b", run, attempted=False)
    assert grid.cell("s-01", "b").state != DONE


def test_background_failures_leave_an_untried_step_not_yet(grid: Grid) -> None:
    assert grid.record("s-01", "b", verdict("failed"), attempted=False) == NOT_YET
    assert grid.cell("s-01", "b").changed == 0


def test_a_failed_attempt_is_failing_then_done_and_done_stays(grid: Grid) -> None:
    assert grid.record("s-01", "b", verdict("passed", "failed"), attempted=True) == FAILING
    assert "check 1: why" in grid.cell("s-01", "b").detail
    assert grid.record("s-01", "b", verdict("passed", "passed"), attempted=False) == DONE
    changed = grid.cell("s-01", "b").changed
    assert changed > 0
    # A later step may undo this one's state on purpose: done stays done.
    assert grid.record("s-01", "b", verdict("failed"), attempted=True) == DONE
    assert grid.cell("s-01", "b").changed == changed
    assert grid.cell("s-02", "b").state == NOT_YET


def test_a_reset_clears_the_seats_row(grid: Grid) -> None:
    grid.record("s-01", "b", verdict("passed"), attempted=True)
    grid.set_machine("s-01", SEAT_RESETTING)
    assert grid.cell("s-01", "b").state == NOT_YET
    assert grid.snapshot("s-01")["rows"][0]["machine"] == SEAT_RESETTING


def test_the_csv_has_a_row_per_seat_with_state_and_time(grid: Grid) -> None:
    grid.record("s-02", "c", verdict("passed"), attempted=False)
    lines = grid.csv().splitlines()
    assert lines[0] == "seat,machine,a,a changed,b,b changed,c,c changed"
    row = lines[2].split(",")
    assert row[:6] == ["s-02", "ready", "no-checks", "", "not-yet", ""]
    assert row[6] == "done" and row[7].startswith("20")


@pytest.fixture
def lab() -> Lab:
    return load_lab("port-forwarding")


def test_the_checker_checks_the_first_undone_step_and_gives_later_ones_turns(lab: Lab) -> None:
    checked = {"publish-port", "curl", "stop-server"}
    grid = Grid(["s-01"], [s.id for s in lab.steps], checked)
    asked: list[str] = []
    passes = {"curl"}  # the attendee ran ahead: curl holds, publish-port not (yet)

    def run(lab: Lab, instance: Instance, step: str) -> CheckRun:
        asked.append(step)
        outcome = "passed" if step in passes else "failed"
        return CheckRun(lab.name, step, True, [CheckResult("t", "t", step, outcome, "", 0.0)])

    checker = Checker(grid, lab, run, workers=1, min_period=0.05)
    for _ in range(6):
        checker._check("s-01")
    assert asked[0] == "publish-port"
    assert "curl" in asked and "stop-server" in asked[:6]
    assert asked[::2] == ["publish-port"] * len(asked[::2])  # the frontier every other turn
    assert grid.cell("s-01", "curl").state == DONE
    assert grid.cell("s-01", "publish-port").state == NOT_YET


def test_the_checker_runs_no_more_than_its_workers_and_answers_a_poke(lab: Lab) -> None:
    seats = [f"s-{i:02d}" for i in range(1, 7)]
    grid = Grid(seats, [s.id for s in lab.steps], {"publish-port"})
    running = 0
    most = 0
    lock = threading.Lock()

    def run(lab: Lab, instance: Instance, step: str) -> CheckRun:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.8)  # longer than the seats' staggered first turns: they overlap
        with lock:
            running -= 1
        outcome = "passed" if instance.name == "s-06" else "failed"
        return CheckRun(lab.name, step, True, [CheckResult("t", "t", step, outcome, "", 0.0)])

    checker = Checker(grid, lab, run, workers=2, min_period=60)
    checker.start()
    try:
        deadline = time.monotonic() + 10
        while checker.checks_run < 6 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert checker.checks_run >= 6 and most == 2
        first_round = checker.checks_run
        assert grid.cell("s-06", "publish-port").state == DONE
        time.sleep(0.5)
        assert checker.checks_run == first_round  # idle: the next round is a minute away
        checker.poke("s-01")
        deadline = time.monotonic() + 5
        while checker.checks_run == first_round and time.monotonic() < deadline:
            time.sleep(0.05)
        assert checker.checks_run == first_round + 1
    finally:
        checker.stop()


def test_the_idle_period_spreads_the_measured_cost_over_the_budget(lab: Lab) -> None:
    grid = Grid([f"s-{i:02d}" for i in range(20)], [s.id for s in lab.steps], set())
    checker = Checker(grid, lab, lambda *a: verdict(), budget=0.25, min_period=10)
    checker._cpu_per_check = 1.0
    assert checker.period == pytest.approx(80)  # 20 seats x 1 s of CPU / a quarter core
    checker._cpu_per_check = 0.05
    assert checker.period == 10
