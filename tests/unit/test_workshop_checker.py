"""The watch's rule (two misses in a row make a seat's row 'machine down', an answer
makes it ready again, a reset owns the row) and the background checker's parallel limit.

Pure logic: the watch is handed a probe that answers from a script, the checker a check
function that sleeps; no machine is involved (tests/e2e/test_workshop_watch.py kills
real ones).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from labgen.core.lab import Lab, load_lab
from labgen.core.results import CheckResult, CheckRun
from labgen.machine.instance import Instance
from labgen.workshop.checker import Checker
from labgen.workshop.grid import FAILING, NOT_YET, SEAT_READY, SEAT_RESETTING, Grid
from labgen.workshop.watch import MACHINE_DOWN, Watch, _Line

SEATS = ["s-01", "s-02"]


def scripted(answers: dict[str, list[str | None]]) -> Callable[[_Line, str], str | None]:
    """A probe answering each seat from its list in turn (None: it answered)."""

    def probe(line: _Line, seat: str) -> str | None:
        return answers[seat].pop(0)

    return probe


def machine(grid: Grid, seat: str) -> str:
    return str(grid.snapshot(seat)["rows"][0]["machine"])


@pytest.fixture
def grid() -> Grid:
    return Grid(SEATS, ["a", "b"], {"b"})


def test_two_misses_in_a_row_make_a_row_down_and_an_answer_makes_it_ready(grid: Grid) -> None:
    answers: dict[str, list[str | None]] = {
        "s-01": [None, "timed out", None, "timed out", "timed out", None],
        "s-02": [None] * 6,
    }
    watch = Watch(grid, scripted(answers))
    seen = []
    for _ in range(6):
        for seat in SEATS:
            watch.probe_once(seat)
        seen.append(machine(grid, "s-01"))
        assert machine(grid, "s-02") == SEAT_READY
    # one miss between answers is a busy moment, not a dead machine
    assert seen == [SEAT_READY, SEAT_READY, SEAT_READY, SEAT_READY, MACHINE_DOWN, SEAT_READY]


def test_the_reason_of_a_down_seat_is_kept_until_it_answers(grid: Grid) -> None:
    watch = Watch(grid, scripted({"s-01": ["port refused", "port refused", None]}))
    watch.probe_once("s-01")
    watch.probe_once("s-01")
    assert machine(grid, "s-01") == MACHINE_DOWN
    assert watch.why_down("s-01") == "port refused"
    watch.probe_once("s-01")
    assert watch.why_down("s-01") == ""


def test_a_seat_being_reset_is_not_probed_and_its_row_is_the_resets(grid: Grid) -> None:
    asked: list[str] = []

    def probe(line: _Line, seat: str) -> str | None:
        asked.append(seat)
        return "no machine"

    watch = Watch(grid, probe)
    grid.set_machine("s-01", SEAT_RESETTING)
    for _ in range(3):
        watch.probe_once("s-01")
    assert asked == [] and machine(grid, "s-01") == SEAT_RESETTING


def test_a_probe_begun_before_a_reset_changes_nothing(grid: Grid) -> None:
    """The reset forgets the seat while a probe of the old machine is on its way: that
    probe's miss must not turn the row (now the reset's) down."""
    watch: Watch

    def probe(line: _Line, seat: str) -> str | None:
        watch.forget(seat)  # the instructor pressed reset meanwhile
        grid.set_machine(seat, SEAT_RESETTING)
        return "timed out"

    watch = Watch(grid, probe)
    watch.probe_once("s-01")
    watch.probe_once("s-01")
    assert machine(grid, "s-01") == SEAT_RESETTING


def test_probe_now_tries_twice_and_the_second_try_is_on_a_new_connection(grid: Grid) -> None:
    fresh: list[bool] = []

    def probe(line: _Line, seat: str) -> str | None:
        fresh.append(line.shell is None and line.unread == b"")
        line.unread = b"left from this try"  # what a real line would keep
        return "timed out"

    watch = Watch(grid, probe)
    assert watch.probe_now("s-01") == "timed out"
    assert fresh == [True, True]
    assert machine(grid, "s-01") == MACHINE_DOWN  # two misses, at once
    assert watch.probe_now("s-01") == "timed out"
    assert len(fresh) == 3  # already down: one try says whether it came back


def test_the_watch_threads_probe_every_seat_and_stop(grid: Grid) -> None:
    counts = {seat: 0 for seat in SEATS}
    lock = threading.Lock()

    def probe(line: _Line, seat: str) -> str | None:
        with lock:
            counts[seat] += 1
        return "timed out" if seat == "s-02" else None

    watch = Watch(grid, probe, every=0.05)
    watch.start()
    try:
        deadline = time.monotonic() + 10
        while machine(grid, "s-02") != MACHINE_DOWN and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        watch.stop()
    assert machine(grid, "s-02") == MACHINE_DOWN and machine(grid, "s-01") == SEAT_READY
    assert counts["s-01"] >= 2
    after = dict(counts)
    time.sleep(0.2)
    assert counts == after  # stopped means stopped


# --- the checker -------------------------------------------------------------------------


@pytest.fixture
def lab() -> Lab:
    return load_lab("port-forwarding")


def failing(step: str) -> CheckRun:
    return CheckRun("lab", step, True, [CheckResult("t", "t", step, "failed", "", 0.0)])


def most_at_once(lab: Lab, seats: int, cores: int, cpu: float, wall: float) -> tuple[int, int]:
    """The most checks the derived limit let run at once, and the limit it said."""
    grid = Grid([f"s-{i:02d}" for i in range(seats)], [s.id for s in lab.steps], {"publish-port"})
    running = most = 0
    lock = threading.Lock()

    def run(lab: Lab, instance: Instance, step: str) -> CheckRun:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(wall)
        with lock:
            running -= 1
        return failing(step)

    checker = Checker(grid, lab, run, min_period=60, cores=cores)
    # The sleeping check uses no CPU of a child, so the measured mean stays as set.
    checker._cpu_per_check, checker._wall_per_check = cpu, wall
    for state in checker._seats.values():
        state.due = 0.0  # every seat due at once (a room typing), not staggered as at start
    checker.start()
    try:
        deadline = time.monotonic() + 20
        while checker.checks_run < seats and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        checker.stop()
    assert checker.checks_run >= seats
    return most, checker.limit


@pytest.mark.parametrize(
    ("cores", "busy", "expected"),
    [(4, 0.6, 4), (4, 1.0, 3), (2, 1.0, 2), (1, 1.0, 1), (4, 2.0, 2)],
    ids=["4 cores, light checks", "4 cores", "2 cores", "1 core", "4 cores, CPU-bound"],
)
def test_background_checks_run_in_parallel_up_to_the_derived_limit(
    lab: Lab, cores: int, busy: float, expected: int
) -> None:
    """limit = round(0.75 x cores / busy), busy = CPU / wall per check, at least 1, at
    most the cores (a busy above 1: the checks' children ran in parallel)."""
    most, limit = most_at_once(lab, 8, cores, cpu=busy * 0.5, wall=0.5)
    assert limit == expected
    assert most == expected


def test_a_failed_background_check_of_a_silent_machine_records_nothing(lab: Lab) -> None:
    """A check run with problems (what a machine dying under it gives) would turn the
    cell failing; when the machine no longer answers it says nothing of the attendee."""
    grid = Grid(["s-01", "s-02"], [s.id for s in lab.steps], {"publish-port"})
    problem = CheckRun("lab", "publish-port", True, [], problems=["connection reset"])
    checker = Checker(grid, lab, lambda *a: problem, workers=1, answers=lambda seat: seat == "s-02")
    checker._check("s-01")
    checker._check("s-02")
    assert grid.cell("s-01", "publish-port").state == NOT_YET
    assert grid.cell("s-02", "publish-port").state == FAILING  # it answers: a real problem


def test_the_measured_wall_time_moves_the_mean(lab: Lab) -> None:
    grid = Grid(["s-01"], [s.id for s in lab.steps], {"publish-port"})

    def run(lab: Lab, instance: Instance, step: str) -> CheckRun:
        time.sleep(0.2)
        return failing(step)

    checker = Checker(grid, lab, run, cores=2)
    before = checker.figures()["wall_per_check"]
    checker._check("s-01")
    after = checker.figures()
    assert after["checks_run"] == 1
    assert after["wall_per_check"] < before  # 1.5 s guessed, 0.2 s seen
