"""The workshop's record and its seats: names, tokens, growing, retrying a failed seat."""

from __future__ import annotations

import stat
import threading
import time
from pathlib import Path

import pytest
from labgen.core.context import Context
from labgen.core.errors import MachineError, UsageError
from labgen.workshop import room as rooms
from labgen.workshop import seats


def test_a_room_has_a_token_per_seat_and_one_for_the_instructor(labgen_home: Path) -> None:
    room = rooms.create("pf", "port-forwarding", "/labs/pf", 3)
    assert room.seats == ["pf-01", "pf-02", "pf-03"]
    tokens = [room.instructor_token, *room.seat_tokens.values()]
    assert len(set(tokens)) == 4 and all(len(t) >= 32 for t in tokens)
    assert stat.S_IMODE(room.path.stat().st_mode) == 0o600  # the tokens are its keys
    assert rooms.load("pf") == room


def test_a_room_grows_keeping_its_tokens_and_never_shrinks(labgen_home: Path) -> None:
    first = rooms.create("pf", "port-forwarding", "/labs/pf", 2)
    grown = rooms.create("pf", "port-forwarding", "/labs/pf", 4)
    assert grown.seats[:2] == first.seats and len(grown.seats) == 4
    assert grown.instructor_token == first.instructor_token
    assert grown.seat_tokens["pf-01"] == first.seat_tokens["pf-01"]
    with pytest.raises(UsageError, match="cannot shrink"):
        rooms.create("pf", "port-forwarding", "/labs/pf", 1)
    with pytest.raises(UsageError, match="already exists for lab"):
        rooms.create("pf", "bridge", "/labs/bridge", 4)


@pytest.mark.parametrize("name", ["Bad", "a/b", "-x", "x" * 38])
def test_bad_workshop_names_are_refused(name: str) -> None:
    with pytest.raises(UsageError):
        rooms.validate_workshop_name(name)


def test_an_unknown_workshop_names_the_ones_there(labgen_home: Path) -> None:
    rooms.create("pf", "port-forwarding", "/labs/pf", 1)
    with pytest.raises(UsageError, match=r"workshops: pf\)"):
        rooms.load("other")


def test_a_failed_seat_is_retried_once_and_the_others_are_unaffected(
    labgen_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tries: dict[str, int] = {}
    running = 0
    most = 0
    lock = threading.Lock()

    def fake_up(ctx: Context, lab: str, name: str) -> None:
        nonlocal running, most
        with lock:
            tries[name] = tries.get(name, 0) + 1
            running += 1
            most = max(most, running)
        time.sleep(0.05)
        with lock:
            running -= 1
        # Seat 2 fails once then comes up; seat 3 never does.
        if name == "pf-03" or (name == "pf-02" and tries[name] == 1):
            raise MachineError(f"vagrant up failed for {name}")

    class Box:
        name = "docker"

        def ensure_box(self, say: object, engine: str | None = None) -> tuple[str, bool]:
            return "box", False

    monkeypatch.setattr(seats, "up", fake_up)
    # No machine came up, so none has a kernel-trace policy to write (tests/e2e/test_pool.py
    # checks that a real seat's is written).
    monkeypatch.setattr(seats, "_write_kernel_policy", lambda seat, on: None)
    monkeypatch.setattr(seats.providers, "choose", lambda provider, say: Box())
    events: list[seats.SeatEvent] = []
    room, finals = seats.up_seats(Context(), "port-forwarding", 4, "pf", 2, events.append)
    states = {e.seat: (e.state, e.attempts) for e in finals}
    assert states == {
        "pf-01": ("ready", 1),
        "pf-02": ("ready", 2),
        "pf-03": ("failed", 2),
        "pf-04": ("ready", 1),
    }
    assert tries == {"pf-01": 1, "pf-02": 2, "pf-03": 2, "pf-04": 1}
    assert most == 2  # -j 2: never more at once
    assert "vagrant up failed for pf-03" in next(e.line for e in finals if e.seat == "pf-03")
    assert any(e.state == "retrying" and e.seat == "pf-02" for e in events)


def test_status_of_seats_never_brought_up_is_absent(labgen_home: Path) -> None:
    room = rooms.create("pf", "port-forwarding", "/labs/pf", 2)
    assert [s.state for s in seats.seat_status(room)] == ["absent", "absent"]


def test_ssh_answers_only_to_an_ssh_banner() -> None:
    import socket

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]

        def greet(banner: bytes) -> None:
            conn, _ = listener.accept()
            conn.sendall(banner)
            conn.close()

        for banner, expected in ((b"SSH-2.0-OpenSSH\r\n", True), (b"HTTP/1.1 400\r\n", False)):
            thread = threading.Thread(target=greet, args=(banner,))
            thread.start()
            assert seats.ssh_answers("127.0.0.1", port) is expected
            thread.join()
