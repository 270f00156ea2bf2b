"""A background check that raises is logged and shows as a failing cell, never lost.

The real Checker, started as the workshop server starts it, with a check function
that raises; nothing runs on a machine.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import pytest
from labgen.core.errors import MachineError
from labgen.core.lab import Lab, load_lab
from labgen.core.results import CheckRun
from labgen.machine.instance import Instance
from labgen.workshop.checker import Checker
from labgen.workshop.grid import FAILING, NOT_YET, Grid

STEP = "publish-port"


@pytest.fixture
def lab() -> Lab:
    return load_lab("port-forwarding")


def raising(exc: Exception) -> Callable[[Lab, Instance, str], CheckRun]:
    def run(lab: Lab, instance: Instance, step: str) -> CheckRun:
        raise exc

    return run


def wait_for(condition: Callable[[], bool], seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)
    return condition()


def test_a_check_that_raises_is_a_failing_cell_with_its_message(
    lab: Lab, caplog: pytest.LogCaptureFixture
) -> None:
    grid = Grid(["s-01"], [s.id for s in lab.steps], {STEP})
    checker = Checker(grid, lab, raising(KeyError("no such fixture 'engine'")), min_period=60)
    with caplog.at_level(logging.ERROR, logger="labgen.workshop.checker"):
        checker.start()
        try:
            assert wait_for(lambda: grid.cell("s-01", STEP).state == FAILING)
        finally:
            checker.stop()
    detail = grid.cell("s-01", STEP).detail
    assert "the background check could not run: KeyError" in detail
    assert "no such fixture 'engine'" in detail
    logged = [r for r in caplog.records if r.name == "labgen.workshop.checker"]
    assert logged and "step publish-port on seat s-01" in logged[0].getMessage()
    assert logged[0].exc_info is not None and logged[0].exc_info[0] is KeyError


def test_the_failing_cell_reaches_a_page_that_listens(lab: Lab) -> None:
    """The grid publishes the failing cell as any other change, with its message."""
    grid = Grid(["s-01"], [s.id for s in lab.steps], {STEP})
    checker = Checker(grid, lab, raising(RuntimeError("pytest crashed")), min_period=60)
    checker._check("s-01")
    row = grid.snapshot("s-01")["rows"][0]
    assert row["cells"][STEP]["state"] == FAILING
    assert "RuntimeError: pytest crashed" in row["cells"][STEP]["detail"]
    assert "s-01" in grid.csv() and FAILING in grid.csv()


def test_a_machine_that_does_not_answer_still_says_nothing(lab: Lab) -> None:
    """A LabgenError is the machine being reset or away: no verdict, not a failure."""
    grid = Grid(["s-01"], [s.id for s in lab.steps], {STEP})
    checker = Checker(grid, lab, raising(MachineError("ssh: connection refused")))
    checker._check("s-01")
    assert grid.cell("s-01", STEP).state == NOT_YET


def test_what_escapes_a_check_is_logged_and_the_seat_stays_checked(
    lab: Lab, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug outside the check function itself (here: choosing the step) is logged
    from the future the pool returned, and the seat is checked again later."""
    grid = Grid(["s-01"], [s.id for s in lab.steps], {STEP})
    checker = Checker(grid, lab, raising(AssertionError("unreached")), min_period=0.05)
    calls = []

    def broken(seat: str) -> str | None:
        calls.append(seat)
        raise ValueError("grid row vanished")

    monkeypatch.setattr(checker, "_next_step", broken)
    with caplog.at_level(logging.ERROR, logger="labgen.workshop.checker"):
        checker.start()
        try:
            assert wait_for(lambda: len(calls) >= 2)  # not busy for ever after the first
            assert wait_for(lambda: any(r.exc_info for r in caplog.records))
        finally:
            checker.stop()
    logged = [r for r in caplog.records if r.exc_info]
    assert "background check of seat s-01 failed" in logged[0].getMessage()
    assert logged[0].exc_info is not None and logged[0].exc_info[0] is ValueError
