"""Shells that outlive the server (issue 19, item 2), on a real seat in headless Chromium.

One workshop of one seat of the netns lab, the lab that asks for a second terminal:
Terminal 1 gets a variable, a working directory and a container's shell in the
foreground (`docker run -it busybox`); `workshop serve` is stopped and started again,
and the page, reconnected by itself and then reloaded, finds the same shell with its
screen; Terminal 2 is another shell on the same machine, whose history the mouse wheel
scrolls; the instructor's watch shows Terminal 1 and cannot type into it, nor change
its size, and `watch?n=2` shows Terminal 2. The seat is always removed with
`workshop down`, and every server started here is stopped.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from helpers import CHROMIUM, CHROMIUM_FLAGS, labgen, show
from test_workshop import Serving, cells_of, first_event, http

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page

pytestmark = pytest.mark.e2e

NAME = "wsh"
SEAT = f"{NAME}-01"
VIEWPORT = {"width": 1400, "height": 900}
WATCH_VIEWPORT = {"width": 640, "height": 480}  # smaller than the attendee's terminal
PROMPT = r"\$\s*$"  # the shell waits at its prompt, on the last line written


@pytest.fixture
def seat(labgen_home: Path) -> Iterator[None]:
    """One seat of netns, removed after the test, pass or fail."""
    try:
        proc = labgen("workshop", "up", "netns", "--seats", "1", "--name", NAME)
        assert proc.returncode == 0, show(proc)
        yield
    finally:
        down = labgen("workshop", "down", NAME)
        assert down.returncode == 0, show(down)
        assert not list((labgen_home / "instances").glob(f"{NAME}-*")), "the seat was left"


def rows_of(n: int) -> str:
    """A page's expression for the text Terminal `n` shows (the watch page has one)."""
    return (
        f"(document.querySelector('[data-terminal=\"{n}\"] .xterm-rows')"
        " || document.querySelector('.xterm-rows')).innerText"
    )


def wait_text(page: Page, n: int, pattern: str, timeout: float = 20000) -> str:
    """Wait until Terminal `n` shows a match of `pattern` (a regex); the text shown."""
    page.wait_for_function(
        f"() => new RegExp({json.dumps(pattern)}).test({rows_of(n)})", timeout=timeout
    )
    return str(page.evaluate(f"() => {rows_of(n)}"))


def typed(page: Page, text: str) -> None:
    """Keys for the page's active terminal, as the steps' buttons send them."""
    page.evaluate("(text) => window.labTerminalType(text)", text)


def test_the_restart_keeps_the_grid_and_the_shell(seat: None, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    shots = Path(os.environ.get("LABGEN_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    figures: dict[str, float] = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch_persistent_context(
            tempfile.mkdtemp(prefix="chromium-", dir=tmp_path),
            executable_path=CHROMIUM,
            args=CHROMIUM_FLAGS,
            headless=True,
            viewport=VIEWPORT,
        )
        try:
            first = Serving(NAME, (SEAT,))
            try:
                page = browser.new_page()
                shell_pid, before = before_the_restart(page, first)
            finally:
                first.stop()
            page.wait_for_selector("#link.down")  # the server is gone, and the page says so
            stopped = time.monotonic()
            again = Serving(NAME, (SEAT,), listen=first.base.removeprefix("http://"))
            try:
                assert again.urls[SEAT] == first.urls[SEAT]  # the same room, the same tokens
                after = cells_of(first_event(again.urls["instructor"] + "events"))
                assert after[(SEAT, "run-container")] == before, (before, after)
                page.wait_for_selector("#link.up", timeout=30000)  # back by itself
                figures["reconnected_seconds"] = round(time.monotonic() - stopped, 1)
                figures.update(the_same_shell(page, shell_pid, shots))
                another_shell(page, shell_pid, shots)
                watched(browser, page, again.urls["instructor"], shell_pid, shots)
            finally:
                again.stop()
        finally:
            browser.close()
    print(json.dumps(figures))


def before_the_restart(page: Page, served: Serving) -> tuple[str, dict[str, object]]:
    """Terminal 1 gets a variable, a directory and a container's shell in front, and
    the grid a done step: the shell's pid and the grid's cell."""
    seat_url = served.urls[SEAT]
    page.goto(seat_url)
    page.wait_for_selector("#link.up")
    wait_text(page, 1, PROMPT)
    page.click("#terminal")
    page.keyboard.type('cd /tmp; X=42; echo "shell=$$"\n')
    shell_pid = re.findall(r"^shell=(\d+)", wait_text(page, 1, r"shell=\d+"), re.M)[0]
    page.keyboard.type("docker run --pull never --name nstest -it busybox\n")
    wait_text(page, 1, r"/ # \s*$")
    typed(page, "echo busybox-before\r")
    wait_text(page, 1, r"\nbusybox-before")
    status, body = http("POST", seat_url + "check/run-container")
    assert status == 200 and json.loads(body)["cell"] == "done", body
    cell = cells_of(first_event(served.urls["instructor"] + "events"))[(SEAT, "run-container")]
    return shell_pid, cell


def the_same_shell(page: Page, shell_pid: str, shots: Path) -> dict[str, float]:
    """After the restart, then after a reload: the screen of before, the container's
    shell still in front, and behind it the same shell with its variable and directory."""
    text = wait_text(page, 1, "busybox-before")  # tmux drew the screen again
    assert f"shell={shell_pid}" in text and "docker run --pull never" in text, text
    page.screenshot(path=str(shots / "shells-after-restart.png"))
    began = time.monotonic()
    page.reload()  # a closed tab, or a reload: the same again
    page.wait_for_selector("#link.up")
    text = wait_text(page, 1, "busybox-before")
    seconds = round(time.monotonic() - began, 1)
    assert f"shell={shell_pid}" in text, text
    typed(page, "echo busybox-after\r")  # the container's shell still runs: it answers
    wait_text(page, 1, r"\nbusybox-after")
    typed(page, "\x10\x11")  # Ctrl-P Ctrl-Q: Docker's keys to leave it running
    wait_text(page, 1, PROMPT)
    typed(page, 'echo "x=$X pwd=$(pwd) pid=$$"\r')
    wait_text(page, 1, rf"x=42 pwd=/tmp pid={shell_pid}\b")
    return {"reload_to_screen_seconds": seconds}


def another_shell(page: Page, shell_pid: str, shots: Path) -> None:
    """Terminal 2: another shell on the same machine (it sees Terminal 1's container),
    whose history the mouse wheel scrolls (tmux's copy mode; q leaves it)."""
    page.click('[data-terminal-tab="2"]')
    wait_text(page, 2, PROMPT)
    assert page.locator('[data-terminal="1"]').is_hidden()
    typed(page, "echo \"x=[$X] pid=$$\"; docker ps --format 'up:{{.Names}}'\r")
    text = wait_text(page, 2, r"up:nstest")
    other_pid = re.findall(r"^x=\[\] pid=(\d+)", text, re.M)
    assert other_pid and other_pid[0] != shell_pid, text
    typed(page, "seq 1 300\r")
    wait_text(page, 2, r"\n300\n")
    page.mouse.move(VIEWPORT["width"] * 0.75, VIEWPORT["height"] / 2)
    for _ in range(6):  # the first turn of the wheel starts copy mode, the next ones scroll
        page.mouse.wheel(0, -200)
        page.wait_for_timeout(100)
    text = wait_text(page, 2, r"\[[1-9]\d*/\d+\]")  # tmux's position, lines up its history
    assert "\n300\n" not in text, text
    typed(page, "q")
    wait_text(page, 2, r"\n300\n.*\$\s*$")
    page.screenshot(path=str(shots / "shells-terminal-2.png"))


def watched(
    browser: BrowserContext, page: Page, instructor: str, shell_pid: str, shots: Path
) -> None:
    """The instructor's watch shows Terminal 1; its keys go nowhere, and its size
    (smaller than the attendee's) leaves the attendee's window as it was."""
    page.click('[data-terminal-tab="1"]')
    size = page.evaluate("() => [window.labTerminal.rows, window.labTerminal.cols]")
    watch = browser.new_page()
    watch.set_viewport_size(WATCH_VIEWPORT)
    watch.goto(instructor + f"seats/{SEAT}/watch")
    wait_text(watch, 1, f"pid={shell_pid}")
    watch.click("#terminal")
    watch.keyboard.type("echo WATCHER-TYPED\n")
    watch_size = watch.evaluate("() => [window.labTerminal.rows, window.labTerminal.cols]")
    assert watch_size[0] < size[0] and watch_size[1] < size[1], (watch_size, size)
    # Terminal 1's window as tmux has it, asked from Terminal 2 (Terminal 1 untouched)
    page.click('[data-terminal-tab="2"]')
    typed(
        page, "tmux -L labgen list-windows -t =labgen-1 -F 'win=#{window_height}x#{window_width}'\r"
    )
    wait_text(page, 2, rf"\nwin={size[0]}x{size[1]}\n")
    page.click('[data-terminal-tab="1"]')
    typed(page, "echo attendee-typed; stty size\r")
    wait_text(page, 1, rf"\n{size[0]} {size[1]}\n")  # the attendee's own size
    wait_text(watch, 1, r"\nattendee-typed")
    text = str(page.evaluate(f"() => {rows_of(1)}"))
    assert "WATCHER-TYPED" not in text, text
    watch.screenshot(path=str(shots / "shells-watch.png"))
    # watch?n=2 shows Terminal 2 (the printed link made the cookie the page now goes by)
    other = browser.new_page()
    other.goto(instructor.split("/i/")[0] + f"/i/seats/{SEAT}/watch?n=2")
    text = wait_text(other, 1, rf"\nwin={size[0]}x{size[1]}\b")  # wider: tmux fills the rest
    assert "attendee-typed" not in text, text
