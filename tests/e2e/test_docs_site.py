"""The documentation site, built by mkdocs (Material) from docs/ and read in a real browser.

`mkdocs build --strict` must pass; the built pages must load nothing from another host
(the site is read offline, at workshops); and Debian's chromium, driven by Playwright
through its executable path, with every request to anything but the local server
refused, must show on the port-forwarding page what a reader comes for: a step's
command, its recorded DNAT listing on the default engine, and 28.5's output once the
reader picks that engine's tab.

Docs for a lab of one's own: `labgen docs FOLDER` writes its page into a copy of the
site, which builds --strict with the page in the nav though no list names it; and the
page's "Run it" commands, given as they are from the site's folder, bring up, run,
check and destroy a real machine.
"""

from __future__ import annotations

import functools
import http.server
import re
import shlex
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from helpers import labgen, launch_chromium, show
from labgen.core.lab import load_lab
from labgen.docs import recordings
from playwright.sync_api import Page, Route, sync_playwright

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
STEP = "publish-port"
DNAT = "tcp dpt:5000 to:172.17.0.2:5000"


def build(root: Path, out: Path) -> None:
    """`mkdocs build --strict` of the site whose mkdocs.yml is in `root` (a warning fails)."""
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "--site-dir", str(out)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
        env={"NO_MKDOCS_2_WARNING": "1", "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "WARNING" not in proc.stderr, proc.stderr


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site, built from the repository's mkdocs.yml with --strict."""
    out = tmp_path_factory.mktemp("site")
    build(REPO, out)
    return out


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base's name)
        pass  # a line per request would bury the test's own output


@pytest.fixture
def server(site: Path) -> Iterator[str]:
    """The built site on a loopback port, stopped after the test."""
    handler = functools.partial(_QuietHandler, directory=str(site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_the_site_has_every_page_and_loads_nothing_from_another_host(site: Path) -> None:
    pages = {p.relative_to(site).as_posix() for p in site.rglob("*.html")}
    labs = {f"labs/{p.name}.html" for p in (REPO / "labs").iterdir() if (p / "lab.yaml").is_file()}
    wanted = {"index.html", "seed-map.html", "engines.html", "recordings.html"}
    wanted |= {"writing-labs.html", "checklib.html", "providers.html", "security.html"}
    assert wanted | labs <= pages
    outside = []
    for page in sorted(site.rglob("*.html")):
        html = page.read_text(encoding="utf-8")
        for attr, url in re.findall(r"""\b(src|href)=["']((?:https?:)?//[^"']+)""", html):
            outside.append(f"{page.relative_to(site)}: {attr}={url}")
    assert outside == []
    # Material's default fonts come from Google: font: false keeps them off.
    css = "".join(p.read_text(encoding="utf-8") for p in site.rglob("*.css"))
    assert "fonts.googleapis" not in css and "fonts.gstatic" not in css


def test_port_forwarding_page_in_chromium(server: str, tmp_path: Path) -> None:
    lab = load_lab("port-forwarding")
    default, newest = lab.spec.engine, "28.5"
    recorded = {e: recordings.load(lab.path, e)[STEP] for e in (default, newest)}
    assert DNAT in recorded[default].output and DNAT in recorded[newest].output
    refused: list[str] = []

    def only_local(route: Route) -> None:
        if route.request.url.startswith(server):
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()

    with sync_playwright() as pw:
        browser = launch_chromium(pw, tmp_path)
        try:
            browser.route("**/*", only_local)
            page = browser.new_page()
            page.goto(server + "labs/port-forwarding.html", wait_until="networkidle")
            assert "Port forwarding" in page.title()

            command = lab.steps[[s.id for s in lab.steps].index(STEP)].command.strip()
            assert page.get_by_text(command, exact=True).first.is_visible()

            tabs = page.locator(
                f"xpath=//*[@id='step-{STEP}']/following::div[contains(@class,'tabbed-set')][1]"
            )
            labels = tabs.locator(".tabbed-labels label")
            assert labels.all_inner_texts() == [f"Docker {e}" for e in lab.engines]
            blocks = tabs.locator(".tabbed-content > .tabbed-block")

            # The default engine's output shows first: the DNAT rule, as recorded.
            shown = blocks.nth(0)
            assert shown.is_visible() and not blocks.nth(2).is_visible()
            assert DNAT in shown.inner_text()
            dnat_20 = next(x for x in recorded[default].output.splitlines() if DNAT in x)
            assert (
                dnat_20.split()
                == next(x for x in shown.inner_text().splitlines() if DNAT in x).split()
            )
            assert f"Recorded on Docker {recorded[default].docker}" in shown.inner_text()
            tabs.scroll_into_view_if_needed()
            page.screenshot(path=str(tmp_path / "port-forwarding-20.10.png"))

            # The reader picks 28.5: its own output, without the hairpin MASQUERADE.
            labels.nth(lab.engines.index(newest)).click()
            picked = blocks.nth(lab.engines.index(newest))
            picked.wait_for(state="visible")
            assert not shown.is_visible()
            text = picked.inner_text()
            assert DNAT in text and "DNAT       tcp" in text
            assert "172.17.0.2           172.17.0.2" not in text  # no hairpin rule on 28.5
            assert f"Recorded on Docker {recorded[newest].docker}" in text
            picked.scroll_into_view_if_needed()
            page.wait_for_timeout(400)  # Material slides the tab's underline: let it settle
            page.screenshot(path=str(tmp_path / "port-forwarding-28.5.png"))
            check_wiring_pictures(page, lab.engines, tmp_path)
            print(f"screenshots in {tmp_path}")
        finally:
            browser.close()
    assert refused == []  # the page asked no other host for anything


def check_wiring_pictures(page: Page, engines: list[str], tmp_path: Path) -> None:
    """The step's second set of tabs is the machine's wiring after it, one picture per
    engine, drawn in the page (inline SVG: nothing fetched), as verify --record drew it."""
    pictures = page.locator(
        f"xpath=//*[@id='step-{STEP}']/following::div[contains(@class,'tabbed-set')][2]"
    )
    labels = pictures.locator(".tabbed-labels label")
    assert labels.all_inner_texts() == [f"Docker {e}" for e in engines]
    blocks = pictures.locator(".tabbed-content > .tabbed-block")
    for n, engine in enumerate(engines):
        labels.nth(n).click()
        svg = blocks.nth(n).locator("div.labgen-wiring > svg")
        svg.wait_for(state="visible")
        box = svg.bounding_box()
        assert box is not None and box["width"] > 200 and box["height"] > 150, (engine, box)
        drawn = svg.text_content() or ""
        for name in ("the machine", "container http-server", "docker0", "docker-proxy"):
            assert name in drawn, (engine, name)
        assert f"after step {STEP}, Docker {engine}" in drawn
    svg.scroll_into_view_if_needed()
    page.wait_for_timeout(400)
    page.screenshot(path=str(tmp_path / f"port-forwarding-wiring-{engines[-1]}.png"))


def run_it(page: str) -> list[list[str]]:
    """The commands of a lab page's "Run it" block, each as its words after `labgen`."""
    block = page[page.index("## Run it") :]
    block = block[block.index("```bash\n") + len("```bash\n") :]
    lines = block[: block.index("```")].splitlines()
    return [shlex.split(line, comments=True)[1:] for line in lines]


def site_of_ones_own(root: Path) -> Path:
    """A copy of the repository's site in `root`, with a lab folder of its own beside it."""
    shutil.copytree(REPO / "docs", root / "docs")
    for name in ("mkdocs.yml", "mkdocs_hooks.py"):
        shutil.copy(REPO / name, root / name)
    shutil.copytree(
        REPO / "tests" / "e2e" / "labs" / "user-bridge",
        root / "my-labs" / "user-bridge",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    return root


def read_user_bridge_page(built: Path, tmp_path: Path) -> list[str]:
    """In Chromium, from another lab's page, the nav to user-bridge's; its "Run it" and
    its table of what differs. Returns the requests refused (to anything but the site)."""
    refused: list[str] = []
    handler = functools.partial(_QuietHandler, directory=str(built))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    server = f"http://127.0.0.1:{httpd.server_address[1]}/"

    def only_local(route: Route) -> None:
        if route.request.url.startswith(server):
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()

    try:
        with sync_playwright() as pw:
            browser = launch_chromium(pw, tmp_path)
            try:
                browser.route("**/*", only_local)
                tab = browser.new_page()
                tab.goto(server + "labs/netns.html", wait_until="networkidle")
                # The nav of another lab's page leads to it, though no list names it.
                nav = tab.locator(".md-nav a.md-nav__link", has_text="A user-defined bridge")
                nav.first.click()
                tab.wait_for_url("**/labs/user-bridge.html")
                shown = tab.locator("pre", has_text="labgen up --labs my-labs user-bridge")
                assert shown.first.is_visible()
                table = tab.locator("table", has_text="Docker 26.1").first
                row = table.locator("tr", has_text="ping-by-name").inner_text().split()
                assert row[-2:] == ["same", "same"]  # the recordings are equal there
                tab.screenshot(path=str(tmp_path / "user-bridge.png"))
            finally:
                browser.close()
    finally:
        httpd.shutdown()
        httpd.server_close()
    return refused


def test_a_lab_of_ones_own_is_in_the_nav_and_its_commands_work(
    tmp_path: Path, bring_up: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = site_of_ones_own(tmp_path / "site")
    monkeypatch.chdir(root)
    made = labgen("docs", "my-labs/user-bridge")
    assert made.returncode == 0, show(made)
    assert made.stdout.strip() == "wrote docs/labs/user-bridge.md"
    assert "user-bridge" not in (root / "mkdocs.yml").read_text(encoding="utf-8")
    build(root, root / "built")
    assert read_user_bridge_page(root / "built", tmp_path) == []

    # The page's commands, as they are, from the site's folder (ssh is interactive).
    commands = run_it((root / "docs" / "labs" / "user-bridge.md").read_text(encoding="utf-8"))
    assert commands[0] == ["up", "--labs", "my-labs", "user-bridge"]
    bring_up(*commands[0][1:])
    for words in commands[1:]:
        if words[0] == "ssh":
            continue
        proc = labgen(*words)
        assert proc.returncode == 0, f"labgen {shlex.join(words)}\n{show(proc)}"
