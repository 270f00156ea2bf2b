"""The room's database: the grid written as it changes and rebuilt from it, the settings,
the schema's version, and the lock that keeps one server per workshop."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from labgen.core.errors import UsageError
from labgen.core.results import CheckResult, CheckRun
from labgen.workshop import db, lock
from labgen.workshop.grid import DONE, FAILING, NOT_YET, SEAT_FAILED, SEAT_RESETTING, Grid

SEATS, STEPS, CHECKED = ["s-01", "s-02"], ["a", "b", "c"], {"b", "c"}


def verdict(*outcomes: str, problems: tuple[str, ...] = ()) -> CheckRun:
    results = [
        CheckResult(f"c{i}", f"check {i}", "b", o, "why", 0.1) for i, o in enumerate(outcomes)
    ]
    return CheckRun("lab", "b", True, results, list(problems))


@pytest.fixture
def store(labgen_home: Path) -> db.RoomDB:
    room = db.open_room("room", "2026-01-01T00:00:00+00:00")
    room.describe(
        workshop="room",
        lab="lab",
        created="2026-01-01T00:00:00+00:00",
        steps=[db.StepRow(s, s.upper(), s in CHECKED) for s in STEPS],
        seats=SEATS,
    )
    return room


def restarted(store: db.RoomDB) -> Grid:
    """The grid a new `serve` builds: a new connection to the same file."""
    return Grid(SEATS, STEPS, CHECKED, db.RoomDB(store.path))


def test_a_restart_keeps_each_cell_its_state_time_and_message(store: db.RoomDB) -> None:
    grid = Grid(SEATS, STEPS, CHECKED, store)
    grid.record("s-01", "b", verdict("passed"), attempted=True)
    grid.record("s-02", "b", verdict("passed", "failed"), attempted=True)
    before = grid.snapshot()
    time.sleep(0.05)  # a re-derived time would differ from the recorded one
    again = restarted(store)
    assert again.snapshot() == before
    assert again.cell("s-01", "b").state == DONE
    assert again.cell("s-02", "b").state == FAILING
    assert "check 1: why" in again.cell("s-02", "b").detail
    assert again.cell("s-01", "c").state == NOT_YET


def test_a_step_a_later_step_undid_stays_done_after_a_restart(store: db.RoomDB) -> None:
    grid = Grid(SEATS, STEPS, CHECKED, store)
    grid.record("s-01", "b", verdict("passed"), attempted=False)
    done_at = grid.cell("s-01", "b").changed
    # stop-server removes what publish-port made: the checks now fail, by design
    grid.record("s-01", "b", verdict("failed"), attempted=False)
    grid.record("s-01", "b", verdict("failed"), attempted=True)
    again = restarted(store)
    assert again.cell("s-01", "b").state == DONE
    assert again.cell("s-01", "b").changed == done_at


def test_every_check_and_run_is_recorded_with_its_source(store: db.RoomDB) -> None:
    grid = Grid(SEATS, STEPS, CHECKED, store)
    grid.record("s-01", "b", verdict("failed"), attempted=False)
    grid.record("s-01", "b", verdict(problems=("no checks.py",)), attempted=True)
    grid.record_run("s-01", "b", 1, 2.5, "one\ntwo\nthree\nfour\n")
    grid.opened("s-02")
    events = db.RoomDB(store.path).events()
    assert [(e.kind, e.source, e.outcome) for e in events] == [
        (db.CHECK, db.BY_BACKGROUND, "failed"),
        (db.CHECK, db.BY_CHECK, "problem"),
        (db.RUN, db.BY_RUN, "exit 1"),
        (db.OPENED, db.BY_PAGE, "opened"),
    ]
    assert events[0].messages == ["check 0: why"]
    assert events[1].messages == ["no checks.py"]
    assert events[2].messages == ["two", "three", "four"] and events[2].seconds == 2.5
    assert events[0].at <= events[1].at <= events[2].at


def test_the_instructors_settings_survive_a_restart(store: db.RoomDB) -> None:
    grid = Grid(SEATS, STEPS, CHECKED, store)
    assert grid.run_for_me
    grid.set_run_for_me(False)
    assert not restarted(store).run_for_me
    grid.set_run_for_me(True)
    assert restarted(store).run_for_me


def test_a_reset_clears_the_row_after_a_restart_too(store: db.RoomDB) -> None:
    grid = Grid(SEATS, STEPS, CHECKED, store)
    grid.record("s-01", "b", verdict("passed"), attempted=True)
    grid.set_machine("s-01", SEAT_RESETTING)
    grid.set_machine("s-01", "ready")
    again = restarted(store)
    assert again.cell("s-01", "b").state == NOT_YET
    assert again.snapshot("s-01")["rows"][0]["machine"] == "ready"


def test_a_reset_the_old_server_never_finished_shows_failed(store: db.RoomDB) -> None:
    grid = Grid(SEATS, STEPS, CHECKED, store)
    grid.set_machine("s-02", SEAT_RESETTING)
    assert restarted(store).snapshot("s-02")["rows"][0]["machine"] == SEAT_FAILED


def test_the_database_is_in_wal_mode_and_read_while_written(store: db.RoomDB) -> None:
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    reader = db.RoomDB(store.path)
    grid = Grid(SEATS, STEPS, CHECKED, store)
    grid.record("s-01", "c", verdict("passed"), attempted=True)
    assert [e.step for e in reader.events()] == ["c"]  # committed at once, no close needed
    assert store.path == db.db_path("room")  # in the workshop's folder, the owner's only
    assert store.path.parent.stat().st_mode & 0o777 == 0o700


def test_a_newer_schema_and_a_foreign_file_are_refused(labgen_home: Path) -> None:
    path = labgen_home / "newer.db"
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {db.SCHEMA_VERSION + 1}")
    with pytest.raises(UsageError, match="newer labgen"):
        db.RoomDB(path)
    junk = labgen_home / "junk.db"
    junk.write_text("not sqlite at all, " * 100)
    with pytest.raises(UsageError, match="not a workshop database"):
        db.RoomDB(junk)
    with pytest.raises(UsageError, match="no such database"):
        db.RoomDB(labgen_home / "missing.db")


def test_an_earlier_rooms_database_is_not_taken_over(store: db.RoomDB) -> None:
    assert db.open_room("room", "2026-01-01T00:00:00+00:00").meta()["workshop"] == "room"
    with pytest.raises(UsageError, match="earlier room") as raised:
        db.open_room("room", "2026-02-02T00:00:00+00:00")
    assert "--purge" in str(raised.value.hint)


# --- one server per workshop ----------------------------------------------------------


def test_a_second_holder_is_refused_naming_the_first_servers_address(labgen_home: Path) -> None:
    with lock.hold("room", lock.SERVE) as held:
        held.note("http://127.0.0.1:8123")
        with pytest.raises(UsageError, match=r"already served at http://127\.0\.0\.1:8123"):
            lock.hold("room", lock.SERVE)
        with pytest.raises(UsageError, match=r"being served at http://127\.0\.0\.1:8123"):
            lock.hold("room", lock.DOWN)
    lock.hold("room", lock.SERVE).release()  # released: the next one gets it


def test_a_serve_during_down_is_refused(labgen_home: Path) -> None:
    with lock.hold("room", lock.DOWN), pytest.raises(UsageError, match="being taken down"):
        lock.hold("room", lock.SERVE)


def test_a_killed_holder_holds_nothing(labgen_home: Path) -> None:
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from labgen.workshop import lock\n"
            "held = lock.hold('room', lock.SERVE)\n"
            "held.note('http://127.0.0.1:9999')\n"
            "print('held', flush=True)\n"
            "time.sleep(60)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "held"
        with pytest.raises(UsageError, match="9999"):
            lock.hold("room", lock.SERVE)
    finally:
        child.kill()  # SIGKILL: no clean-up of its own runs
        child.wait()
    lock.hold("room", lock.SERVE).release()
