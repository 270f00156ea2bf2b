"""The room as a grid: seats x steps, each cell not yet / done / failing, and who listens.

Cells change from worker threads (background checks, a Check or "Run it for me" press);
pages follow over server-sent events. Each listener is an asyncio queue fed with
`call_soon_threadsafe`, so a thread never touches the event loop's objects directly.

A cell is done only when the step's own checks ran and passed: a check that did not
run (no results, or problems) never makes a cell done. Done stays done until the seat
is reset: later steps may undo a step's state on purpose (stop-server removes the rules
publish-port made), and the grid says who got where.

With a store (the room's database, db.py) every check, run, machine change and setting
is written as it happens, and a new Grid replays what was written through the same rule
(`next_state`): a restarted server shows the room it had, with the times it had.

A row also says who sits there (the seating's attendee, join.py), how many of the
seat's pages are open now (their event streams: a browser is connected) and when the
attendee last did something (a Check, a run, a terminal opened, a key that ended a
line, their page opened or joined). What a page being open is lives in memory only:
after a restart nobody is connected until their page reconnects, by itself.
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

from labgen.core.results import CHECKS_PASSED, CheckRun
from labgen.workshop import db

NOT_YET, DONE, FAILING, NO_CHECKS = "not-yet", "done", "failing", "no-checks"
# A seat's machine, as the grid's row header shows it.
SEAT_READY, SEAT_RESETTING, SEAT_FAILED = "ready", "resetting", "failed"
# A check run whose checks could not run (problems): beside passed, failed, nothing-checked.
PROBLEM = "problem"


def outcome_of(verdict: CheckRun) -> str:
    """How a check run ended, as the database records it.

    >>> outcome_of(CheckRun("lab", "step", True, [], problems=["no checks.py"]))
    'problem'
    """
    return PROBLEM if verdict.problems else verdict.verdict


def messages_of(verdict: CheckRun) -> list[str]:
    """Why a check run did not pass: its problems, then each failed check's message."""
    failed = [f"{r.title}: {r.message}" for r in verdict.results if not r.ok]
    return [*verdict.problems, *failed]


def next_state(current: str, outcome: str, attempted: bool) -> str | None:
    """A cell's state after a check run that ended in `outcome`, or None: unchanged.

    `attempted`: the attendee pressed Check, so a failure shows as failing; a background
    check that fails leaves an untried step at not yet. Done stays done.

    >>> next_state(NOT_YET, "failed", attempted=False) is None
    True
    >>> next_state(FAILING, "passed", attempted=False)
    'done'
    """
    if current == DONE:
        return None
    if outcome == CHECKS_PASSED:
        state = DONE
    elif outcome == PROBLEM or attempted:
        state = FAILING
    else:
        return None
    return None if state == current else state


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
    attendee: str = ""
    connected: int = 0  # the seat's pages open now (their event streams)
    active: float = 0.0  # epoch seconds of the attendee's last sign; 0: none yet


# How often a row's "last active" is published at most: a typist sends a key per line.
ACTIVE_EVERY = 5.0


class Grid:
    """Every seat's progress through the lab's steps, safe to change from any thread."""

    def __init__(
        self,
        seats: list[str],
        steps: list[str],
        checked: set[str],
        store: db.RoomDB | None = None,
    ):
        self.steps = steps
        self.checked = checked  # the steps that have checks of their own
        self.store = store
        self._lock = threading.Lock()
        self._rows = {s: self._fresh_row(s) for s in seats}
        self._listeners: list[tuple[asyncio.AbstractEventLoop, asyncio.Queue[Any], str]] = []
        self.run_for_me = True  # the instructor may turn "Run it for me" off
        if store is not None:
            self.replay(store.events())
            self.run_for_me = bool(store.settings().get("run_for_me", True))
            # A seat left resetting was being reset by a server that is gone: nothing
            # finishes that reset now, so its row says failed (the instructor resets again).
            for row in self._rows.values():
                if row.machine == SEAT_RESETTING:
                    row.machine = SEAT_FAILED

    def replay(self, events: list[db.Event]) -> None:
        """Rebuild the rows from recorded events, in order, by the rules live events follow."""
        with self._lock:
            for event in events:
                row = self._rows.get(event.seat)
                if row is None:
                    continue  # a seat this room no longer has
                if event.source in (db.BY_CHECK, db.BY_RUN, db.BY_PAGE):
                    row.active = max(row.active, event.at)
                if event.kind == db.MACHINE:
                    self._set_machine(event.seat, event.outcome)
                elif event.kind == db.CHECK and event.step in row.cells:
                    attempted = event.source != db.BY_BACKGROUND
                    self._apply(row.cells[event.step], event, attempted)

    @staticmethod
    def _apply(cell: Cell, event: db.Event, attempted: bool) -> str | None:
        state = next_state(cell.state, event.outcome, attempted)
        if state is not None:
            cell.state, cell.changed = state, event.at
            cell.detail = "; ".join(event.messages)[:500]
        return state

    def _fresh_row(self, seat: str, old: Row | None = None) -> Row:
        cells = {s: Cell(NOT_YET if s in self.checked else NO_CHECKS) for s in self.steps}
        if old is None:
            return Row(seat, SEAT_READY, cells)
        # A reset gives the seat a new machine, not a new attendee.
        return Row(seat, SEAT_READY, cells, old.attendee, old.connected, old.active)

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
        source = db.BY_CHECK if attempted else db.BY_BACKGROUND
        with self._lock:
            event = self._event(
                seat, step, db.CHECK, source, outcome_of(verdict), messages_of(verdict)
            )
            cell = self._rows[seat].cells[step]
            changed = self._apply(cell, event, attempted) is not None
            current = cell.state
            published = self._cell_event(seat, step, cell) if changed else None
        if attempted:  # the recorded time: a restart's replay finds the same
            self.touch(seat, event.at)
        if published is not None:
            self._publish(published)
        return current  # the new state when it changed

    def record_run(self, seat: str, step: str, exit_code: int, seconds: float, output: str) -> None:
        """Record a "Run it for me" of `step` on `seat` (the checker then says what it did)."""
        tail = output.rstrip().splitlines()[-3:] if exit_code else []
        with self._lock:
            event = self._event(seat, step, db.RUN, db.BY_RUN, f"exit {exit_code}", tail, seconds)
        self.touch(seat, event.at)

    def opened(self, seat: str) -> None:
        """Record that the seat's terminal was opened (the attendee is there)."""
        with self._lock:
            event = self._event(seat, "", db.OPENED, db.BY_PAGE, "opened", [])
        self.touch(seat, event.at)

    # --- who sits there, and are they here --------------------------------------------

    def set_attendee(self, seat: str, attendee: str, joined: float = 0.0) -> None:
        """The seat's attendee changed (assigned, joined, freed); `joined`: when they
        joined (their own doing, so their last activity if none is later)."""
        with self._lock:
            row = self._rows.get(seat)
            if row is None:
                return
            row.attendee = attendee
            if attendee and joined:
                row.active = max(row.active, joined)
            event = self._presence(row)
        self._publish(event)

    def connect(self, seat: str) -> None:
        """One of the seat's pages opened its event stream: a browser is there."""
        self._count(seat, +1)

    def disconnect(self, seat: str) -> None:
        """One of the seat's pages went (closed, reloaded, the network dropped)."""
        self._count(seat, -1)

    def _count(self, seat: str, change: int) -> None:
        now = time.time()
        with self._lock:
            row = self._rows.get(seat)
            if row is None:
                return
            row.connected = max(0, row.connected + change)
            if change > 0:
                row.active = now
            event = self._presence(row)
        self._publish(event)

    def touch(self, seat: str, at: float | None = None) -> None:
        """The attendee did something (a key that ends a line, a Check, a run): their
        last activity, published at most every ACTIVE_EVERY seconds per seat."""
        when = time.time() if at is None else at
        with self._lock:
            row = self._rows.get(seat)
            if row is None or when <= row.active:
                return
            quiet = when - row.active >= ACTIVE_EVERY
            row.active = when
            event = self._presence(row)
        if quiet:
            self._publish(event)

    def _presence(self, row: Row) -> dict[str, Any]:
        return {
            "type": "presence",
            "seat": row.seat,
            "attendee": row.attendee,
            "connected": row.connected,
            "active": row.active,
        }

    def _event(
        self,
        seat: str,
        step: str,
        kind: str,
        source: str,
        outcome: str,
        messages: list[str],
        seconds: float = 0.0,
    ) -> db.Event:
        """The event, written to the store first when there is one (under the lock, so
        that the database has the events in the order the grid applied them)."""
        if self.store is not None:
            return self.store.add(seat, step, kind, source, outcome, messages, seconds)
        return db.Event(0, time.time(), seat, step, kind, source, outcome, messages, seconds)

    def set_machine(self, seat: str, machine: str) -> None:
        """The seat's machine is ready, being reset or failed; a reset clears its cells."""
        with self._lock:
            self._event(seat, "", db.MACHINE, db.BY_INSTRUCTOR, machine, [])
            self._set_machine(seat, machine)
            event = {"type": "row", "row": self._row_json(self._rows[seat])}
        self._publish(event)

    def _set_machine(self, seat: str, machine: str) -> None:
        if machine == SEAT_RESETTING:
            self._rows[seat] = self._fresh_row(seat, self._rows[seat])
        self._rows[seat].machine = machine

    def set_run_for_me(self, enabled: bool) -> None:
        """The instructor allows or forbids "Run it for me" (kept across restarts)."""
        if self.store is not None:
            self.store.set_setting("run_for_me", enabled)
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
            "attendee": row.attendee,
            "connected": row.connected,
            "active": row.active,
        }


def _offer(queue: asyncio.Queue[Any], event: dict[str, Any]) -> None:
    if not queue.full():
        queue.put_nowait(event)


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(epoch)) if epoch else ""
