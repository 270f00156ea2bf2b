"""`labgen workshop report` and the database's life: the report's figures from recorded
events, its three formats, bad input, and the rules of `down` (the database stays until
--purge; refused while a server runs) and of `serve` (one per workshop)."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest
from labgen.core.lab import load_lab
from labgen.workshop import db, lock
from labgen.workshop import report as reports
from labgen.workshop import room as rooms
from unit_helpers import Outcome, invoke_labgen

T0 = 1_800_000_000.0  # a fixed epoch: the figures below are exact
STEPS = [
    db.StepRow("intro", "Intro", False),
    db.StepRow("publish", "Publish", True),
    db.StepRow("curl", "Curl", True),
]


def room_db(name: str = "room", created: str = "2026-01-01T00:00:00+00:00") -> db.RoomDB:
    store = db.open_room(name, created)
    seats = [f"{name}-01", f"{name}-02", f"{name}-03"]
    store.describe(workshop=name, lab="lab", created=created, steps=STEPS, seats=seats)
    return store


def check(store: db.RoomDB, seat: str, step: str, outcome: str, at: float, **kw: object) -> None:
    source = str(kw.get("source", db.BY_CHECK))
    messages = list(kw.get("messages", []))  # type: ignore[call-overload]
    store.add(seat, step, db.CHECK, source, outcome, messages, at=T0 + at)


@pytest.fixture
def store(labgen_home: Path) -> db.RoomDB:
    store = room_db()
    # seat 1: opens at 0, fails publish twice (same message), done at 100, curl at 160
    store.add("room-01", "", db.OPENED, db.BY_PAGE, "opened", at=T0)
    check(store, "room-01", "publish", "failed", 30, messages=["DNAT rule: missing"])
    check(store, "room-01", "publish", "failed", 60, messages=["DNAT rule: missing"])
    check(store, "room-01", "publish", "passed", 100)
    check(store, "room-01", "curl", "passed", 160, source=db.BY_BACKGROUND)
    # seat 2: opens at 10, runs publish for itself, the checker finds it done at 310
    store.add("room-02", "", db.OPENED, db.BY_PAGE, "opened", at=T0 + 10)
    store.add("room-02", "publish", db.RUN, db.BY_RUN, "exit 0", seconds=1.0, at=T0 + 300)
    check(store, "room-02", "publish", "passed", 310, source=db.BY_BACKGROUND)
    check(store, "room-02", "curl", "failed", 320, messages=["curl: refused"])
    # seat 3: never touched; the background checker's failures count for nothing
    check(store, "room-03", "publish", "failed", 50, source=db.BY_BACKGROUND, messages=["x"])
    return store


def test_per_step_times_attempts_and_the_commonest_failure(store: db.RoomDB) -> None:
    report = reports.build(store, now=T0 + 400)
    publish = next(s for s in report.steps if s.step == "publish")
    assert publish.reached == 2
    assert publish.median_seconds == 200.0  # 100 s (seat 1) and 300 s (seat 2)
    assert (publish.slowest_seconds, publish.slowest_seat) == (300.0, "room-02")
    assert publish.attempts == 4  # three Checks by seat 1, one run by seat 2
    assert publish.failures == 2
    assert (publish.commonest_failure, publish.commonest_count) == ("DNAT rule: missing", 2)
    assert publish.here_now == 1  # seat 3
    curl = next(s for s in report.steps if s.step == "curl")
    assert (curl.reached, curl.median_seconds, curl.here_now) == (1, 60.0, 1)
    assert curl.commonest_failure == "curl: refused"


def test_per_seat_the_steps_done_when_and_where_they_are_now(store: db.RoomDB) -> None:
    seats = {s.seat: s for s in reports.build(store, now=T0 + 400).seats}
    one, two, three = seats["room-01"], seats["room-02"], seats["room-03"]
    assert [(d.step, d.at, d.source, d.seconds) for d in one.done] == [
        ("publish", T0 + 100, db.BY_CHECK, 100.0),
        ("curl", T0 + 160, db.BY_BACKGROUND, 60.0),
    ]
    assert one.at_step == "" and one.attempts == {"publish": 3}
    assert (two.at_step, two.at_state, two.since) == ("curl", "failing", T0 + 310)
    assert two.last_failure == "curl: refused"
    assert (three.at_step, three.at_state, three.started, three.done) == (
        "publish",
        "not-yet",
        0.0,
        [],
    )


def test_a_reset_starts_the_seat_over_but_keeps_its_attempts(store: db.RoomDB) -> None:
    store.add("room-01", "", db.MACHINE, db.BY_INSTRUCTOR, "resetting", at=T0 + 200)
    store.add("room-01", "", db.MACHINE, db.BY_INSTRUCTOR, "ready", at=T0 + 210)
    check(store, "room-01", "publish", "failed", 220, messages=["DNAT rule: missing"])
    report = reports.build(store, now=T0 + 400)
    one = next(s for s in report.seats if s.seat == "room-01")
    assert one.done == [] and (one.at_step, one.at_state) == ("publish", "failing")
    assert one.last_failure == "DNAT rule: missing"
    publish = next(s for s in report.steps if s.step == "publish")
    assert publish.failures == 3 and publish.reached == 1


# --- the command --------------------------------------------------------------------------


def assert_exit_2(result: Outcome, pattern: str) -> None:
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 2, f"exit {result.returncode}: {result.stdout}{result.stderr}"
    assert re.search(pattern, result.stderr, re.DOTALL), result.stderr


def test_the_report_as_text_json_and_csv(store: db.RoomDB) -> None:
    text = invoke_labgen("workshop", "report", "room")
    assert text.returncode == 0, text.stderr
    assert "DNAT rule: missing (x2)" in text.stdout and "room-02" in text.stdout
    as_json = invoke_labgen("workshop", "report", "room", "--json")
    data = json.loads(as_json.stdout)
    assert data["workshop"] == "room" and len(data["seats"]) == 3
    assert data["steps"][1]["median_seconds"] == 200.0
    rows = list(
        csv.DictReader(io.StringIO(invoke_labgen("workshop", "report", "room", "--csv").stdout))
    )
    assert len(rows) == 6  # three seats x two checked steps
    first = rows[0]
    assert (first["seat"], first["step"], first["state"], first["seconds"]) == (
        "room-01",
        "publish",
        "done",
        "100.0",
    )
    assert first["attempts"] == "3"


@pytest.mark.parametrize(
    ("args", "pattern"),
    [
        (["nobody"], r"no workshop called 'nobody' has a database.*room"),
        (["../etc"], r"invalid workshop name"),
        (["room", "--json", "--csv"], r"pick one"),
    ],
)
def test_bad_report_input_is_a_clear_exit_2(
    store: db.RoomDB, args: list[str], pattern: str
) -> None:
    assert_exit_2(invoke_labgen("workshop", "report", *args), pattern)


def test_the_database_outlives_down_until_purge(labgen_home: Path) -> None:
    lab = load_lab("port-forwarding")
    room = rooms.create("pf", lab.name, str(lab.path), 2)  # seats never brought up
    room_db("pf", room.created).close()
    down = invoke_labgen("workshop", "down", "pf")
    assert down.returncode == 0, down.stderr
    assert "--purge" in down.stdout and not room.path.exists()
    assert invoke_labgen("workshop", "report", "pf", "--json").returncode == 0
    # a new room of that name would take over the old one's progress: refused
    assert_exit_2(
        invoke_labgen("workshop", "up", "port-forwarding", "--seats", "1", "--name", "pf"),
        r"database of an earlier room",
    )
    purge = invoke_labgen("workshop", "down", "pf", "--purge")
    assert purge.returncode == 0, purge.stderr
    assert not db.room_dir("pf").exists()
    assert_exit_2(invoke_labgen("workshop", "report", "pf"), r"no workshop called 'pf'")
    assert_exit_2(invoke_labgen("workshop", "down", "pf", "--purge"), r"no workshop called 'pf'")


def test_down_while_served_is_refused_and_a_second_serve_too(labgen_home: Path) -> None:
    lab = load_lab("port-forwarding")
    room = rooms.create("pf", lab.name, str(lab.path), 1)
    with lock.hold("pf", lock.SERVE) as held:
        held.note("http://127.0.0.1:8765")
        assert_exit_2(
            invoke_labgen("workshop", "down", "pf"), r"being served at http://127\.0\.0\.1:8765"
        )
        assert room.path.exists()  # nothing was removed
        assert_exit_2(
            invoke_labgen("workshop", "serve", "pf", "--listen", "127.0.0.1:0"),
            r"already served at http://127\.0\.0\.1:8765",
        )
    assert invoke_labgen("workshop", "down", "pf").returncode == 0


def test_the_timeline_steps_up_when_each_seat_gets_a_step_done(store: db.RoomDB) -> None:
    from labgen.workshop import pages

    drawn = pages.timeline(reports.build(store, now=T0 + 400), 400, 100)
    lines = {line["step"]: line for line in drawn["lines"]}  # type: ignore[attr-defined]
    # from the first attendee's first sign (T0) to the report (T0 + 400): 1 px a second;
    # three seats: each seat done is a third of the height
    assert lines["publish"]["points"] == (
        "0.0,100.0 100.0,100.0 100.0,66.7 310.0,66.7 310.0,33.3 400.0,33.3"
    )
    assert lines["curl"]["reached"] == 1
    assert set(lines) == {"publish", "curl"}  # a step without checks has no line
    empty = room_db("other")
    assert pages.timeline(reports.build(empty), 400, 100)["lines"] == []
