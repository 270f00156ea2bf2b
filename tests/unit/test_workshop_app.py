"""The web app on a real loopback server (uvicorn), without machines: who may open what,
the headers, the pages and the event stream. Checks and terminals need a machine: the
e2e test covers them."""

from __future__ import annotations

import json
import re
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from labgen.core.context import Context
from labgen.core.errors import PrerequisiteError
from labgen.core.lab import load_lab
from labgen.core.results import CheckResult, CheckRun
from labgen.workshop import db, pages, server
from labgen.workshop import room as rooms
from labgen.workshop.service import RoomService


class Served:
    def __init__(self, base: str, room: rooms.Room, service: RoomService):
        self.base, self.room, self.service = base, room, service

    def seat_url(self, seat: str, token: str | None = None) -> str:
        return f"{self.base}/w/{seat}/{token or self.room.seat_tokens[seat]}/"

    @property
    def instructor(self) -> str:
        return f"{self.base}/i/{self.room.instructor_token}/"


@pytest.fixture
def served(labgen_home: Path) -> Iterator[Served]:
    lab = load_lab("port-forwarding")
    room = rooms.create("pf", lab.name, str(lab.path), 2)
    store = db.open_room(room.name, room.created)  # as `workshop serve` opens it
    service = RoomService(room, Context(), store=store)
    service.checker.start = lambda: None  # type: ignore[method-assign]  # no machines here
    ready = threading.Event()
    stop = threading.Event()
    base: list[str] = []

    def on_ready(url: str) -> None:
        base.append(url)
        ready.set()

    thread = threading.Thread(
        target=server.serve, args=(service, "127.0.0.1:0", on_ready, 60, stop), daemon=True
    )
    thread.start()
    try:
        assert ready.wait(15), "the server did not start"
        yield Served(base[0], room, service)
    finally:
        stop.set()
        thread.join(15)
        assert not thread.is_alive(), "the server did not stop"


def fetch(
    url: str, method: str = "GET", body: bytes | None = None
) -> tuple[int, dict[str, str], str]:
    request = urllib.request.Request(url, data=body, method=method)
    if body is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode()


def opened(url: str) -> tuple[int, dict[str, str], str]:
    """A printed link as a browser opens it: the cookie it sets, sent to the page it
    redirects to (fetch alone gets the redirecting page)."""
    status, headers, body = fetch(url)
    if status != 200 or "set-cookie" not in {k.lower() for k in headers}:
        return status, headers, body
    target = re.search(r'http-equiv="refresh" content="0; url=([^"]+)"', body)
    assert target, body
    cookie = next(v for k, v in headers.items() if k.lower() == "set-cookie").split(";")[0]
    base = url.split("/w/")[0] if "/w/" in url else url.split("/i/")[0]
    request = urllib.request.Request(base + target[1], headers={"Cookie": cookie})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, dict(response.headers), response.read().decode()


def test_a_seats_token_opens_its_seat_only(served: Served) -> None:
    status, headers, body = opened(served.seat_url("pf-01"))
    assert status == 200 and "pf-01" in body and "Publish port 5000" in body
    other = served.room.seat_tokens["pf-02"]
    assert fetch(served.seat_url("pf-01", other))[0] == 403
    assert fetch(served.seat_url("pf-01", other) + "check/publish-port", "POST")[0] == 403
    assert fetch(served.seat_url("pf-01", other) + "run/publish-port", "POST")[0] == 403
    assert fetch(served.seat_url("pf-01", served.room.instructor_token))[0] == 403


@pytest.mark.parametrize(
    "path",
    [
        "/w/pf-01/{bad}/",
        "/w/pf-01/{bad}/events",
        "/w/pf-09/{seat2}/",  # a seat that does not exist, with a real token
        "/i/{bad}/",
        "/i/{seat1}/",  # a seat's token is nobody's on the instructor's page
        "/i/{bad}/grid.csv",
        "/i/{bad}/report",
        "/i/{seat1}/report.json",
        "/nowhere",
    ],
)
def test_what_no_token_opens_is_a_bare_404(served: Served, path: str) -> None:
    url = served.base + path.format(
        bad="A" * 32,
        seat1=served.room.seat_tokens["pf-01"],
        seat2=served.room.seat_tokens["pf-02"],
    )
    status, headers, body = fetch(url)
    assert (status, body) == (404, "Not Found")
    assert "server" not in {k.lower() for k in headers}


def ws_refusal(url: str) -> tuple[int, str] | None:
    """The status and body a websocket handshake to `url` is refused with (None: accepted)."""
    from websockets.sync.client import connect

    try:
        with connect(url.replace("http://", "ws://"), open_timeout=10):
            return None
    except Exception as exc:  # websockets' InvalidStatus carries the response
        response = getattr(exc, "response", None)
        if response is None:
            raise
        return int(response.status_code), bytes(response.body or b"").decode()


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        # the attendee's routes: another's token is 403, nobody's a bare 404
        ("GET", "/w/pf-01/{seat2}/", 403),
        ("GET", "/w/pf-01/{seat2}/events", 403),
        ("POST", "/w/pf-01/{instructor}/check/publish-port", 403),
        ("POST", "/w/pf-01/{bad}/run/publish-port", 404),
        ("POST", "/w/pf-09/{seat1}/check/publish-port", 404),
        # the instructor's: a seat's token is nobody's there; so is a seat that is not
        ("GET", "/i/{seat1}/events", 404),
        ("POST", "/i/{seat1}/run-for-me", 404),
        ("POST", "/i/{bad}/seats/pf-01/reset", 404),
        ("POST", "/i/{instructor}/seats/pf-09/reset", 404),
        ("GET", "/i/{seat2}/seats/pf-01/watch", 404),
        ("GET", "/i/{instructor}/seats/pf-09/watch", 404),
    ],
)
def test_a_denied_request_is_403_or_a_bare_404_on_every_route(
    served: Served, method: str, path: str, status: int
) -> None:
    url = served.base + path.format(
        bad="A" * 32,
        seat1=served.room.seat_tokens["pf-01"],
        seat2=served.room.seat_tokens["pf-02"],
        instructor=served.room.instructor_token,
    )
    code, headers, body = fetch(url, method, b"{}" if method == "POST" else None)
    assert (code, body) == (status, "Forbidden" if status == 403 else "Not Found")
    assert headers["content-security-policy"].startswith("default-src 'self'")
    assert served.service.grid.run_for_me  # a refused {} never reached the handler


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/w/pf-01/{seat2}/terminal", 403),
        ("/w/pf-01/{instructor}/terminal", 403),
        ("/w/pf-01/{bad}/terminal", 404),
        ("/w/pf-09/{seat2}/terminal", 404),
        ("/i/{seat1}/seats/pf-01/terminal", 404),
        ("/i/{instructor}/seats/pf-09/terminal", 404),
    ],
)
def test_a_denied_terminal_is_refused_at_the_handshake(
    served: Served, path: str, status: int
) -> None:
    url = served.base + path.format(
        bad="A" * 32,
        seat1=served.room.seat_tokens["pf-01"],
        seat2=served.room.seat_tokens["pf-02"],
        instructor=served.room.instructor_token,
    )
    assert ws_refusal(url) == (status, "Forbidden" if status == 403 else "Not Found")


def test_pages_load_nothing_from_elsewhere(served: Served) -> None:
    for url in (served.seat_url("pf-01"), served.instructor):
        status, headers, body = opened(url)
        assert status == 200
        assert headers["content-security-policy"].startswith("default-src 'self'")
        assert headers["referrer-policy"] == "no-referrer"
        links = re.findall(r'(?:src|href)="([^"]*)"', body)
        assert links and all("//" not in link for link in links), links
    assert fetch(served.base + "/static/vendor/xterm.js")[0] == 200  # setup-workshop.sh


def test_the_instructor_turns_run_it_for_me_off(served: Served) -> None:
    assert served.service.grid.run_for_me
    status, _, body = fetch(served.instructor + "run-for-me", "POST", b'{"enabled": false}')
    assert status == 200 and json.loads(body) == {"run_for_me": False}
    status, _, body = fetch(served.seat_url("pf-01") + "run/curl", "POST")
    assert status == 403 and "turned" in json.loads(body)["error"]


def test_the_event_stream_starts_with_the_grid(served: Served) -> None:
    with urllib.request.urlopen(served.instructor + "events", timeout=10) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        first = stream.readline().decode()
    event = json.loads(first.removeprefix("data: "))
    assert event["type"] == "grid" and [r["seat"] for r in event["rows"]] == ["pf-01", "pf-02"]
    assert event["rows"][0]["cells"]["publish-port"]["state"] == "not-yet"
    assert event["rows"][0]["cells"]["nat-baseline"]["state"] == "no-checks"


def test_the_csv_downloads_as_a_file(served: Served) -> None:
    status, headers, body = fetch(served.instructor + "grid.csv")
    assert status == 200 and headers["content-type"].startswith("text/csv")
    assert "attachment" in headers["content-disposition"]
    assert body.splitlines()[1].startswith("pf-01,ready,no-checks,")


def test_a_missing_front_end_says_how_to_get_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(pages, "VENDOR", tmp_path)
    with pytest.raises(PrerequisiteError, match="xterm.js") as raised:
        pages.require_vendor()
    assert "setup-workshop.sh" in str(raised.value.hint)


def test_listen_addresses_are_parsed_or_refused() -> None:
    assert server.parse_listen("0.0.0.0:80") == ("0.0.0.0", 80)
    for bad in ("localhost:80", "127.0.0.1", "127.0.0.1:99999"):
        with pytest.raises(Exception, match="--listen"):
            server.parse_listen(bad)


def test_the_instructor_page_shows_the_rooms_report_with_a_chart(served: Served) -> None:
    grid = served.service.grid
    passed = CheckRun("pf", "publish-port", True, [CheckResult("c", "t", None, "passed", "", 0)])
    failed = CheckRun("pf", "curl", True, [CheckResult("c", "the page", None, "failed", "no", 0)])
    grid.record("pf-01", "publish-port", passed, attempted=True)
    grid.record("pf-01", "curl", failed, attempted=True)
    status, headers, body = fetch(served.instructor + "report")
    assert status == 200 and headers["cache-control"] == "no-store"
    assert '<svg xmlns="http://www.w3.org/2000/svg"' in body and "//" not in body.replace(
        "http://www.w3.org/2000/svg", ""
    )
    assert re.search(r'data-step="publish-port" data-reached="1"', body)
    assert re.search(r'data-step="curl" data-reached="0"', body)
    assert "the page: no (×1)" in body
    assert re.search(
        r'<polyline points="[^"]+" class="line line-0" data-step="publish-port">', body
    )
    status, _, text = fetch(served.instructor + "report.json")
    data = json.loads(text)
    assert status == 200 and data["workshop"] == "pf"
    steps = {s["step"]: s for s in data["steps"]}
    assert steps["publish-port"]["reached"] == 1 and steps["curl"]["failures"] == 1
    page = opened(served.instructor)[2]
    assert 'id="report"' in page


@pytest.mark.parametrize(
    "body", [b"not json", b"\xff\xfe", b"[]", b'"on"', b'{"enabled": 1}', b"{}"]
)
def test_a_malformed_run_for_me_body_is_a_400_and_changes_nothing(
    served: Served, body: bytes
) -> None:
    status, _, text = fetch(served.instructor + "run-for-me", "POST", body)
    assert status == 400 and "enabled" in json.loads(text)["error"]
    assert served.service.grid.run_for_me


@pytest.mark.parametrize(
    ("query", "target"),
    [
        ("?n=2", "/i/seats/pf-01/watch?n=2"),
        ("?n=22", "/i/seats/pf-01/watch"),
        ("?n=%3Cb%3E", "/i/seats/pf-01/watch"),
        ("", "/i/seats/pf-01/watch"),
    ],
)
def test_a_watch_link_keeps_which_terminal_it_shows(
    served: Served, query: str, target: str
) -> None:
    """Regression: the first visit's redirect dropped `?n=2`, so the instructor's link to
    an attendee's Terminal 2 showed Terminal 1; only a single digit is carried over."""
    token = served.room.instructor_token
    status, _, body = fetch(f"{served.base}/i/{token}/seats/pf-01/watch{query}")
    assert status == 200
    found = re.search(r'http-equiv="refresh" content="0; url=([^"]+)"', body)
    assert found and found[1] == target, body


def test_a_command_typed_in_a_terminal_is_the_attendees_last_activity(served: Served) -> None:
    """Regression: a key that ended a line poked the checker only, so an attendee who
    typed for an hour showed on the grid as last active when they opened the page."""
    before = served.service.grid.snapshot("pf-01")["rows"][0]["active"]
    served.service._typed("pf-01")  # what the terminal calls on Enter
    after = served.service.grid.snapshot("pf-01")["rows"][0]["active"]
    assert after > before
