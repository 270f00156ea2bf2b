"""Workshop figures for this host: N seats of port-forwarding up, their memory, the server's
CPU at idle with its background checks, and how long a step takes to show on the grid.

    .venv/bin/python bench/workshop.py            # 10 and 20 seats
    .venv/bin/python bench/workshop.py 3 -j 3     # a quick run

Each size gets its own LABGEN_HOME (a temporary folder) and is removed with
`workshop down` at the end, pass or fail. The server runs on loopback with a deadline.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

IDLE_SECONDS = 60.0
TICKS = os.sysconf("SC_CLK_TCK")


def labgen(*args: str, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "labgen", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def cpu_seconds(pid: int) -> float:
    """The process's CPU time and that of its children it waited for (the checks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(f) for f in fields[11:15])
    return (utime + stime + cutime + cstime) / TICKS


def seat_memory(home_tag: str) -> list[float]:
    """MiB each seat's container uses (docker stats), for this home's machines."""
    ids = subprocess.run(
        ["docker", "ps", "-q", "--filter", f"label=org.labgen.home={home_tag}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    if not ids:
        return []
    out = subprocess.run(
        ["docker", "stats", "--no-stream", "--format", "{{.MemUsage}}", *ids],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    sizes = []
    for line in out.splitlines():
        value, unit = re.match(r"([\d.]+)\s*([KMG]i?B)", line).groups()  # type: ignore[union-attr]
        sizes.append(float(value) * {"KiB": 1 / 1024, "MiB": 1, "GiB": 1024}.get(unit, 1))
    return sizes


class Events(threading.Thread):
    """The instructor's event stream, read in a thread: when each cell turned done."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.url = url
        self.done: dict[tuple[str, str], float] = {}

    def run(self) -> None:
        with urllib.request.urlopen(self.url, timeout=600) as stream:
            for raw in stream:
                line = raw.decode().strip()
                if not line.startswith("data: "):
                    continue
                event = json.loads(line[6:])
                if event.get("type") == "cell" and event.get("state") == "done":
                    self.done[(event["seat"], event["step"])] = time.monotonic()

    def wait(self, seat: str, step: str, since: float, limit: float = 300) -> float:
        while time.monotonic() - since < limit:
            if (seat, step) in self.done:
                return round(self.done[(seat, step)] - since, 1)
            time.sleep(0.1)
        return float("nan")


def bench(seats: int, jobs: int) -> dict[str, Any]:
    from websockets.sync.client import connect

    name = f"bench{seats}"
    result: dict[str, Any] = {"seats": seats, "jobs": jobs}
    began = time.monotonic()
    up = labgen("workshop", "up", "port-forwarding", "--seats", str(seats), "--name", name,
                "-j", str(jobs))  # fmt: skip
    result["up_seconds"] = round(time.monotonic() - began, 1)
    result["up_exit"] = up.returncode
    result["up_summary"] = (up.stdout.strip().splitlines() or [""])[0]
    server = None
    try:
        from labgen.core import resources

        memory = seat_memory(resources.home_tag())
        if memory:
            result["seat_mib"] = {
                "median": round(statistics.median(memory)),
                "min": round(min(memory)),
                "max": round(max(memory)),
            }
        server = subprocess.Popen(
            [sys.executable, "-m", "labgen", "workshop", "serve", name, "--listen",
             "127.0.0.1:0", "--stop-after", "900"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, "COLUMNS": "300"},
        )  # fmt: skip
        urls: dict[str, str] = {}
        assert server.stdout is not None
        while len(urls) < seats + 1:
            line = server.stdout.readline()
            if not line:
                raise SystemExit(f"the server stopped: {line}")
            found = re.match(r"^(\S+): (http://\S+)$", line.strip())
            if found:
                urls[found[1]] = found[2]
        events = Events(urls["instructor"] + "events")
        events.start()
        # Idle: nobody types; the background checks go on at their period.
        start_cpu, start = cpu_seconds(server.pid), time.monotonic()
        time.sleep(IDLE_SECONDS)
        idle_cpu = cpu_seconds(server.pid) - start_cpu
        result["idle_cpu_percent_of_one_core"] = round(100 * idle_cpu / (time.monotonic() - start))
        # A step typed in seat 1's browser terminal (the websocket the page uses).
        seat1 = f"{name}-01"
        with connect(urls[seat1].replace("http://", "ws://") + "terminal") as ws:
            t0 = time.monotonic()
            ws.send(json.dumps({"input": "labgen-lab run publish-port\r"}))
            result["typed_step_to_done_seconds"] = events.wait(seat1, "publish-port", t0)
        # A step run outside the page (no poke): found by the idle re-checks alone.
        if seats > 1:
            seat2 = f"{name}-02"
            t0 = time.monotonic()
            run = labgen("run", seat2, "publish-port")
            if run.returncode == 0:
                result["unpoked_step_to_done_seconds"] = events.wait(seat2, "publish-port", t0)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        began = time.monotonic()
        down = labgen("workshop", "down", name)
        result["down_seconds"] = round(time.monotonic() - began, 1)
        result["down_exit"] = down.returncode
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", nargs="*", type=int, default=[10, 20])
    parser.add_argument("-j", "--jobs", type=int, default=4)
    args = parser.parse_args()
    for seats in args.sizes:
        with tempfile.TemporaryDirectory(prefix="labgen-bench-") as home:
            os.environ["LABGEN_HOME"] = home
            print(json.dumps(bench(seats, args.jobs)), flush=True)


if __name__ == "__main__":
    main()
