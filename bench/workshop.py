"""Workshop figures for this host: a room of N real seats of port-forwarding, served, and
what the server and its background checker do under a room's load.

    .venv/bin/python bench/workshop.py              # 8 seats (what two cores hold)
    .venv/bin/python bench/workshop.py --seats 4    # a quicker run

Phases, on one room (its own LABGEN_HOME, a temporary folder; `workshop down` at the
end, pass or fail; the server on loopback with a deadline):

1. idle (IDLE_SECONDS): nobody types; the background checks go on at their idle period.
2. typing (TYPING_SECONDS): one typist on every seat, a command line every few seconds
   (each Enter pokes the checker): the seconds between two background checks of a seat.
3. load (LOAD_SECONDS): LISTENERS instructor event streams, LOADERS clients fetching the
   pages, TYPISTS typists on the first two seats: the terminals' echo latency (a key
   sent to the key's echo read back, through the server, SSH and tmux), the server's
   CPU and its children's (the checks'), its memory.
4. typing again with one background check at a time (`--compare-one`, the checker as
   it was): the same cadence, for the comparison.

A check's cadence comes from the room's database (every background check is written
there with its time). The server runs as `labgen workshop serve` does, with the
checker's limit derived from the cores (RoomService's workers=None): the verb still
passes workers=1, so the child sets it (see SERVE).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import re
import statistics
import string
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

IDLE_SECONDS = 90.0
TYPING_SECONDS = 60.0
LOAD_SECONDS = 30.0
LISTENERS, LOADERS, TYPISTS = 50, 20, 10
TICKS = os.sysconf("SC_CLK_TCK")
NAME = "benchroom"
# `workshop serve` through the CLI, with the background checks' limit given to the verb
# (None: derived from the cores and the measured CPU per check; 1: one at a time).
SERVE = """
import functools, logging, sys
logging.basicConfig(stream=sys.stderr, format="%(name)s %(message)s")
logging.getLogger("labgen.workshop.checker").setLevel(logging.DEBUG)
from labgen.verbs import workshop
workshop.serve = functools.partial(workshop.serve, workers={workers})
from labgen.cli.main import main
sys.argv = ["labgen", "workshop", "serve", {name!r}, "--listen", "127.0.0.1:0",
            "--stop-after", "1200"]
main()
"""
ANSI = re.compile(rb"\x1b(\[[0-9;?]*[ -/]*[@-~]|[()][A-Z0-9]|[=>])")


def labgen(*args: str, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "labgen", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def cpu_seconds(pid: int) -> tuple[float, float]:
    """The process's own CPU seconds, and those of its children it waited for (the
    checks' pytest runs)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(f) for f in fields[11:15])
    return (utime + stime) / TICKS, (cutime + cstime) / TICKS


def host_busy() -> tuple[float, float]:
    """All cores' busy and total jiffies, from /proc/stat (the machines' CPU too)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def rss_mib(pid: int) -> dict[str, float]:
    status = Path(f"/proc/{pid}/status").read_text()
    found = {k: int(v) for k, v in re.findall(r"^(VmRSS|VmHWM):\s+(\d+) kB", status, re.M)}
    return {"rss_mib": round(found["VmRSS"] / 1024), "peak_rss_mib": round(found["VmHWM"] / 1024)}


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return {
        "n": len(values),
        "p50": round(statistics.median(ordered), 3),
        "p95": round(p95, 3),
        "max": round(ordered[-1], 3),
    }


class Server:
    """`workshop serve` of the room in a child, and the URLs it printed."""

    def __init__(self, seats: list[str], workers: int | None):
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SERVE.format(workers=workers, name=NAME)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "COLUMNS": "300"},
        )
        self.urls: dict[str, str] = {}
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 60
        while not {"instructor", *seats} <= set(self.urls) and time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise SystemExit(f"the server stopped: {self.proc.wait()}")
            found = re.match(r"^(\S+): (http://\S+)$", line.strip())
            if found:
                self.urls[found[1]] = found[2]
        self.log: list[tuple[float, str]] = []  # (monotonic, line)
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.log.append((time.monotonic(), line.rstrip()))

    def checks_logged(self, since: float) -> dict[str, Any]:
        """What the checker logged of its checks since `since`: each check's wall time,
        and the limits it took."""
        walls, limits = [], []
        for at, line in list(self.log):
            if at < since:
                continue
            checked = re.search(r"checker checked \S+ on \S+: ([\d.]+) s", line)
            if checked:
                walls.append(float(checked[1]))
            limit = re.search(r"checker background checks at once: (\d+)", line)
            if limit:
                limits.append(int(limit[1]))
        return {"check_wall_s": percentiles(walls), "limits_taken": limits}

    def other_lines(self) -> list[str]:
        """The server's lines that are not the checker's own figures (warnings, errors)."""
        return [line for _, line in self.log if not line.startswith("labgen.workshop.checker")]

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Typist(threading.Thread):
    """Types into a seat's terminal (its websocket, as the page does): a short word at a
    time, each awaited as it echoes back; a comment line ended with Enter every
    `enter_every` words. The words' echo latencies are kept."""

    def __init__(self, url: str, until: float, pause: float = 0.25, enter_every: int = 8):
        super().__init__(daemon=True)
        self.url = url.replace("http://", "ws://") + "terminal?cols=500&rows=50"
        self.until, self.pause, self.enter_every = until, pause, enter_every
        self.latencies: list[float] = []
        self.lost = 0

    def run(self) -> None:
        from websockets.sync.client import connect

        with connect(self.url, open_timeout=30, max_size=None) as ws:
            self._drain(ws, time.monotonic() + 2)  # tmux draws the screen first
            ws.send(json.dumps({"input": "\x15#\r"}))  # a clean line, a comment
            words = 0
            while time.monotonic() < self.until:
                word = "".join(random.choices(string.ascii_lowercase, k=6))
                sent = time.monotonic()
                # A line begun with '#' is a comment, whoever's word comes first.
                ws.send(
                    json.dumps({"input": ("#" if words % self.enter_every == 0 else "") + word})
                )
                if self._drain(ws, sent + 5, word.encode()):
                    self.latencies.append(time.monotonic() - sent)
                else:
                    self.lost += 1
                words += 1
                if words % self.enter_every == 0:
                    ws.send(json.dumps({"input": "\r"}))
                time.sleep(self.pause)

    @staticmethod
    def _drain(ws: Any, deadline: float, wanted: bytes | None = None) -> bool:
        """Read the terminal until `wanted` shows (escape sequences taken out) or the
        deadline; whether it showed."""
        seen = b""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                frame = ws.recv(timeout=left)
            except TimeoutError:
                return False
            if isinstance(frame, bytes):
                seen = (seen + ANSI.sub(b"", frame))[-8192:]
                if wanted is not None and wanted in seen:
                    return True


def listen(url: str, stop: threading.Event, counts: list[int]) -> None:
    """An instructor's page's event stream, read until `stop` (or the server goes)."""
    try:
        with urllib.request.urlopen(url, timeout=120) as stream:
            while not stop.is_set():
                if stream.readline():
                    counts[0] += 1
    except OSError:
        if not stop.is_set():
            counts[1] += 1  # a stream lost while the load ran


def load_pages(urls: list[str], stop: threading.Event, took: list[float], lost: list[int]) -> None:
    """A client fetching the pages in turn, as fast as they come, until `stop`."""
    while not stop.is_set():
        for url in urls:
            began = time.monotonic()
            try:
                with urllib.request.urlopen(url, timeout=60) as page:
                    page.read()
            except OSError:
                lost[0] += 1
                continue
            took.append(time.monotonic() - began)


@contextmanager
def measured(pid: int) -> Iterator[dict[str, Any]]:
    """The server's CPU (its own, its children's), the host's, over the `with`."""
    figures: dict[str, Any] = {}
    own, children = cpu_seconds(pid)
    busy, total = host_busy()
    began = time.monotonic()
    load = os.getloadavg()[0]
    yield figures
    seconds = time.monotonic() - began
    own2, children2 = cpu_seconds(pid)
    busy2, total2 = host_busy()
    cores = os.cpu_count() or 1
    figures["seconds"] = round(seconds, 1)
    figures["server_cpu_percent_of_a_core"] = round(100 * (own2 - own) / seconds)
    figures["checker_cpu_percent_of_a_core"] = round(100 * (children2 - children) / seconds)
    figures["host_cpu_percent_of_all_cores"] = round(100 * (busy2 - busy) / max(1, total2 - total))
    figures["host_cores"] = cores
    # Other work on the host (other rooms, tests) shows here: the figures share the cores.
    figures["load_average_1min"] = [round(load, 1), round(os.getloadavg()[0], 1)]
    figures.update(rss_mib(pid))


def background_checks(since: float, until: float) -> dict[str, list[float]]:
    """Each seat's background checks between two epoch times, from the room's database."""
    from labgen.workshop import db

    with db.read_room(NAME) as store:
        events = store.events()
    times: dict[str, list[float]] = {}
    for event in events:
        background = event.kind == db.CHECK and event.source == db.BY_BACKGROUND
        if background and since <= event.at <= until:
            times.setdefault(event.seat, []).append(event.at)
    return times


def cadence(seats: list[str], since: float, until: float) -> dict[str, Any]:
    """Seconds between two background checks of a seat in the window (and the longest
    wait from the window's start to a seat's first check, or to its end without one)."""
    times = background_checks(since, until)
    gaps: list[float] = []
    longest = 0.0
    for seat in seats:
        marks = [since, *times.get(seat, []), until]
        steps = [b - a for a, b in itertools.pairwise(marks)]
        gaps += [b - a for a, b in itertools.pairwise(marks[1:-1])]
        longest = max(longest, *steps)
    return {
        "checks": sum(len(t) for t in times.values()),
        "seats_checked": len(times),
        "between_checks_s": percentiles(gaps),
        "longest_wait_s": round(longest, 1),
    }


def typing_phase(server: Server, seats: list[str], seconds: float) -> dict[str, Any]:
    """A typist on every seat: a command line every few seconds."""
    began_epoch, began, until = time.time(), time.monotonic(), time.monotonic() + seconds
    typists = [Typist(server.urls[s], until, pause=0.4, enter_every=4) for s in seats]
    with measured(server.proc.pid) as figures:
        for typist in typists:
            typist.start()
        for typist in typists:
            typist.join(seconds + 60)
    # the first checks after a start are staggered: count from a few seconds in
    figures["cadence"] = cadence(seats, began_epoch + 5, time.time())
    figures["checker"] = server.checks_logged(began)
    figures["echo_s"] = percentiles([x for t in typists for x in t.latencies])
    figures["echo_lost"] = sum(t.lost for t in typists)
    return figures


def load_phase(server: Server, seats: list[str], seconds: float) -> dict[str, Any]:
    """Event streams, page loaders and typists on the first two seats, at once."""
    stop = threading.Event()
    counts: list[int] = [0, 0]  # events read, streams lost
    took: list[float] = []
    lost: list[int] = [0]
    instructor = server.urls["instructor"]
    pages = [instructor, server.urls[seats[0]], server.urls[seats[1]]]
    threads = [
        threading.Thread(target=listen, args=(instructor + "events", stop, counts), daemon=True)
        for _ in range(LISTENERS)
    ] + [
        threading.Thread(target=load_pages, args=(pages, stop, took, lost), daemon=True)
        for _ in range(LOADERS)
    ]
    began = time.monotonic()
    until = began + seconds
    typists = [Typist(server.urls[seats[i % 2]], until) for i in range(TYPISTS)]
    with measured(server.proc.pid) as figures:
        for thread in [*threads, *typists]:
            thread.start()
        for typist in typists:
            typist.join(seconds + 60)
        stop.set()
        for thread in threads[LISTENERS:]:
            thread.join(60)  # the loaders finish their page; the streams end with the server
    figures["echo_s"] = percentiles([x for t in typists for x in t.latencies])
    figures["echo_lost"] = sum(t.lost for t in typists)
    figures["checker"] = server.checks_logged(began)
    figures["pages_loaded"], figures["pages_failed"] = len(took), lost[0]
    figures["events_read"], figures["streams_lost"] = counts
    figures["page_s"] = percentiles(took)
    figures["listeners"], figures["loaders"], figures["typists"] = LISTENERS, LOADERS, TYPISTS
    return figures


def idle_phase(server: Server, seats: list[str], seconds: float) -> dict[str, Any]:
    began, since = time.time(), time.monotonic()
    with measured(server.proc.pid) as figures:
        time.sleep(seconds)
    figures["cadence"] = cadence(seats, began, time.time())
    figures["checker"] = server.checks_logged(since)
    return figures


def per_core(result: dict[str, Any]) -> dict[str, Any]:
    """What the typing phase says a core holds: seats whose typing attendees are each
    checked every 15 s. Two ways: from the checker's own CPU per check (its children,
    with CHECK_SHARE of a core), and from all the host's CPU per check (the server, the
    typists' echo, the machines' side of the checks: nothing left for anything else)."""
    typing = result.get("typing", {})
    checks = typing.get("cadence", {}).get("checks", 0)
    seconds = typing.get("seconds", 0)
    cpu = typing.get("checker_cpu_percent_of_a_core", 0) / 100 * seconds
    host = typing.get("host_cpu_percent_of_all_cores", 0) / 100 * seconds * (os.cpu_count() or 1)
    if not checks or not cpu:
        return {}
    share = 0.75  # checker.CHECK_SHARE: the cores the checks may keep busy
    return {
        "checker_cpu_per_check_s": round(cpu / checks, 2),
        "host_cpu_per_check_s": round(host / checks, 2),
        "typing_seats_per_core_at_15s": round(share * 15 / (cpu / checks), 1),
        "typing_seats_per_core_at_15s_all_host_cpu": round(15 / (host / checks), 1),
    }


def seat_memory() -> dict[str, int]:
    """MiB each seat's container uses (docker stats), for this home's machines."""
    from labgen.core import resources

    ids = subprocess.run(
        ["docker", "ps", "-q", "--filter", f"label=org.labgen.home={resources.home_tag()}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    if not ids:
        return {}
    out = subprocess.run(
        ["docker", "stats", "--no-stream", "--format", "{{.MemUsage}}", *ids],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    sizes = []
    for line in out.splitlines():
        found = re.match(r"([\d.]+)\s*([KMG]i?B)", line)
        if found:
            unit = {"KiB": 1 / 1024, "MiB": 1, "GiB": 1024}.get(found[2], 1)
            sizes.append(float(found[1]) * unit)
    if not sizes:
        return {}
    return {"median": round(statistics.median(sizes)), "max": round(max(sizes))}


def phases(seats: list[str], compare_one: bool) -> Iterator[tuple[str, Callable[[], Any]]]:
    """Each phase's name and what runs it (a server each: derived limit, then one)."""
    server = Server(seats, workers=None)
    try:
        yield "idle", lambda: idle_phase(server, seats, IDLE_SECONDS)
        yield "typing", lambda: typing_phase(server, seats, TYPING_SECONDS)
        yield "load", lambda: load_phase(server, seats, LOAD_SECONDS)
        yield "server_said", lambda: server.other_lines()[-8:]
    finally:
        server.stop()
    if compare_one:
        server = Server(seats, workers=1)
        try:
            yield "typing_one_at_a_time", lambda: typing_phase(server, seats, TYPING_SECONDS)
        finally:
            server.stop()


def bench(count: int, jobs: int, compare_one: bool) -> dict[str, Any]:
    result: dict[str, Any] = {"seats": count, "jobs": jobs, "host_cores": os.cpu_count()}
    began = time.monotonic()
    up = labgen("workshop", "up", "port-forwarding", "--seats", str(count), "--name", NAME,
                "-j", str(jobs))  # fmt: skip
    result["up_seconds"] = round(time.monotonic() - began, 1)
    result["up_exit"] = up.returncode
    try:
        if up.returncode != 0:
            result["up_output"] = (up.stdout + up.stderr)[-2000:]
            return result
        from labgen.workshop import room as rooms

        seats = rooms.load(NAME).seats
        result["seat_mib"] = seat_memory()
        for name, run in phases(seats, compare_one):
            result[name] = run()
            print(json.dumps({name: result[name]}), file=sys.stderr, flush=True)
        result["per_core"] = per_core(result)
    finally:
        began = time.monotonic()
        down = labgen("workshop", "down", NAME)
        result["down_seconds"] = round(time.monotonic() - began, 1)
        result["down_exit"] = down.returncode
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seats", type=int, default=8)
    parser.add_argument("-j", "--jobs", type=int, default=4)
    parser.add_argument(
        "--compare-one", action="store_true", help="type again with one check at a time"
    )
    parser.add_argument("--quick", action="store_true", help="every phase a quarter as long")
    args = parser.parse_args()
    if args.quick:
        global IDLE_SECONDS, TYPING_SECONDS, LOAD_SECONDS
        IDLE_SECONDS, TYPING_SECONDS, LOAD_SECONDS = 25.0, 15.0, 10.0
    if args.seats < 2:
        parser.error("--seats: at least 2 (the load phase types on two seats)")
    with tempfile.TemporaryDirectory(prefix="labgen-bench-") as home:
        os.environ["LABGEN_HOME"] = home
        os.environ.setdefault("VAGRANT_CHECKPOINT_DISABLE", "1")
        print(json.dumps(bench(args.seats, args.jobs, args.compare_one)), flush=True)


if __name__ == "__main__":
    main()
