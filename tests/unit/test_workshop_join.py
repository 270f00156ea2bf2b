"""Handing out seats without machines: the seating's rules on a real room database (who
gets which seat, re-issue and free revoking tokens, a restart, a change from a second
connection as the command line makes it), the schema's migration, the join page and
the instructor's seat routes on a loopback server, the command line's refusals, and
the printers' escaping of names."""

# The loopback server is test_workshop_app's `served` fixture, imported: its name is
# then both the import and each test's parameter, which pytest means and F811 flags.
# ruff: noqa: F811

from __future__ import annotations

import json
import sqlite3
import threading
import urllib.request
from pathlib import Path

import pytest
from helpers import labgen, show
from labgen.core.errors import UsageError
from labgen.core.lab import load_lab
from labgen.ui import console
from labgen.ui import room as room_ui
from labgen.workshop import db, join, sheet
from labgen.workshop import room as rooms
from test_workshop_app import Served, fetch, opened, served  # noqa: F401  # the fixture

SEATS = ["jn-01", "jn-02", "jn-03"]


@pytest.fixture
def room(labgen_home: Path) -> rooms.Room:
    lab = load_lab("port-forwarding")
    return rooms.create("jn", lab.name, str(lab.path), len(SEATS))


def seating_of(room: rooms.Room) -> join.Seating:
    """A Seating on a connection of its own, as a server or the command line opens it."""
    return join.Seating(room, db.open_room(room.name, room.created))


class Heard:
    """What a Seating tells its grid and its server."""

    def __init__(self) -> None:
        self.attendees: dict[str, str] = {}
        self.revoked: list[str] = []

    def set_attendee(self, seat: str, attendee: str, joined: float) -> None:
        self.attendees[seat] = attendee


# --- names -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "why"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("x" * 41, "too long"),
        ("a\x07b", "control"),
        ("a\u200bb", "control"),
        ("a\x1b[31mb", "control"),
    ],
)
def test_a_bad_name_is_refused_saying_why(given: str, why: str) -> None:
    with pytest.raises(UsageError, match=why):
        join.clean_name(given)


def test_a_name_is_kept_tidy_and_compared_loosely() -> None:
    assert join.clean_name(" Zoë   O'Brien-Smith ") == "Zoë O'Brien-Smith"
    assert join.clean_name("x" * 40) == "x" * 40
    assert join.clean_name("Ada\tLove\nlace") == "Ada Love lace"  # whitespace is a space
    assert join.clean_name("Ada\tLove\nlace") == "Ada Love lace"  # whitespace is a space
    assert join.same_name("Zoë o'brien-smith", "ZOË  O'BRIEN-SMITH")
    assert not join.same_name("", "")  # a free seat's empty name is nobody's


def test_a_room_code_reads_off_a_projector() -> None:
    codes = {join.new_code() for _ in range(200)}
    assert len(codes) > 190  # random, not a counter
    assert all(len(c) == 6 and not set(c) & set("01ilo") for c in codes)


# --- the seating's rules ---------------------------------------------------------------


def test_the_join_page_gives_free_seats_in_order_and_skips_assigned_ones(
    room: rooms.Room,
) -> None:
    places = seating_of(room)
    places.assign("jn-01", "Linus", join.BY_COMMAND_LINE)
    assert places.join("Ada").seat == "jn-02"
    with pytest.raises(join.Refused, match="has a seat already") as twice:
        places.join("  ADA ")
    assert twice.value.status == 409
    with pytest.raises(join.Refused, match="has a seat already"):
        places.join("linus")  # an assigned name is not given a second seat either
    assert places.join("Grace").seat == "jn-03"
    with pytest.raises(join.Refused, match="The room is full: all 3 seats") as full:
        places.join("Carol")
    assert full.value.status == 409
    assert [(s.attendee, s.how) for s in places.seats()] == [
        ("Linus", db.ASSIGNED),
        ("Ada", db.JOINED),
        ("Grace", db.JOINED),
    ]


def test_a_closed_join_page_seats_nobody(room: rooms.Room) -> None:
    places = seating_of(room)
    places.set_open(False)
    with pytest.raises(join.Refused, match="closed") as closed:
        places.join("Ada")
    assert closed.value.status == 403
    assert all(s.how == db.FREE for s in places.seats())
    places.set_open(True)
    assert places.join("Ada").seat == "jn-01"


def test_a_seat_someones_cannot_be_assigned_to_another(room: rooms.Room) -> None:
    places = seating_of(room)
    places.join("Ada")
    with pytest.raises(UsageError, match="jn-01 is taken: Ada has it") as refused:
        places.assign("jn-01", "Bob", join.BY_PAGE)
    assert "free it first" in str(refused.value.hint)
    assert places.state("jn-01").attendee == "Ada"


def test_reissue_revokes_the_old_token_and_keeps_the_attendee(room: rooms.Room) -> None:
    places = seating_of(room)
    first = places.join("Ada")
    assert first.token == room.seat_tokens["jn-01"] and first.generation == 1
    again = places.reissue("jn-01", join.BY_PAGE)
    assert places.owner(first.token) is None
    assert places.owner(again.token) == "jn-01"
    assert again.attendee == "Ada" and again.generation == 2
    assert places.store.token_generations("jn-01") == [(1, True), (2, False)]
    assert room.seat_tokens["jn-01"] == again.token  # what serve prints next


def test_free_takes_the_seat_and_its_token_for_the_next_attendee(room: rooms.Room) -> None:
    places = seating_of(room)
    ada = places.join("Ada")
    freed = places.free("jn-01", join.BY_COMMAND_LINE)
    assert (freed.attendee, freed.how, freed.generation) == ("", db.FREE, 2)
    assert places.owner(ada.token) is None
    grace = places.join("Grace")
    assert grace.seat == "jn-01" and grace.token != ada.token
    log = [(c.seat, c.action, c.attendee, c.generation) for c in places.store.seating_log()]
    assert log == [
        ("jn-01", db.JOIN, "Ada", 1),
        ("jn-01", db.RELEASE, "Ada", 2),
        ("jn-01", db.JOIN, "Grace", 2),
    ]


def test_a_restart_keeps_the_seating_and_the_room_code(room: rooms.Room) -> None:
    places = seating_of(room)
    places.join("Ada")
    places.assign("jn-03", "Linus", join.BY_PAGE)
    kept = places.reissue("jn-03", join.BY_PAGE)
    places.set_open(False)
    places.store.close()

    again = seating_of(rooms.load(room.name))  # a new serve: the record read again
    assert [(s.attendee, s.how, s.generation) for s in again.seats()] == [
        ("Ada", db.JOINED, 1),
        ("", db.FREE, 1),
        ("Linus", db.ASSIGNED, 2),
    ]
    assert again.code == places.code and again.open is False
    assert again.owner(kept.token) == "jn-03"
    assert again.room.seat_tokens["jn-03"] == kept.token  # not the record's first one


def test_a_running_server_sees_the_command_lines_change_at_its_next_request(
    room: rooms.Room,
) -> None:
    heard = Heard()
    server = join.Seating(room, db.open_room(room.name, room.created), heard, heard.revoked.append)
    ada = server.join("Ada")
    assert heard.attendees["jn-01"] == "Ada"
    command_line = seating_of(rooms.load(room.name))
    command_line.reissue("jn-01", join.BY_COMMAND_LINE)
    command_line.free("jn-02", join.BY_COMMAND_LINE)
    command_line.assign("jn-02", "Bob", join.BY_COMMAND_LINE)
    assert server.owner(ada.token) is None  # revoked at once, no restart
    assert "jn-01" in heard.revoked
    assert heard.attendees["jn-02"] == "Bob"


def test_two_servers_joining_at_once_never_share_a_seat(room: rooms.Room) -> None:
    """The seat is taken by a conditional UPDATE: two connections racing cannot both win."""
    sides = [seating_of(room), seating_of(rooms.load(room.name))]
    got: list[str] = []
    refused: list[int] = []
    lock = threading.Lock()

    def attendee(number: int) -> None:
        try:
            seat = sides[number % 2].join(f"Person {number}").seat
        except join.Refused as exc:
            with lock:
                refused.append(exc.status)
            return
        with lock:
            got.append(seat)

    threads = [threading.Thread(target=attendee, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sorted(got) == SEATS and refused == [409] * 5


def test_a_seat_is_named_by_its_name_or_number(room: rooms.Room) -> None:
    assert join.seat_named(room, "3") == join.seat_named(room, "03") == "jn-03"
    with pytest.raises(UsageError, match=r"no seat '7' \(its seats: jn-01 ... jn-03"):
        join.seat_named(room, "7")


# --- the schema ------------------------------------------------------------------------


def test_a_room_of_the_first_schema_is_migrated_keeping_its_seats(labgen_home: Path) -> None:
    path = db.db_path("old")
    path.parent.mkdir(parents=True)
    with sqlite3.connect(path) as conn:
        conn.executescript(db._SCHEMA + "PRAGMA user_version = 1;")
        conn.execute("INSERT INTO seats (seat, attendee, added) VALUES ('old-01', '', 0)")
    with db.RoomDB(path) as store:
        assert store._read("PRAGMA user_version")[0][0] == db.SCHEMA_VERSION == 2
        [row] = store.seating()
        assert (row.seat, row.how, row.generation) == ("old-01", db.FREE, 0)
        store.first_tokens({"old-01": "t1"})
        assert store.seating()[0].token == "t1"


# --- the pages, on a loopback server ---------------------------------------------------


def post_form(url: str, name: str) -> tuple[int, dict[str, str], str]:
    body = urllib.parse.urlencode({"name": name}).encode()
    request = urllib.request.Request(url, data=body, method="POST")
    request.add_header("Content-Type", "application/x-www-form-urlencoded")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode()


def code_of(served: Served) -> str:
    return str(served.service.store.settings()[join.CODE_SETTING])  # type: ignore[union-attr]


def test_the_join_page_answers_only_its_code(served: Served) -> None:
    code = code_of(served)
    status, headers, body = fetch(f"{served.base}/j/{code}")
    assert status == 200 and 'maxlength="40"' in body and "Take a seat" in body
    assert headers["referrer-policy"] == "same-origin"
    wrong = "zzzzzz" if code != "zzzzzz" else "yyyyyy"
    assert fetch(f"{served.base}/j/{wrong}")[::2] == (404, "Not Found")
    assert post_form(f"{served.base}/j/{wrong}", "Ada")[::2] == (404, "Not Found")


def test_a_joined_browser_gets_the_seats_cookies_and_names_are_escaped(served: Served) -> None:
    url = f"{served.base}/j/{code_of(served)}"
    status, headers, body = post_form(url, "<script>alert(1)</script>")
    assert status == 200 and 'url=/w/pf-01/"' in body
    cookies = [v for k, v in headers.items() if k.lower() == "set-cookie"]
    assert "Path=/w/pf-01/" in cookies[0] and "HttpOnly" in cookies[0]
    status, _, body = post_form(url, "<SCRIPT>alert(1)</SCRIPT>")
    assert status == 409 and "&lt;SCRIPT&gt;alert(1)&lt;/SCRIPT&gt; has a seat" in body
    assert "<SCRIPT>" not in body
    status, _, body = post_form(url, "y" * 300)
    assert status == 400 and "too long" in body
    assert [s.how for s in served.service.store.seating()] == [db.JOINED, db.FREE]  # type: ignore[union-attr]


def test_the_instructors_seat_routes_want_the_instructors_token(served: Served) -> None:
    seat_token = served.room.seat_tokens["pf-01"]
    for action in ("assign", "free", "reissue"):
        url = f"{served.base}/i/{seat_token}/seats/pf-01/{action}"
        assert fetch(url, "POST", b"{}")[::2] == (404, "Not Found")
    assert fetch(f"{served.base}/i/{seat_token}/sheet")[::2] == (404, "Not Found")
    bad = fetch(served.instructor + "seats/pf-01/assign", "POST", b'{"attendee": 3}')
    assert bad[0] == 400
    assert fetch(served.instructor + "join", "POST", b'{"open": "no"}')[0] == 400


def test_the_instructor_reissues_and_the_old_link_is_a_bare_404(served: Served) -> None:
    old = served.seat_url("pf-02")
    assert fetch(old)[0] == 200
    status, _, body = fetch(served.instructor + "seats/pf-02/reissue", "POST", b"{}")
    answer = json.loads(body)
    assert status == 200 and answer["generation"] == 2
    assert fetch(old)[::2] == fetch(served.seat_url("pf-02", "x" * 32))[::2] == (404, "Not Found")
    assert fetch(answer["link"])[0] == 200
    status, _, body = fetch(served.instructor + "seats/pf-02/assign", "POST", b'{"attendee": "A"}')
    assert status == 200
    status, _, body = fetch(served.instructor + "seats/pf-02/assign", "POST", b'{"attendee": "B"}')
    assert status == 409 and "free it first" in json.loads(body)["hint"]


def test_the_sheet_has_a_card_per_seat_and_nothing_to_fetch(served: Served) -> None:
    status, headers, body = opened(served.instructor + "sheet")  # the link, then the cookie
    assert status == 200 and headers["cache-control"] == "no-store"
    assert body.count('class="card"') == 2 and body.count("<svg") == 3  # and the join card
    for seat in ("pf-01", "pf-02"):
        assert (
            f'data-link="{sheet.seat_url(served.base, seat, served.room.seat_tokens[seat])}"'
            in body
        )
    assert "http" not in body.replace(served.base, "")  # no other host named, nothing fetched


# --- the command line and its printers -------------------------------------------------


def test_the_command_line_refuses_bad_seats_and_names_with_exit_2(room: rooms.Room) -> None:
    cases = [
        (("assign", "jn", "9", "Ada"), "no seat '9'"),
        (("assign", "jn", "1", "x" * 41), "too long"),
        (("free", "nope", "1"), "no workshop called 'nope'"),
        (("reissue", "jn", "jn-77"), "no seat 'jn-77'"),
    ]
    for args, message in cases:
        proc = labgen("workshop", *args)
        assert proc.returncode == 2, show(proc)
        assert message in proc.stderr and "Traceback" not in proc.stderr, show(proc)


MARKERS = ("[docker]", "[/tmp/x]", "[bold]")
M = " ".join(MARKERS)


def test_names_and_links_are_printed_as_they_are(
    room: rooms.Room, capsys: pytest.CaptureFixture[str]
) -> None:
    """rich reads markup in what it prints: an attendee's name must not be read so."""
    places = seating_of(room)
    places.assign("jn-01", M, join.BY_COMMAND_LINE)
    record = places.describe()
    console.out.width = 1000
    room_ui.print_seats(record, as_json=False, links=True)
    room_ui.print_seat_change(record, record.seats[0], "assign")
    room_ui.print_serving(room, M, M, M)
    shown = capsys.readouterr().out
    assert shown.count("[docker] [/tmp/x] [bold]") >= 4, shown
