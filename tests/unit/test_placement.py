"""The placement of a workshop's seats over several hosts (workshop/placement.py)."""

from __future__ import annotations

import pytest
from labgen.core.errors import UsageError
from labgen.hosts.probe import HostReport
from labgen.workshop import placement
from labgen.workshop.placement import SEAT_MIB, SEATS_PER_CORE, place, refusals


def host(name: str, cores: int = 4, free: int = 4000, **kw: object) -> HostReport:
    return HostReport(
        name,
        f"ssh://{name}",
        "docker",
        answers=True,
        cores=cores,
        free_memory_mib=free,
        engines=["28.5"],
        **kw,
    )  # type: ignore[arg-type]


def test_equal_hosts_alternate_first_named_first() -> None:
    assert place([host("a"), host("b")], 4).hosts == ["a", "b", "a", "b"]


def test_most_free_memory_left_takes_the_next_seat() -> None:
    # b has 3 seats' worth more free memory: it takes three before a gets one.
    chosen = place([host("a", free=1000), host("b", free=1000 + 3 * SEAT_MIB)], 5)
    # Then a tie (1000 MiB left each) goes to the host named first.
    assert chosen.hosts == ["b", "b", "b", "a", "b"]
    assert chosen.counts() == {"b": 4, "a": 1}


def test_cores_cap_a_host() -> None:
    chosen = place([host("small", cores=1, free=100_000), host("big", cores=8, free=10)], 15)
    assert chosen.counts()["small"] == SEATS_PER_CORE
    assert chosen.counts()["big"] == 15 - SEATS_PER_CORE


def test_more_seats_than_the_hosts_hold_is_refused() -> None:
    with pytest.raises(UsageError, match="more than the hosts hold"):
        place([host("a", cores=1)], SEATS_PER_CORE + 1)


def test_no_host_is_refused() -> None:
    with pytest.raises(UsageError, match="--hosts"):
        place([], 1)


def test_refusals_name_the_host_and_the_fix() -> None:
    gone = HostReport(
        "sim-b",
        "ssh://x",
        "docker",
        answers=False,
        problems=[("Docker on sim-b does not answer", "check sshd")],
    )
    bare = host("sim-a")
    assert refusals([bare, gone], "20.10") == [
        "host sim-a lacks the base image of engine 20.10: `labgen hosts push sim-a --engine 20.10`",
        "host sim-b does not answer: Docker on sim-b does not answer",
    ]
    local = HostReport("local", "", "local", answers=True, cores=2)
    assert refusals([local], "20.10") == []  # `up` builds this machine's base image


def test_old_room_records_are_local(tmp_path: object) -> None:
    from labgen.workshop.room import Room

    room = Room(name="w", lab="l", lab_path="/x", seats=["w-01"], created="now")
    assert room.host_of("w-01") == "local"
    assert placement.SEAT_MIB > 0


def _machine(grid: object, seat: str) -> str:
    return str(grid.snapshot(seat)["rows"][0]["machine"])  # type: ignore[attr-defined]


def test_a_host_that_does_not_answer_turns_only_its_seats_lost() -> None:
    from labgen.workshop.grid import SEAT_READY, Grid
    from labgen.workshop.watch import MACHINE_DOWN, Watch, lost

    seats = ["w-01", "w-02", "w-03"]
    grid = Grid(seats, ["a"], {"a"})
    host_answers: list[str | None] = ["Connection refused", "Connection refused", None]
    watch = Watch(
        grid,
        lambda line, seat: None,
        hosts={"w-01": "local", "w-02": "sim-b", "w-03": "sim-a"},
        host_probe=lambda host: host_answers.pop(0) if host == "sim-b" else None,
    )
    watch._count_host("sim-b", host_answers.pop(0))
    assert _machine(grid, "w-02") == SEAT_READY  # one miss is not yet a lost host
    watch._count_host("sim-b", host_answers.pop(0))
    assert _machine(grid, "w-02") == lost("sim-b")
    assert watch.probe_now("w-02") == lost("sim-b")  # a Check is refused, never green
    # the seat's own probe answering (a stale connection) does not make it ready
    watch.probe_once("w-02")
    assert _machine(grid, "w-02") == lost("sim-b")
    assert _machine(grid, "w-01") == SEAT_READY and _machine(grid, "w-03") == SEAT_READY
    assert watch.probe_now("w-03") is None
    # back: down until the seat's own probe finds it, then ready
    watch._count_host("sim-b", host_answers.pop(0))
    assert _machine(grid, "w-02") == MACHINE_DOWN
    watch.probe_once("w-02")
    assert _machine(grid, "w-02") == SEAT_READY
