"""Handing out seats (issue 19, item 4), in headless Chromium: the join page gives a
name a seat and the same browser comes back to it; a second browser with another name
gets another; a full room and a closed join page say so; the instructor's grid shows
each seat's attendee, whether its page is open and the last activity; a re-issued link
(from the grid) and a freed seat (from the command line, beside the running server)
open nothing, with the bare 404 of a wrong token, and the new link does; the printed
sheet's QR codes, rendered by Chromium and decoded by zxing-cpp, are the seats' links;
a restarted `serve` keeps all of it.

No machine is brought up: nothing here touches one (the attendee's page opens without
its terminal), and the room is made as `workshop up` makes its record. Debian's
chromium, driven by Playwright through its executable path; the server on loopback
with a deadline of its own, stopped at the end.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from helpers import CHROMIUM, CHROMIUM_FLAGS, labgen, labgen_json, show

pytestmark = pytest.mark.e2e

NAME = "jt"
SEATS = [f"{NAME}-01", f"{NAME}-02", f"{NAME}-03"]
SERVER_DEADLINE = 300  # seconds: the server stops by itself even if this test hangs
LIVE = 15_000  # ms: a grid change reaches the page within a second or two; this bounds it
MARKED = "Grace <b>Hopper</b>"  # a name with markup: it must show as text, everywhere


class Serving:
    """`workshop serve` on a free loopback port: the links it printed, the join page's."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "labgen", "workshop", "serve", NAME, "--listen", "127.0.0.1:0"]
            + ["--stop-after", str(SERVER_DEADLINE)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "COLUMNS": "300"},
        )
        self.urls: dict[str, str] = {}
        self.join = ""
        try:
            self._read()
        except BaseException:
            self.stop()
            raise

    def _read(self) -> None:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 60
        while not self.join and time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            found = re.match(r"^(\S+): (http://\S+)$", line.strip())
            if found:
                self.urls[found[1]] = found[2]
            joining = re.match(r"^join page, to show the room: (http://\S+)$", line.strip())
            if joining:
                self.join = joining[1]
        assert set(self.urls) == {"instructor", *SEATS}, self.urls
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/j/[a-z2-9]{6}", self.join), self.join

    @property
    def base(self) -> str:
        return self.urls["instructor"].split("/i/")[0]

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def seating() -> dict[str, dict[str, Any]]:
    """`labgen workshop seats --json --links`: each seat's attendee, how, link."""
    code, data = labgen_json("workshop", "seats", NAME, "--links")
    assert code == 0, data
    return {s["seat"]: s for s in data["seats"]}


def decoded(element: Any) -> list[str]:
    """What the QR code Chromium drew in `element` says, read by zxing-cpp from a
    screenshot of it (the rendered pixels, not the data the page was made from)."""
    import zxingcpp
    from PIL import Image

    image = Image.open(io.BytesIO(element.screenshot()))
    return [found.text for found in zxingcpp.read_barcodes(image)]


def join_as(context: Any, url: str, name: str) -> Any:
    """A page of `context` that opened the join page and sent `name`."""
    page = context.new_page()
    page.goto(url)
    page.fill("#name", name)
    page.click("#join-form button[type=submit]")
    page.wait_for_load_state()
    return page


class Story:
    """One room served, one Chromium, a browser context per person; what the phases
    of the story share."""

    def __init__(self, serving: Serving, browser: Any, shots: Path) -> None:
        self.serving, self.browser, self.shots = serving, browser, shots
        self.base, self.join = serving.base, serving.join
        self.outside: list[str] = []  # requests that left the server: there must be none
        self.row = {seat: f'tr[data-seat="{seat}"]' for seat in SEATS}
        self.ada, self.grace, self.carol, self.teacher = (self.context() for _ in range(4))
        self.room: Any = None  # the instructor's page, once open
        self.page: Any = None  # Ada's seat page
        self.bad_token = get(f"{self.base}/w/{SEATS[0]}/{'x' * 32}/")
        assert self.bad_token == (404, "Not Found")

    def context(self, **options: Any) -> Any:
        made = self.browser.new_context(viewport={"width": 1400, "height": 900}, **options)
        made.on(
            "request",
            lambda r: self.outside.append(r.url) if not r.url.startswith(self.base) else None,
        )
        return made


def seats_are_joined(story: Story) -> None:
    """A name gets a seat and the same browser comes back to it; that name from another
    browser is refused; another name gets the next seat; a full room says so."""
    base, join = story.base, story.join
    other = "zzzzzz" if not join.endswith("zzzzzz") else "yyyyyy"
    assert get(join.rsplit("/", 1)[0] + "/" + other) == (404, "Not Found")  # a wrong code
    story.page = page = join_as(story.ada, join, "Ada Lovelace")
    page.wait_for_url(f"{base}/w/{SEATS[0]}/")
    page.wait_for_selector("#step-publish-port")
    cookies = {c["name"]: c for c in story.ada.cookies()}
    assert set(cookies) == {"labgen-seat", "labgen-join"}, cookies
    assert cookies["labgen-join"]["path"] == "/j/"
    assert all(c["httpOnly"] and c["sameSite"] == "Strict" for c in cookies.values())
    again = story.ada.new_page()
    again.goto(join)
    again.wait_for_url(f"{base}/w/{SEATS[0]}/")
    again.close()

    twice = join_as(story.grace, join, "ada  lovelace")
    assert "has a seat already" in twice.inner_text("#message")
    assert twice.url == join, "a name already seated was given a seat"
    seat2 = join_as(story.grace, join, MARKED)
    seat2.wait_for_url(f"{base}/w/{SEATS[1]}/")
    seat2.wait_for_selector("#step-publish-port")

    full = join_as(story.carol, join, "Carol Shaw")  # seat 3 is kept for Linus
    assert "The room is full" in full.inner_text("#message"), full.content()
    assert full.url == join
    full.close()


def the_grid_shows_who_is_there(story: Story) -> None:
    """Each row: the attendee's name (as text), connected or not, the last activity."""
    row = story.row
    story.room = room = story.teacher.new_page()
    room.goto(story.serving.urls["instructor"])
    room.wait_for_selector("#link.up")
    assert room.inner_text("#join-url") == story.join
    room.wait_for_selector(f'{row[SEATS[0]]}[data-connected="yes"]', timeout=LIVE)
    room.wait_for_selector(f'{row[SEATS[1]]}[data-connected="yes"]', timeout=LIVE)
    assert room.inner_text(f"{row[SEATS[0]]} .attendee-name") == "Ada Lovelace"
    assert room.inner_text(f"{row[SEATS[1]]} .attendee-name") == MARKED
    assert room.locator(f"{row[SEATS[1]]} .attendee-name b").count() == 0
    assert room.inner_text(f"{row[SEATS[2]]} .attendee-name") == "Linus Torvalds"
    assert room.get_attribute(row[SEATS[2]], "data-connected") == "no"
    assert room.inner_text(f"{row[SEATS[2]]} .connected") == "not connected"
    assert room.inner_text(f"{row[SEATS[2]]} .active") == ""  # assigned: Linus did nothing
    active = room.inner_text(f"{row[SEATS[0]]} .active")
    assert re.fullmatch(r"· active \d\d:\d\d:\d\d", active), active
    assert float(room.get_attribute(row[SEATS[0]], "data-active") or 0) > 0
    story.grace.close()  # Grace's page goes: her row says so
    room.wait_for_selector(f'{row[SEATS[1]]}[data-connected="no"]', timeout=LIVE)
    room.screenshot(path=str(story.shots / "instructor-seats.png"), full_page=True)


def a_reissued_link_opens_nothing(story: Story) -> str:
    """Seat 1 re-issued from the grid: its old link and its browser's cookie get the
    bare 404 of a wrong token, its open page's stream is closed, the join page no
    longer knows that browser's seat; the new link opens the seat. The new link."""
    room, row, base = story.room, story.row, story.base
    old_link = story.serving.urls[SEATS[0]]
    room.on("dialog", lambda dialog: dialog.accept())
    room.click(f"{row[SEATS[0]]} button.reissue")
    room.wait_for_selector("#seat-link:has-text('has a new link')", timeout=LIVE)
    assert get(old_link) == story.bad_token
    dead = story.ada.new_page()
    answer = dead.goto(f"{base}/w/{SEATS[0]}/")  # the old cookie
    assert answer is not None and answer.status == 404
    assert dead.inner_text("body") == "Not Found"
    lost = dead.goto(story.join)
    assert lost is not None and lost.status == 200
    assert "given a new link" in dead.inner_text("#message")
    new_link = str(seating()[SEATS[0]]["link"])
    assert new_link != old_link and get(new_link)[0] == 200
    # the page the old cookie opened had its stream closed, and cannot reopen it
    room.wait_for_selector(f'{row[SEATS[0]]}[data-connected="no"]', timeout=LIVE)
    return new_link


def the_sheet_carries_each_seats_link(story: Story, new_link: str) -> None:
    """A card per seat whose QR code, as Chromium draws it, decodes to the seat's
    current link; the join card's to the join page."""
    sheet = story.context(device_scale_factor=2).new_page()
    sheet.goto(story.serving.urls["instructor"] + "sheet")
    sheet.wait_for_url(f"{story.base}/i/sheet")
    links = {seat: s["link"] for seat, s in seating().items()}
    assert links[SEATS[0]] == new_link
    assert sheet.locator(".card[data-seat]").count() == len(SEATS)
    for seat in SEATS:
        card = sheet.locator(f"#card-{seat}")
        assert card.locator(".qr").get_attribute("data-link") == links[seat]
        assert decoded(card.locator(".qr svg")) == [links[seat]], seat
    assert decoded(sheet.locator("#card-join .qr svg")) == [story.join]
    assert sheet.inner_text(f"#card-{SEATS[2]} .who") == "Linus Torvalds"
    assert sheet.locator(f"#card-{SEATS[1]} .who b").count() == 0
    sheet.screenshot(path=str(story.shots / "sheet.png"), full_page=True)


def a_freed_seat_goes_to_the_next(story: Story) -> None:
    """Seat 2 freed from the command line beside the running server: the grid shows it
    free, its link is dead, and the join page gives it to the next name; then the
    instructor closes the join page and a newcomer is told so."""
    freed = labgen("workshop", "free", NAME, SEATS[1])
    assert freed.returncode == 0, show(freed)
    story.room.wait_for_selector(
        f'{story.row[SEATS[1]]}[data-attendee=""]', state="attached", timeout=LIVE
    )
    assert get(story.serving.urls[SEATS[1]]) == story.bad_token
    carol = join_as(story.carol, story.join, "Carol Shaw")
    carol.wait_for_url(f"{story.base}/w/{SEATS[1]}/")

    story.room.uncheck("#join-open")
    late = story.context().new_page()
    late.goto(story.join)
    late.wait_for_selector("#message")
    assert "closed this room's join page" in late.inner_text("#message")
    assert late.locator("#join-form").count() == 0


def kept(seats: dict[str, dict[str, Any]]) -> list[tuple[str, str, int, str]]:
    """Who sits where and with which token (a link's base is the server's port)."""
    return [
        (s["attendee"], s["how"], s["generation"], s["link"].split("/w/")[1])
        for s in (seats[seat] for seat in SEATS)
    ]


def test_the_join_page_hands_out_seats(labgen_home: Path, tmp_path: Path) -> None:
    from labgen.core.lab import load_lab
    from labgen.workshop import room as rooms
    from playwright.sync_api import sync_playwright

    lab = load_lab("port-forwarding")
    rooms.create(NAME, lab.name, str(lab.path), len(SEATS))
    shots = Path(os.environ.get("LABGEN_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)

    # seat 3 kept for a name before the room opens: the join page never hands it out
    assigned = labgen("workshop", "assign", NAME, "3", "Linus Torvalds")
    assert assigned.returncode == 0, show(assigned)
    taken = labgen("workshop", "assign", NAME, "3", "Somebody Else")
    assert taken.returncode == 2 and "free it first" in taken.stderr, show(taken)
    assert "Traceback" not in taken.stderr

    serving = Serving()
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
            try:
                story = Story(serving, browser, shots)
                seats_are_joined(story)
                the_grid_shows_who_is_there(story)
                new_link = a_reissued_link_opens_nothing(story)
                the_sheet_carries_each_seats_link(story, new_link)
                a_freed_seat_goes_to_the_next(story)
            finally:
                browser.close()
    finally:
        serving.stop()
    assert not story.outside, f"the pages asked for something outside the server: {story.outside}"

    # --- a restarted serve keeps who sits where, the tokens and the closed join page ----
    before = kept(seating())
    assert [b[:3] for b in before] == [
        ("Ada Lovelace", "joined", 2),
        ("Carol Shaw", "joined", 2),
        ("Linus Torvalds", "assigned", 1),
    ]
    again = Serving()
    try:
        assert kept(seating()) == before
        assert [again.urls[s].split("/w/")[1] for s in SEATS] == [b[3] for b in before]
        old_link = serving.urls[SEATS[0]].replace(serving.base, again.base)
        assert get(old_link) == (404, "Not Found")
        assert get(again.urls[SEATS[0]])[0] == 200
        status, body = get(again.join)
        assert status == 403 and "closed this room" in body
    finally:
        again.stop()
