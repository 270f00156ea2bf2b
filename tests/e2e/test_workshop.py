"""A real workshop: two seats of port-forwarding, `workshop serve`, and headless Chromium.

Debian's chromium, driven by Playwright for Python through its executable path (never a
browser Playwright downloads). The server runs on loopback with a deadline of its own,
and is stopped at the end; the seats are always removed with `workshop down`.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from helpers import CHROMIUM, CHROMIUM_FLAGS, labgen, labgen_json, show

pytestmark = pytest.mark.e2e

NAME = "wst"
SEAT1, SEAT2 = f"{NAME}-01", f"{NAME}-02"
SERVER_DEADLINE = 600  # seconds: the server stops by itself even if this test hangs
CADENCE = 30.0  # a poked seat is checked within seconds; this bounds it generously


@pytest.fixture
def seats(labgen_home: Path) -> Iterator[None]:
    """Two seats of port-forwarding, removed after the test, pass or fail."""
    try:
        proc = labgen(
            "workshop", "up", "port-forwarding", "--seats", "2", "--name", NAME, "-j", "2"
        )
        assert proc.returncode == 0, show(proc)
        yield
    finally:
        down = labgen("workshop", "down", NAME)
        assert down.returncode == 0, show(down)
        assert not list((labgen_home / "instances").glob(f"{NAME}-*")), "a seat was left"
        assert not (labgen_home / "workshops" / f"{NAME}.json").exists()


class Serving:
    """A `workshop serve` child process on a free loopback port, and the URLs it printed
    (and, over TLS, the certificate's fingerprint)."""

    def __init__(
        self,
        name: str = NAME,
        seats: tuple[str, ...] = (SEAT1, SEAT2),
        *extra: str,
        listen: str = "127.0.0.1:0",  # a restart that pages come back to takes the port again
    ) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "labgen", "workshop", "serve", name, "--listen", listen]
            + ["--stop-after", str(SERVER_DEADLINE), *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "COLUMNS": "300"},
        )
        self.urls: dict[str, str] = {}
        self.fingerprint = ""
        self.scheme = "https" if extra else "http"
        try:
            self._read_urls({"instructor", *seats})
        except BaseException:
            self.stop()
            raise

    def _read_urls(self, expected: set[str]) -> None:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 60
        while len(self.urls) < len(expected) and time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            found = re.match(r"^(\S+): (https?://\S+)$", line.strip())
            if found:
                self.urls[found[1]] = found[2]
            printed = re.match(r"^certificate SHA-256: (\S+)$", line.strip())
            if printed:
                self.fingerprint = printed[1]
        assert set(self.urls) == expected, f"the server printed {self.urls}"
        prefix = f"{self.scheme}://127.0.0.1:"
        assert all(u.startswith(prefix) for u in self.urls.values()), self.urls

    @property
    def base(self) -> str:
        """http(s)://127.0.0.1:PORT, as the server names itself."""
        return self.urls["instructor"].split("/i/")[0]

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def server(seats: None) -> Iterator[dict[str, str]]:
    """`workshop serve` on a free loopback port: the URLs it printed."""
    serving = Serving()
    try:
        yield serving.urls
    finally:
        serving.stop()


def http(method: str, url: str) -> tuple[int, str]:
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def ws_status(url: str) -> int | None:
    """The HTTP status a websocket handshake to `url` is refused with (None: accepted)."""
    from websockets.sync.client import connect

    try:
        with connect(url.replace("http://", "ws://"), open_timeout=10):
            return None
    except Exception as exc:  # websockets' InvalidStatus carries the response
        response = getattr(exc, "response", None)
        if response is None:
            raise
        return int(response.status_code)


def token_of(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[1]


def screen(page: object) -> str:
    """What the terminal shows: the text of xterm.js's rows on the page."""
    return str(page.locator(".xterm-rows").inner_text())  # type: ignore[attr-defined]


def test_a_workshop_in_a_real_browser(server: dict[str, str], tmp_path: Path) -> None:
    # Imported here, not skipped: a missing Playwright fails this test, loudly.
    from playwright.sync_api import sync_playwright

    seat1, seat2, instructor = server[SEAT1], server[SEAT2], server["instructor"]
    shots = Path(os.environ.get("LABGEN_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)

    # --- tokens: a token opens only its own seat; nobody's token is a bare 404 ------------
    other = seat1.replace(token_of(seat1), token_of(seat2))
    assert http("GET", other)[0] == 403
    assert http("POST", other + "check/publish-port")[0] == 403
    assert ws_status(other + "terminal") == 403
    assert http("GET", seat1.replace(token_of(seat1), token_of(instructor)))[0] == 403
    wrong = seat1.replace(token_of(seat1), "x" * 32)
    for method, url in [("GET", wrong), ("POST", wrong + "check/publish-port")]:
        assert http(method, url) == (404, "Not Found")
    assert ws_status(wrong + "terminal") == 404
    assert http("GET", instructor.replace(token_of(instructor), token_of(seat1))) == (
        404,
        "Not Found",
    )
    assert http("GET", seat1.replace(SEAT1, f"{NAME}-07")) == (404, "Not Found")

    with sync_playwright() as pw:
        browser = pw.chromium.launch_persistent_context(
            tempfile.mkdtemp(prefix="chromium-", dir=tmp_path),
            executable_path=CHROMIUM,
            args=CHROMIUM_FLAGS,
            headless=True,
            viewport={"width": 1400, "height": 900},
        )
        outside: list[str] = []
        browser.on(
            "request",
            lambda r: (
                outside.append(r.url)
                if not r.url.startswith(("http://127.0.0.1", "ws://127.0.0.1", "data:"))
                else None
            ),
        )
        try:
            room = browser.new_page()
            room.goto(instructor)
            room.wait_for_selector("#link.up")
            cell = f'tr[data-seat="{SEAT1}"] td[data-step="publish-port"]'
            assert room.get_attribute(cell, "data-state") == "not-yet"

            # --- the attendee's terminal: a real shell on seat 1's machine ----------------
            page = browser.new_page()
            page.goto(seat1)
            page.wait_for_selector("#link.up")
            page.wait_for_function(
                "() => document.querySelector('.xterm-rows').innerText.includes('$')"
            )
            page.click("#terminal")
            page.keyboard.type("sudo iptables -t nat -L -n\n")
            page.wait_for_function(
                "() => /Chain DOCKER \\(2 references\\)/.test("
                "document.querySelector('.xterm-rows').innerText)",
                timeout=20000,
            )
            text = screen(page)
            docker_chain = text[text.index("Chain DOCKER") :]
            assert re.search(r"RETURN\s+\S+\s+--\s+0\.0\.0\.0/0\s+0\.0\.0\.0/0", docker_chain)

            # --- "Run it for me", then Check, on publish-port ------------------------------
            step = page.locator("#step-publish-port")
            listed = step.locator(".verdicts li.pending").count()  # the step's checks, by name
            assert listed >= 1
            step.locator("button.run").click()
            step.locator(".output:not([hidden])").wait_for(timeout=120000)
            assert "[exit 0" in step.locator(".output").inner_text()
            step.locator("button.check").click()
            step.locator(".verdicts li.passed").first.wait_for(timeout=120000)
            verdicts = step.locator(".verdicts li")
            assert verdicts.count() == listed, verdicts.all_inner_texts()
            assert step.locator(".verdicts li.passed").count() == listed, verdicts.all_inner_texts()
            assert step.locator(".state").get_attribute("data-state") == "done"
            page.screenshot(path=str(shots / "attendee.png"))

            # --- the instructor's cell turns done, live -----------------------------------
            began = time.monotonic()
            room.wait_for_selector(f'{cell}[data-state="done"]', timeout=CADENCE * 1000)
            assert re.search(r"done\d\d:\d\d:\d\d", room.inner_text(cell).replace("\n", ""))

            # The background checker: curl typed in the terminal, never Checked by hand,
            # turns seat 1's curl cell done; seat 2, which did nothing, stays not yet.
            page.click("#terminal")
            page.keyboard.type("curl -XGET http://localhost:5000\n")
            curl_cell = f'tr[data-seat="{SEAT1}"] td[data-step="curl"]'
            began = time.monotonic()
            room.wait_for_selector(f'{curl_cell}[data-state="done"]', timeout=CADENCE * 1000)
            background_seconds = time.monotonic() - began
            seat2_cell = f'tr[data-seat="{SEAT2}"] td[data-step="publish-port"]'
            assert room.get_attribute(seat2_cell, "data-state") == "not-yet"
            room.screenshot(path=str(shots / "instructor.png"))

            # --- the instructor watches seat 1's terminal; their keys go nowhere ----------
            watch = browser.new_page()
            watch.goto(instructor + f"seats/{SEAT1}/watch")
            watch.wait_for_function(
                "() => document.querySelector('.xterm-rows').innerText.includes('Chain DOCKER')"
            )
            watch.click("#terminal")
            watch.keyboard.type("echo WATCHER-TYPED\n")
            page.keyboard.type("echo attendee-typed\n")
            page.wait_for_function(
                "() => document.querySelector('.xterm-rows').innerText.includes('attendee-typed')"
            )
            watch.wait_for_function(
                "() => document.querySelector('.xterm-rows').innerText.includes('attendee-typed')"
            )
            assert "WATCHER-TYPED" not in screen(page)
            watch.screenshot(path=str(shots / "watch.png"))

            # --- "Run it for me" off: the button goes, and the server refuses it ----------
            room.uncheck("#run-for-me")
            page.wait_for_selector("#step-curl button.run", state="hidden")
            assert http("POST", seat1 + "run/curl")[0] == 403
        finally:
            browser.close()
    assert not outside, f"the pages asked for something outside the server: {outside}"

    # --- the grid as CSV --------------------------------------------------------------
    status, body = http("GET", instructor + "grid.csv")
    assert status == 200
    rows = {line.split(",")[0]: line.split(",") for line in body.splitlines()}
    header = rows["seat"]
    assert rows[SEAT1][header.index("publish-port")] == "done"
    assert rows[SEAT1][header.index("curl")] == "done"
    assert rows[SEAT2][header.index("publish-port")] == "not-yet"

    # `workshop status` sees both seats answer; a Check that passed is recorded progress.
    code, data = labgen_json("workshop", "status", NAME)
    assert code == 0
    seats_json = {s["seat"]: s for s in data[0]["seats"]}
    assert {s["state"] for s in seats_json.values()} == {"ready"}
    assert "publish-port" in seats_json[SEAT1]["steps_run"]
    print(json.dumps({"background_check_seconds": round(background_seconds, 1)}))


def first_event(url: str) -> dict[str, object]:
    """The first server-sent event of a stream: the grid as the server holds it."""
    with urllib.request.urlopen(url, timeout=30) as stream:
        line = stream.readline().decode()
    return dict(json.loads(line.removeprefix("data: ")))


def post_json(url: str, body: dict[str, object]) -> tuple[int, str]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.status, response.read().decode()


def cells_of(grid: dict[str, object]) -> dict[tuple[str, str], dict[str, object]]:
    rows = grid["rows"]
    assert isinstance(rows, list)
    return {(r["seat"], step): c for r in rows for step, c in r["cells"].items()}


def test_a_restarted_server_keeps_the_room(seats: None, labgen_home: Path, tmp_path: Path) -> None:
    """Issue 19, items 1 and 7: one server per workshop, no `down` under it, and a
    server started again shows the grid it had: states, the times they changed, the
    instructor's settings, a step a later step undid still done."""
    from playwright.sync_api import sync_playwright

    shots = Path(os.environ.get("LABGEN_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    first = Serving()
    try:
        # --- a second server of the room is refused, naming the first; so is down --------
        second = labgen("workshop", "serve", NAME, "--listen", "127.0.0.1:0", timeout=60)
        assert second.returncode == 2, show(second)
        assert f"already served at {first.base}" in second.stderr, show(second)
        assert "Traceback" not in second.stderr
        down = labgen("workshop", "down", NAME, timeout=60)
        assert down.returncode == 2 and f"being served at {first.base}" in down.stderr, show(down)
        assert (labgen_home / "instances" / SEAT1).is_dir(), "down removed a seat anyway"

        seat1, seat2, instructor = first.urls[SEAT1], first.urls[SEAT2], first.urls["instructor"]
        # seat 1: publish-port run and checked (done), then stop-server, which undoes
        # publish-port's rules; seat 2: a Check of publish-port that fails
        assert http("POST", seat1 + "run/publish-port")[0] == 200
        status, body = http("POST", seat1 + "check/publish-port")
        assert status == 200 and json.loads(body)["cell"] == "done", body
        assert http("POST", seat1 + "run/stop-server")[0] == 200
        status, body = http("POST", seat1 + "check/stop-server")
        assert status == 200 and json.loads(body)["cell"] == "done", body
        status, body = http("POST", seat1 + "check/publish-port")  # its rules are gone now
        assert status == 200 and json.loads(body)["ok"] is False, body
        status, body = http("POST", seat2 + "check/publish-port")
        assert status == 200 and json.loads(body)["cell"] == "failing", body
        assert post_json(instructor + "run-for-me", {"enabled": False})[0] == 200
        before = first_event(instructor + "events")
    finally:
        first.stop()

    kept = [(SEAT1, "publish-port"), (SEAT1, "stop-server"), (SEAT2, "publish-port")]
    was = cells_of(before)
    assert [was[k]["state"] for k in kept] == ["done", "done", "failing"], before
    time.sleep(1.5)  # a time re-derived after the restart could not equal the recorded one

    again = Serving()
    try:
        assert again.urls[SEAT1].split("/w/")[1] == first.urls[SEAT1].split("/w/")[1]
        after = first_event(again.urls["instructor"] + "events")
        now = cells_of(after)
        for key in kept:
            assert now[key] == was[key], f"{key}: {was[key]} before, {now[key]} after"
        assert after["run_for_me"] is False
        status, body = http("POST", again.urls[SEAT1] + "run/curl")
        assert status == 403, body

        with sync_playwright() as pw:
            browser = pw.chromium.launch_persistent_context(
                tempfile.mkdtemp(prefix="chromium-", dir=tmp_path),
                executable_path=CHROMIUM,
                args=CHROMIUM_FLAGS,
                headless=True,
                viewport={"width": 1400, "height": 1100},
            )
            try:
                room = browser.new_page()
                room.goto(again.urls["instructor"])
                room.wait_for_selector("#link.up")
                cell = f'tr[data-seat="{SEAT1}"] td[data-step="publish-port"]'
                room.wait_for_selector(f'{cell}[data-state="done"]')
                # the time shown is the time it was done, not the time of the restart
                shown = room.inner_text(f"{cell} small")
                expected = time.strftime("%H:%M:%S", time.localtime(float(was[kept[0]]["changed"])))
                assert shown == expected, (shown, expected)
                failing = f'tr[data-seat="{SEAT2}"] td[data-step="publish-port"]'
                assert room.get_attribute(failing, "data-state") == "failing"
                assert not room.is_checked("#run-for-me")
                # the report under the grid: publish-port reached by one seat of two
                bar = '#report g[data-step="publish-port"]'
                room.wait_for_selector(bar)
                assert room.get_attribute(bar, "data-reached") == "1"
                row = '#report-steps tr[data-step="publish-port"]'
                assert room.inner_text(f"{row} .reached") == "1/2"
                room.screenshot(path=str(shots / "instructor-after-restart.png"), full_page=True)
                page = browser.new_page()
                page.goto(again.urls[SEAT1])
                page.wait_for_selector("#link.up")
                page.wait_for_selector("#step-curl button.run", state="hidden")
                page.wait_for_selector('#step-publish-port .state[data-state="done"]')
            finally:
                browser.close()
    finally:
        again.stop()

    # the report reads the database with no server running, and after down
    code, data = labgen_json("workshop", "report", NAME)
    assert code == 0
    steps = {s["step"]: s for s in data["steps"]}
    assert steps["publish-port"]["reached"] == 1 and steps["publish-port"]["failures"] >= 2
    assert steps["publish-port"]["attempts"] >= 4  # run, 2 Checks on seat 1; 1 on seat 2


def test_tls_in_a_real_browser(labgen_home: Path, tmp_path: Path) -> None:
    """Issue 19, item 3, without machines (the pages need none): `workshop serve --tls`
    makes a certificate and prints its fingerprint, the one the port presents, the same
    after a restart; Chromium (taking the self-signed certificate) opens the printed
    links, is sent on to URLs without the token (the history holds none either), and
    holds HttpOnly, Secure, SameSite=Strict cookies that script cannot read; plain HTTP
    on the port gets no answer."""
    import hashlib
    import ssl

    from labgen.core.lab import load_lab
    from labgen.workshop import room as rooms
    from playwright.sync_api import sync_playwright

    lab = load_lab("port-forwarding")
    room = rooms.create("tls", lab.name, str(lab.path), 1)
    seat = room.seats[0]
    shots = Path(os.environ.get("LABGEN_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    serving = Serving("tls", (seat,), "--tls")
    try:
        base = serving.base
        port = int(base.rsplit(":", 1)[1])
        der = ssl.PEM_cert_to_DER_cert(ssl.get_server_certificate(("127.0.0.1", port)))
        presented = hashlib.sha256(der).digest().hex(":").upper()
        assert serving.fingerprint == presented, (serving.fingerprint, presented)
        key = labgen_home / "workshops" / "tls" / "key.pem"
        assert key.stat().st_mode & 0o777 == 0o600

        # plain HTTP on the TLS port: no page, no redirect carrying the token in clear
        plain = serving.urls[seat].replace("https://", "http://")
        with pytest.raises((urllib.error.URLError, ConnectionError, http_errors())):
            urllib.request.urlopen(plain, timeout=10)

        with sync_playwright() as pw:
            browser = pw.chromium.launch_persistent_context(
                tempfile.mkdtemp(prefix="chromium-", dir=tmp_path),
                executable_path=CHROMIUM,
                args=[*CHROMIUM_FLAGS, "--ignore-certificate-errors"],
                headless=True,
                ignore_https_errors=True,
                viewport={"width": 1400, "height": 900},
            )
            outside: list[str] = []
            browser.on(
                "request",
                lambda r: (
                    outside.append(r.url)
                    if not r.url.startswith((base, base.replace("https", "wss"), "data:"))
                    else None
                ),
            )
            try:
                room_page = browser.new_page()
                room_page.goto(serving.urls["instructor"])
                room_page.wait_for_url(f"{base}/i/")
                room_page.wait_for_selector("#link.up")  # the event stream, by cookie
                assert room.instructor_token not in room_page.url
                assert room_page.evaluate("document.cookie") == ""  # HttpOnly
                room_page.screenshot(path=str(shots / "instructor-tls.png"))
                # Back skips the token URL: the redirect replaced its history entry
                room_page.go_back()
                assert room_page.url == "about:blank", room_page.url

                page = browser.new_page()
                page.goto(serving.urls[seat])
                page.wait_for_url(f"{base}/w/{seat}/")
                page.wait_for_selector("#step-publish-port")
                assert room.seat_tokens[seat] not in page.url
                page.reload()  # the cookie, not the URL, opens the page from now on
                page.wait_for_selector("#step-publish-port")
                assert page.evaluate("window.isSecureContext") is True

                cookies = {c["name"]: c for c in browser.cookies()}
                assert set(cookies) == {"labgen-instructor", "labgen-seat"}, cookies
                for name, path, token in [
                    ("labgen-instructor", "/i/", room.instructor_token),
                    ("labgen-seat", f"/w/{seat}/", room.seat_tokens[seat]),
                ]:
                    cookie = cookies[name]
                    assert cookie["value"] == token and cookie["path"] == path, cookie
                    assert cookie["httpOnly"] and cookie["secure"], cookie
                    assert cookie["sameSite"] == "Strict", cookie

                # another site's page opening the instructor's watch terminal, even with
                # the token in hand: refused at the handshake (its Origin is not ours)
                with evil_site(
                    f"{base.replace('https', 'wss')}/i/{room.instructor_token}"
                    f"/seats/{seat}/terminal"
                ) as evil:
                    attack = browser.new_page()
                    attack.goto(evil)
                    attack.wait_for_function("() => document.title !== 'waiting'")
                    assert attack.title() == "refused", attack.title()
            finally:
                browser.close()
        outside = [u for u in outside if not u.startswith(EVIL)]
        assert not outside, f"the pages asked for something outside the server: {outside}"
    finally:
        serving.stop()

    again = Serving("tls", (seat,), "--tls")  # a restart: the same certificate
    try:
        assert again.fingerprint == serving.fingerprint
    finally:
        again.stop()


def http_errors() -> type[Exception]:
    import http.client

    return http.client.HTTPException


EVIL = "http://127.0.0.1:"  # the attacker's page, on another port: another origin


@contextmanager
def evil_site(target: str) -> Iterator[str]:
    """A page on another origin that opens a websocket to `target`; its title says
    "opened" or "refused". Served on loopback for the test's length."""
    import http.server
    import threading

    page = (
        "<!doctype html><title>waiting</title><script>"
        f"const ws = new WebSocket({json.dumps(target)});"
        "ws.onopen = () => { document.title = 'opened'; };"
        "ws.onclose = () => { if (document.title === 'waiting') document.title = 'refused'; };"
        "</script>"
    ).encode()

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802  # the name http.server calls
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args: object) -> None:
            pass

    site = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=site.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"{EVIL}{site.server_address[1]}/"
    finally:
        site.shutdown()
        site.server_close()
        thread.join(5)
