"""The guide, for real: --auto shows each step's changes; the interactive one in a tmux terminal."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import labgen as labgen_package
import pytest
from helpers import PUBLISH_DNAT, PUBLISH_MASQUERADE, labgen, labgen_json, show

pytestmark = pytest.mark.e2e

LAB = "port-forwarding"
# As the guide prints them: an added rule.
DNAT = f"+ {PUBLISH_DNAT}"
MASQ = f"+ {PUBLISH_MASQUERADE}"


@pytest.fixture
def machine(bring_up: Callable[[str], str]) -> str:
    return bring_up(LAB)


def test_guide_auto_shows_what_publishing_a_port_changed(machine: str) -> None:
    proc = labgen("guide", machine, "--auto")
    assert proc.returncode == 0, show(proc)
    text = proc.stdout
    publish = text[text.index("publish-port") : text.index("Step 3 of")]
    assert DNAT in publish
    assert MASQ in publish
    assert "master docker0" in publish and "listening tcp 0.0.0.0:5000 (docker-proxy)" in publish
    # Nothing volatile: the counters the later steps zero and bump never show as changes.
    counting = text[text.index("Step 6 of") : text.index("Step 9 of")]
    assert "+ nat" not in counting and "- nat" not in counting
    assert f"Lab {machine} done" in text


class Terminal:
    """A real terminal: the guide runs in a tmux session we start (and end) ourselves."""

    def __init__(self, command: str):
        self.name = f"labgen-test-{uuid.uuid4().hex[:8]}"
        subprocess.run(
            ["tmux", "new-session", "-d", "-s", self.name, "-x", "160", "-y", "50", command],
            check=True,
        )

    def screen(self) -> str:
        return subprocess.run(
            ["tmux", "capture-pane", "-p", "-J", "-S", "-400", "-t", self.name],
            capture_output=True,
            text=True,
        ).stdout

    def wait_for(self, text: str, timeout: float = 90) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.3)
        raise AssertionError(f"{text!r} never appeared; the screen was:\n{self.screen()}")

    def wait_count(self, text: str, count: int, timeout: float = 90) -> str:
        """The screen once `text` is on it `count` times (a prompt seen again)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if screen.count(text) >= count:
                return screen
            time.sleep(0.3)
        raise AssertionError(f"{text!r} not {count} times; the screen was:\n{self.screen()}")

    def type(self, keys: str) -> None:
        if keys:
            subprocess.run(["tmux", "send-keys", "-t", self.name, "-l", keys], check=True)
        subprocess.run(["tmux", "send-keys", "-t", self.name, "Enter"], check=True)

    def close(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.name], capture_output=True)


def guide_command(labgen_home: Path, cwd: Path | None = None, machine: str = LAB) -> str:
    # The labgen under test (this process's), whatever the tmux server's environment says.
    source = shlex.quote(str(Path(labgen_package.__file__).resolve().parent.parent))
    env = f"LABGEN_HOME={shlex.quote(str(labgen_home))} COLUMNS=160 PYTHONPATH={source}"
    run = f"{shlex.quote(sys.executable)} -m labgen guide {machine}"
    where = shlex.quote(str(cwd or os.getcwd()))  # where `p` writes its picture
    # The shell stays on after the guide ends, so its exit status can be read on screen.
    return f"cd {where} && {env} {run}; echo GUIDE-EXIT=$?; sleep 600"


def resume_check_trace_walk(command: str) -> None:
    """The guide again: it resumes at curl, `c` says not yet, `t` traces curl's rules and
    `k` walks its packets through the kernel (curl's connection on lo, the proxy's on
    docker0)."""
    term = Terminal(command)
    try:
        term.wait_for("Resuming lab port-forwarding at step 3 of 9")
        term.wait_for("Step 3 of 9: curl")
        term.type("c")  # "I ran it myself": the checks say not yet, with the hint
        screen = term.wait_for("not yet")
        assert "hint:" in screen
        screen = term.wait_for("[r] retry")
        assert "[t] trace it" in screen  # the lab marks curl `trace: true`
        term.type("t")  # its trace: localhost meets no rule (docker-proxy answers)
        screen = term.wait_for("$ curl -XGET http://localhost:5000  (exit 0")
        assert "DNAT" not in screen.split("tracing it:")[-1], screen
        screen = term.wait_for("[r] retry")
        assert "[k] kernel walk" in screen
        term.type("k")  # where its packets went: curl's connection on lo, the proxy's on docker0
        screen = term.wait_for("events of other connections or namespaces not shown")
        walk = screen.split("tracing it: labgen trace port-forwarding --kernel")[-1]
        assert "127.0.0.1 → 127.0.0.1" in walk and "docker0" in walk, screen
        term.wait_for("[r] retry")
        term.type("q")
        assert "GUIDE-EXIT=0" in term.wait_for("GUIDE-EXIT=")
    finally:
        term.close()


@pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux (scripts/setup-tests.sh)")
def test_interactive_guide_advance_check_quit_resume(
    machine: str, labgen_home: Path, tmp_path: Path
) -> None:
    term = Terminal(guide_command(labgen_home, tmp_path))
    try:
        term.wait_for("Step 1 of 9: nat-baseline")
        term.wait_for("[Enter] run it")
        term.type("")  # run nat-baseline
        term.wait_for("[Enter] next step")
        term.type("")  # on to publish-port
        term.wait_for("Step 2 of 9: publish-port")
        term.type("")  # run it
        screen = term.wait_for("✓ done")
        assert DNAT in screen
        assert "[p] picture" in screen and "[t] trace it" not in screen  # not traceable
        term.type("p")  # the picture of the machine now, after publish-port
        picture = tmp_path / f"{LAB}-after-publish-port.svg"
        screen = term.wait_for(f"wrote {picture}")
        assert "(SVG," in screen and "veth pair:" in screen
        assert picture.read_text().lstrip().startswith(("<?xml", "<svg")), "an SVG file"
        term.type("")  # on to curl
        term.wait_for("Step 3 of 9: curl")
        term.type("q")
        screen = term.wait_for("GUIDE-EXIT=")
        assert "GUIDE-EXIT=0" in screen and "stopped after 2 of 9 steps" in screen
    finally:
        term.close()
    # The guide's progress is the machine's: status and check see the two steps it ran.
    code, machines = labgen_json("status")
    assert code == 0 and machines[0]["steps_run"] == ["nat-baseline", "publish-port"]
    code, checked = labgen_json("check", LAB)
    assert checked["target_step"] == "publish-port" and code == 0, checked

    resume_check_trace_walk(guide_command(labgen_home, tmp_path))


USER_BRIDGE = Path(__file__).parent / "labs" / "user-bridge"
NEXT = "[Enter] next step"


@pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux (scripts/setup-tests.sh)")
def test_user_bridge_picture_then_guide_run_forms_and_the_last_step(
    bring_up: Callable[[str], str], labgen_home: Path, tmp_path: Path
) -> None:
    """One user-bridge machine (issue 21 item 5): draw names labnet's bridge after its
    network; the guide says when it runs a step's run: form instead of the command shown,
    and quitting after the fifth step of five counts five."""
    bring_up(str(USER_BRIDGE))
    svg = tmp_path / "user-bridge.svg"
    proc = labgen("draw", "user-bridge", "--step", "start-alpha", "-o", str(svg), "--json")
    assert proc.returncode == 0, show(proc)
    networks = {n["name"]: n for n in json.loads(proc.stdout)["wiring"]["networks"]}
    labnet = networks["labnet"]
    assert (
        labnet["bridge"] == "br-" + labnet["id"][:12] and networks["bridge"]["bridge"] == "docker0"
    )
    texts = [t.text for t in ET.parse(svg).iter("{http://www.w3.org/2000/svg}text")]
    assert f"{labnet['bridge']} (labnet)" in texts, texts

    term = Terminal(guide_command(labgen_home, tmp_path, "user-bridge"))
    try:
        term.wait_for("Resuming lab user-bridge at step 3 of 5")
        page = term.wait_for("[Enter] run it").split("Step 3 of 5: ping-by-name")[-1]
        assert "Enter runs the step's non-interactive form instead (its run:)" in page, page
        assert "$ docker run --pull never --rm --network labnet busybox ping -c 2 alpha" in page
        term.type("")  # run ping-by-name: its run: form
        screen = term.wait_count(NEXT, 1)
        ran = screen.split("Step 3 of 5")[-1]
        assert "running the step's non-interactive form (its run:), not the command shown" in ran
        assert "2 packets transmitted, 2 packets received" in ran, ran
        term.type("")  # on to isolated
        term.wait_for("Step 4 of 5: isolated")
        term.type("")
        term.wait_count(NEXT, 2)
        term.type("")  # on to remove-alpha, which has no run: form
        term.wait_for("Step 5 of 5: remove-alpha")
        term.type("")
        screen = term.wait_count(NEXT, 3)
        last = screen.split("Step 5 of 5: remove-alpha")[-1]
        assert "running it on the machine:" in last and "non-interactive" not in last, last
        assert "✓ done" in last, last
        term.type("q")  # quit after the fifth step ran
        screen = term.wait_for("GUIDE-EXIT=")
        assert "GUIDE-EXIT=0" in screen
        assert "stopped after 5 of 5 steps: the lab is done" in screen, screen
        assert "stopped after 4 of 5" not in screen
    finally:
        term.close()
    code, machines = labgen_json("status")
    assert code == 0 and len(machines[0]["steps_run"]) == 5, machines
