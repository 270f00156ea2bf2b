"""The shells' pure logic: which shell a terminal socket asks for, and the command that
makes and attaches it (tests/e2e/test_workshop_shells.py runs them on a real seat).

The served app here has no machine: `terminals.get` is replaced by a recorder, so what
is tested is what the server asks for, never a shell.
"""

from __future__ import annotations

import json
import logging
import shlex
from typing import Any

import pytest
import test_workshop_security as security
from labgen.workshop import terminal
from labgen.workshop.terminal import Attach, BadRequest, command, requested
from test_workshop_security import FakeTerminal, Served

# that file's server of a two-seat room, with no machines, as fixtures of this one
serve, served = security.serve, security.served


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ({"n": "0"}, "n=0"),
        ({"n": str(terminal.TERMINALS + 1)}, f"n={terminal.TERMINALS + 1}"),
        ({"n": "two"}, "n='two'"),
        ({"n": " 2"}, "n=' 2'"),  # int() would take these four
        ({"n": "+2"}, "n='+2'"),
        ({"n": "٢"}, "n=٢"),  # an Arabic-Indic two: a decimal digit, not ASCII
        ({"n": "1_0"}, "n='1_0'"),
        ({"cols": "1"}, "cols=1"),
        ({"cols": "501"}, "cols=501"),
        ({"rows": "9" * 40}, "rows=" + "9" * 20),  # shown cut short
        ({"rows": "9" * 5000}, "rows=" + "9" * 20),  # more digits than int() takes
        ({"rows": ""}, "rows=''"),
    ],
)
def test_a_query_naming_no_shell_is_refused_naming_the_parameter(
    query: dict[str, str], named: str
) -> None:
    with pytest.raises(BadRequest) as refused:
        requested("pf-01", query, watch=False)
    assert f"the terminal's {named} is not a whole number from" in str(refused.value)


def test_a_query_names_the_shell_and_its_size() -> None:
    asked = requested("pf-01", {"n": "2", "cols": "132", "rows": "43"}, watch=True)
    assert asked == Attach("pf-01", 2, 132, 43, watch=True)
    assert requested("pf-01", {}, watch=False) == Attach("pf-01", 1, *terminal.DEFAULT_SIZE)


def test_each_terminal_is_a_session_of_its_own() -> None:
    names = {Attach("pf-01", n).session for n in range(1, terminal.TERMINALS + 1)}
    assert len(names) == terminal.TERMINALS
    assert all(shlex.quote(name) == name for name in names)  # nothing to quote


def words(line: str) -> list[str]:
    """The command's words as the machine's shell splits them (its ; apart)."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=";")
    lexer.whitespace_split = True
    return list(lexer)


def test_the_attendee_attaches_and_the_watcher_only_watches() -> None:
    mine = words(command(Attach("pf-01", 2, 120, 40)))
    watching = words(command(Attach("pf-01", 2, watch=True)))
    # both make the session if need be (at the page's size), on labgen's own tmux server
    for said in (mine, watching):
        made = said.index("new-session")
        assert said[made : made + 5] == ["new-session", "-d", "-s", "labgen-2", "-x"]
        assert said[said.index("-L") + 1] == terminal.SOCKET
    assert mine[mine.index("-x") + 1 : mine.index("-x") + 4] == ["120", "-y", "40"]
    attach = mine.index("attach-session")
    assert mine[attach + 1 : attach + 3] == ["-t", "=labgen-2"]  # = : this name, no prefix
    attach = watching.index("attach-session")
    assert watching[attach + 1 : attach + 6] == ["-r", "-f", "ignore-size", "-t", "=labgen-2"]


def test_the_options_are_set_before_the_session_is_made() -> None:
    # history-limit counts for panes made after it: a set after new-session would miss
    said = words(command(Attach("pf-01")))
    settings = [said[i + 2] for i, w in enumerate(said) if w == "set"]
    assert settings == [name for name, _ in terminal.OPTIONS]
    assert max(i for i, w in enumerate(said) if w == "set") < said.index("new-session")
    assert said[said.index("prefix") + 1] == "None" and said[said.index("status") + 1] == "off"


def test_a_machine_without_tmux_says_so() -> None:
    attendee = command(Attach("pf-01"))
    assert attendee.endswith('exec "$SHELL" -l')
    said = words(attendee)
    assert said[said.index("fi") + 2 : said.index("fi") + 3] == ["echo"]
    assert "this shell ends with the server" in said[said.index("fi") + 3]
    assert "nothing to watch" in command(Attach("pf-01", watch=True))


# --- what the server asks for, through the real app ---------------------------------------


@pytest.fixture
def asked(served: Served) -> list[Attach]:
    """Every Attach the app asks the terminals for (each answered by a fake shell)."""
    got: list[Attach] = []

    def get(attach: Attach) -> FakeTerminal:
        got.append(attach)
        return FakeTerminal()

    served.service.terminals.get = get  # type: ignore[assignment,method-assign]
    return got


def test_the_socket_query_reaches_the_terminals(served: Served, asked: list[Attach]) -> None:
    from websockets.sync.client import connect

    base = f"ws://127.0.0.1:{served.port}"
    attendee = f"{base}/w/pf-01/{served.seat_token}/terminal?n=2&cols=120&rows=40"
    watcher = f"{base}/i/{served.teacher_token}/seats/pf-01/terminal?n=2"
    for url in (attendee, watcher):
        with connect(url, open_timeout=10) as socket_:
            assert socket_.recv(timeout=10) == b"$ "  # the fake's screen
    assert asked == [Attach("pf-01", 2, 120, 40), Attach("pf-01", 2, *terminal.DEFAULT_SIZE, True)]


def test_a_bad_query_is_said_on_the_page_and_closes_with_one_log_line(
    served: Served, asked: list[Attach], caplog: pytest.LogCaptureFixture
) -> None:
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    url = f"ws://127.0.0.1:{served.port}/w/pf-01/{served.seat_token}/terminal?n=7"
    caplog.set_level(logging.WARNING)
    with connect(url, open_timeout=10) as socket_:
        said: Any = json.loads(socket_.recv(timeout=10))
        with pytest.raises(ConnectionClosed) as closed:
            socket_.recv(timeout=10)
    assert said["error"].startswith("the terminal's n=7 is not a whole number from 1 to")
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    assert asked == []  # no shell was asked for
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("labgen.workshop")]
    assert ours == ["pf-01: refused a terminal socket: " + said["error"]], ours
    assert served.seat_token not in ours[0]


def test_a_page_that_falls_behind_is_ended_rather_than_shown_a_hole() -> None:
    """Output for a page whose queue is full ends that page's stream (it reconnects and
    tmux draws the screen whole) instead of dropping a piece of the screen."""
    import asyncio
    import threading

    async def main() -> list[bytes | None]:
        queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=3)
        loop = asyncio.get_running_loop()
        sender = threading.Thread(
            target=lambda: [terminal._send(loop, queue, b"%d" % i) for i in range(5)]
        )
        sender.start()
        await asyncio.to_thread(sender.join)
        await asyncio.sleep(0.05)  # the offers run on this loop
        return [queue.get_nowait() for _ in range(queue.qsize())]

    # three fit, the fourth ends the stream, the fifth finds room after the end
    assert asyncio.run(main()) == [None, b"4"]
