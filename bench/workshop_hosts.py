#!/usr/bin/env python3
"""A workshop over two simulated hosts: prints the figures, asserts nothing.

    .venv/bin/python bench/workshop_hosts.py              # 3 seats over local, sim-a, sim-b
    .venv/bin/python bench/workshop_hosts.py --seats 4 --checks 5 --typing 30

Two sim hosts (bench/hosts.py's helpers: containers of labgen's base image running
dockerd and sshd on 127.0.0.1), then `labgen workshop up port-forwarding --seats N
--hosts local,sim-a,sim-b` in a labgen home of its own. Printed:

- seats placed per host, and the wall time to N seats ready (`workshop up`);
- `labgen check SEAT` wall time for a local and a remote seat (alternating, median, p95);
- keystroke echo (a key sent to its echo read back, through `workshop serve`, SSH and
  tmux, as bench/workshop.py's Typist types) on a local and a remote seat at once;
- per local seat: memory, disk beside the base image, CPU at idle and per check (from
  its container's cgroup), and the server's CPU per typing attendee.

Bounded: at most 6 seats, each phase timed; the room is taken down and the sim hosts
removed at the end, on failure and on Ctrl-C too. Figures come from one run on a host
shared with other work: read them as pessimistic.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import hosts as bench_hosts  # noqa: E402
import workshop as bench_workshop  # noqa: E402

LAB = "port-forwarding"
SIMS = ["sim-a", "sim-b"]
NAME = bench_workshop.NAME  # the room bench/workshop.py's Server serves
MAX_SEATS = 6
IDLE_SECONDS = 20.0


def container_of(seat: str) -> str:
    """The id of a local seat's container (labelled with the name it was made as: a seat
    claimed from the pool keeps its pooled name)."""
    from labgen.core import resources
    from labgen.machine import registry

    made_as = registry.instance_named(seat).load().made_as_name
    labels = [
        f"label=org.labgen.home={resources.home_tag()}",
        f"label=org.labgen.instance={made_as}",
    ]
    out = subprocess.run(
        ["docker", "ps", "-q", "--no-trunc", "--filter", labels[0], "--filter", labels[1]],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    return out[0] if out else ""


def cpu_of(container: str) -> float | None:
    """CPU seconds the container has used (its cgroup, v1 or v2), None if not found."""
    for pattern in (f"**/*{container}*/cpuacct.usage", f"**/*{container}*/cpu.stat"):
        for path in Path("/sys/fs/cgroup").glob(pattern):
            text = path.read_text()
            if path.name == "cpuacct.usage":
                return int(text) / 1e9
            for line in text.splitlines():
                if line.startswith("usage_usec"):
                    return int(line.split()[1]) / 1e6
    return None


def disk_of(container: str) -> str:
    """The container's own writable layer (docker ps -s), beside the shared base image."""
    return subprocess.run(
        ["docker", "ps", "-s", "--filter", f"id={container}", "--format", "{{.Size}}"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip


def timed_checks(seats: dict[str, str], rounds: int) -> dict[str, Any]:
    """`labgen check` wall time per seat, alternating seats; the local seat's CPU per check."""
    walls: dict[str, list[float]] = {where: [] for where in seats}
    cpu: list[float] = []
    local = container_of(seats["local"])
    for _ in range(rounds):
        for where, seat in seats.items():
            before = cpu_of(local) if where == "local" else None
            began = time.monotonic()
            done = bench_workshop.labgen("check", seat, timeout=300)
            walls[where].append(time.monotonic() - began)
            if done.returncode not in (0, 1):  # 1: some check fails, which is still a check
                raise SystemExit(f"labgen check {seat} exited {done.returncode}: {done.stderr}")
            after = cpu_of(local) if where == "local" else None
            if before is not None and after is not None:
                cpu.append(after - before)
    result: dict[str, Any] = {w: bench_workshop.percentiles(v) for w, v in walls.items()}
    result["local_seat_cpu_per_check_s"] = bench_workshop.percentiles(cpu)
    return result


def idle_cpu(container: str, seconds: float) -> float | None:
    """The local seat's CPU, as a fraction of a core, while nobody types (serve probing)."""
    before = cpu_of(container)
    time.sleep(seconds)
    after = cpu_of(container)
    return None if before is None or after is None else round((after - before) / seconds, 4)


def echo(server: bench_workshop.Server, seats: dict[str, str], seconds: float) -> dict[str, Any]:
    """Typists on the local and the remote seat at once; echo latencies (ms) and the
    server's CPU per typing attendee."""
    until = time.monotonic() + seconds
    typists = {w: bench_workshop.Typist(server.urls[s], until) for w, s in seats.items()}
    own, _ = bench_workshop.cpu_seconds(server.proc.pid)
    began = time.monotonic()
    for typist in typists.values():
        typist.start()
    for typist in typists.values():
        typist.join(timeout=seconds + 60)
    spent = bench_workshop.cpu_seconds(server.proc.pid)[0] - own
    result: dict[str, Any] = {}
    for where, typist in typists.items():
        result[where] = bench_workshop.percentiles([x * 1000 for x in typist.latencies])
        result[where]["lost"] = typist.lost
    per = spent / (time.monotonic() - began) / len(typists)
    result["server_core_per_typing_attendee"] = round(per, 4)
    return result


def bench(count: int, rounds: int, typing: float, home: Path) -> dict[str, Any]:
    """Bring the room up over the sim hosts, measure, take it down (always)."""
    result: dict[str, Any] = {"seats": count, "host_cores": os.cpu_count()}
    began = time.monotonic()
    up = bench_workshop.labgen("workshop", "up", LAB, "--seats", str(count), "--name", NAME,
                               "--hosts", ",".join(["local", *SIMS]), timeout=900)  # fmt: skip
    result["up_seconds"] = round(time.monotonic() - began, 1)
    try:
        if up.returncode != 0:
            raise SystemExit(
                f"workshop up exited {up.returncode}:\n{(up.stdout + up.stderr)[-3000:]}"
            )
        from labgen.workshop import room as rooms

        room = rooms.load(NAME)
        placed: dict[str, list[str]] = {}
        for seat in room.seats:
            placed.setdefault(room.host_of(seat), []).append(seat)
        result["placed"] = {host: len(seats) for host, seats in placed.items()}
        remote = next(h for h in placed if h != "local")
        chosen = {"local": placed["local"][0], "remote": placed[remote][0]}
        result["remote_seat_host"] = remote
        local = container_of(chosen["local"])
        result["local_seat_mib"] = bench_workshop.seat_memory()
        result["local_seat_disk"] = disk_of(local)
        result["check_s"] = timed_checks(chosen, rounds)
        server = bench_workshop.Server(room.seats, workers=None)
        try:
            result["local_seat_idle_core"] = idle_cpu(local, IDLE_SECONDS)
            result["echo_ms"] = echo(server, chosen, typing)
        finally:
            server.stop()
    finally:
        began = time.monotonic()
        down = bench_workshop.labgen("workshop", "down", NAME, "--purge", timeout=900)
        result["down_seconds"] = round(time.monotonic() - began, 1)
        result["down_exit"] = down.returncode
        if down.returncode != 0:  # whatever the room left, this home's machines go
            bench_workshop.labgen("destroy", "--all", "--yes", timeout=900)
    return result


def show(result: dict[str, Any]) -> None:
    """The figures, one line each."""
    print(f"seats placed per host: {result.get('placed')}")
    print(f"time to {result['seats']} seats ready (workshop up): {result['up_seconds']} s")
    for where in ("local", "remote"):
        c, e = result["check_s"][where], result["echo_ms"][where]
        print(f"{where} seat: check median {c['p50']:.2f} s, p95 {c['p95']:.2f} s (n={c['n']}); "
              f"echo median {e.get('p50', 0):.1f} ms, p95 {e.get('p95', 0):.1f} ms "
              f"(n={e['n']}, lost {e['lost']})")  # fmt: skip
    print(f"local seat: memory {result['local_seat_mib']} MiB, disk {result['local_seat_disk']}, "
          f"idle {result['local_seat_idle_core']} core, "
          f"CPU per check {result['check_s']['local_seat_cpu_per_check_s']} s")  # fmt: skip
    per = result["echo_ms"]["server_core_per_typing_attendee"]
    print(f"server CPU per typing attendee: {per} core")
    print(f"workshop down: {result['down_seconds']} s (exit {result['down_exit']})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seats", type=int, default=3)
    parser.add_argument("--checks", type=int, default=5, help="check rounds per seat")
    parser.add_argument("--typing", type=float, default=30.0, help="seconds of typing")
    args = parser.parse_args()
    if not 2 <= args.seats <= MAX_SEATS:
        raise SystemExit(f"--seats: 2 to {MAX_SEATS}")
    with tempfile.TemporaryDirectory(prefix="labgen-bench-whosts-") as scratch:
        home = Path(scratch) / "home"
        os.environ["LABGEN_HOME"] = str(home)
        began = time.monotonic()
        sims = bench_hosts.make_sim_hosts(SIMS, Path(scratch) / "keys", None)
        try:
            print(f"two sim hosts ready, base image pushed: {time.monotonic() - began:.1f} s",
                  flush=True)  # fmt: skip
            result = bench(args.seats, args.checks, args.typing, home)
        finally:
            bench_hosts.remove_sim_hosts(sims)
    print(json.dumps(result), file=sys.stderr)
    show(result)


if __name__ == "__main__":
    main()
