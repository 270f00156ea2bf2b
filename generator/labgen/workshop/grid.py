"""The room as a grid: seats x steps, each cell not yet / done / failing, and who listens.

Cells change from worker threads (background checks, a Check or "Run it for me" press);
pages follow over server-sent events. Each listener is an asyncio queue fed with
`call_soon_threadsafe`, so a thread never touches the event loop's objects directly.

A cell is done only when the step's own checks ran and passed: a check that did not
run (no results, or problems) never makes a cell done. Done stays done until the seat
is reset: later steps may undo a step's state on purpose (stop-server removes the rules
publish-port made), and the grid says who got where.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from labgen.core.results import CheckRun

NOT_YET, DONE, FAILING, NO_CHECKS = "not-yet", "done", "failing", "no-checks"
# A seat's machine, as the grid's row header shows it.
SEAT_READY, SEAT_RESETTING, SEAT_FAILED = "ready", "resetting", "failed"


@dataclass
class Cell:
    """One seat's one step: its state, when it last changed, and why (a check's message)."""

    state: str = NOT_YET
    changed: float = 0.0  # epoch seconds of the last change of state; 0: never
    detail: str = ""


@dataclass
class Row:
    seat: str
    machine: str = SEAT_READY
    cells: dict[str, Cell] = field(default_factory=dict)


class Grid:
    """Every seat's progress through the lab's steps, safe to change from any thread."""

    def __init__(self, seats: list[str], steps: list[str], checked: set[str]):
        self.steps = steps
        self.checked = checked  # the steps that have checks of their own
        self._lock = threading.Lock()
        self._rows = {s: self._fresh_row(s) for s in seats}
        self._listeners: list[tuple[asyncio.AbstractEventLoop, asyncio.Queue[Any], str]] = []
        self.run_for_me = True  # the instructor may turn "Run it for me" off

    def _fresh_row(self, seat: str) -> Row:
        cells = {s: Cell(NOT_YET if s in self.checked else NO_CHECKS) for s in self.steps}
        return Row(seat, SEAT_READY, cells)

    @property
    def seats(self) -> list[str]:
        return list(self._rows)

    def cell(self, seat: str, step: str) -> Cell:
        with self._lock:
            return Cell(**asdict(self._rows[seat].cells[step]))

    def done(self, seat: str) -> set[str]:
        with self._lock:
            return {s for s, c in self._rows[seat].cells.items() if c.state == DONE}

    def record(self, seat: str, step: str, verdict: CheckRun, attempted: bool) -> str:
        """Apply a check run of `step` on `seat`; returns the cell's state after it.

        `attempted`: the attendee pressed Check or "Run it for me", so a failure shows
        as failing; a background check that fails leaves an untried step at not yet.
        """
        ran = bool(verdict.results) and not verdict.problems
        if ran and verdict.ok:
            state = DONE
        elif verdict.problems or attempted:
            state = FAILING
        else:
            state = None  # not yet, or failing still: the background check adds nothing
        failed = [r for r in verdict.results if not r.ok]
        detail = "; ".join([*verdict.problems, *(f"{r.title}: {r.message}" for r in failed)])
        with self._lock:
            cell = self._rows[seat].cells[step]
            if cell.state == DONE or state is None or state == cell.state:
                return cell.state
            cell.state, cell.changed, cell.detail = state, time.time(), detail[:500]
            event = self._cell_event(seat, step, cell)
        self._publish(event)
        return state

    def set_machine(self, seat: str, machine: str) -> None:
        """The seat's machine is ready, being reset or failed; a reset clears its cells."""
        with self._lock:
            if machine == SEAT_RESETTING:
                self._rows[seat] = self._fresh_row(seat)
            self._rows[seat].machine = machine
            event = {"type": "row", "row": self._row_json(self._rows[seat])}
        self._publish(event)

    def set_run_for_me(self, enabled: bool) -> None:
        self.run_for_me = enabled
        self._publish({"type": "settings", "run_for_me": enabled})

    # --- what pages read -------------------------------------------------------------

    def snapshot(self, seat: str | None = None) -> dict[str, Any]:
        """The whole grid (or one seat's row), as the first event a page gets."""
        with self._lock:
            rows = [self._row_json(r) for r in self._rows.values() if seat in (None, r.seat)]
        return {"type": "grid", "steps": self.steps, "rows": rows, "run_for_me": self.run_for_me}

    def csv(self) -> str:
        """The grid as CSV: a row per seat; per step its state and when it last changed."""
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["seat", "machine", *(h for s in self.steps for h in (s, f"{s} changed"))])
        with self._lock:
            for row in self._rows.values():
                cells = [row.cells[s] for s in self.steps]
                writer.writerow(
                    [row.seat, row.machine, *(v for c in cells for v in (c.state, _iso(c.changed)))]
                )
        return out.getvalue()

    # --- listeners -------------------------------------------------------------------

    def listen(self, seat: str | None = None) -> asyncio.Queue[Any]:
        """A queue of this grid's events (one seat's, or all), fed on the running loop."""
        queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=1000)
        with self._lock:
            self._listeners.append((asyncio.get_running_loop(), queue, seat or ""))
        return queue

    def unlisten(self, queue: asyncio.Queue[Any]) -> None:
        with self._lock:
            self._listeners = [entry for entry in self._listeners if entry[1] is not queue]

    def _publish(self, event: dict[str, Any]) -> None:
        seat = event.get("seat") or event.get("row", {}).get("seat")
        with self._lock:
            listeners = list(self._listeners)
        for loop, queue, only in listeners:
            if only and seat and only != seat:
                continue
            # A page that stops reading loses events rather than growing the server;
            # a loop that is gone (the server stopping) has no one left to tell.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_offer, queue, event)

    def _cell_event(self, seat: str, step: str, cell: Cell) -> dict[str, Any]:
        return {"type": "cell", "seat": seat, "step": step, **asdict(cell)}

    def _row_json(self, row: Row) -> dict[str, Any]:
        return {
            "seat": row.seat,
            "machine": row.machine,
            "cells": {s: asdict(c) for s, c in row.cells.items()},
        }


def _offer(queue: asyncio.Queue[Any], event: dict[str, Any]) -> None:
    if not queue.full():
        queue.put_nowait(event)


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(epoch)) if epoch else ""
