"""The room's database read as a report: per seat the steps done and when, per step the
time people took, their attempts and the commonest failure, and where each seat is now.

The seats' states come from replaying the events through the grid's own rule (grid.py),
so the report and a restarted server's grid never disagree. A reset starts a seat over:
what it did before counts in the attempts and failures, not in its steps done.

A step's time is measured from the seat's previous step done (in time order), or for
its first from when the attendee was first seen (their terminal opened, a Check or a
"Run it for me"); a step the background checker found done before any of that has no
time. Failures are those of Check presses: a background check of a step nobody tried
yet fails by design.
"""

from __future__ import annotations

import statistics
import time
from collections import Counter
from dataclasses import dataclass, field

from labgen.core.results import SeatProgress, StepDone, StepSummary, WorkshopReport
from labgen.workshop import db
from labgen.workshop.grid import DONE, FAILING, PROBLEM, SEAT_RESETTING, Grid

FAILED_OUTCOMES = {"failed", PROBLEM}


def clock(epoch: float) -> str:
    """A time of day, as the instructor's grid shows it ('' for never)."""
    return time.strftime("%H:%M:%S", time.localtime(epoch)) if epoch else ""


def iso(epoch: float) -> str:
    """A local date and time, for CSV ('' for never)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(epoch)) if epoch else ""


def duration(seconds: float | None) -> str:
    """Seconds as people read them: '42 s', '3 min 5 s', '2 h 5 min', '' when unknown.

    >>> duration(42.4), duration(185), duration(7500), duration(None)
    ('42 s', '3 min 5 s', '2 h 5 min', '')
    """
    if seconds is None:
        return ""
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    return f"{whole // 3600} h {whole % 3600 // 60} min"


def build(store: db.RoomDB, now: float | None = None) -> WorkshopReport:
    """The report of the room `store` records, as of now."""
    meta, steps, attendees = store.meta(), store.steps(), store.seats()
    events = store.events()
    grid = Grid(list(attendees), [s.id for s in steps], {s.id for s in steps if s.checked})
    grid.replay(events)
    by_seat: dict[str, list[db.Event]] = {seat: [] for seat in attendees}
    for event in events:
        by_seat.setdefault(event.seat, []).append(event)
    seats = [_seat(grid, steps, seat, attendees[seat], by_seat[seat]) for seat in sorted(attendees)]
    summaries = [_step(step, seats, events) for step in steps]
    return WorkshopReport(
        workshop=meta.get("workshop", ""),
        lab=meta.get("lab", ""),
        created=meta.get("created", ""),
        at=time.time() if now is None else now,
        seats=seats,
        steps=summaries,
    )


def _since_reset(events: list[db.Event]) -> list[db.Event]:
    """The seat's events after its last reset (all of them when it was never reset)."""
    last = max(
        (i for i, e in enumerate(events) if e.kind == db.MACHINE and e.outcome == SEAT_RESETTING),
        default=-1,
    )
    return events[last + 1 :]


def _started(events: list[db.Event]) -> float:
    """When the attendee was first seen: a terminal opened, a Check, a run (0: never)."""
    seen = [e.at for e in events if e.kind in (db.OPENED, db.RUN) or e.source == db.BY_CHECK]
    return min(seen, default=0.0)


@dataclass
class _Cursor:
    """Walking a seat's done steps in time order, measuring each from the one before."""

    previous: float
    done: list[StepDone] = field(default_factory=list)

    def add(self, step: str, at: float, source: str) -> None:
        """The next step done, in time order, timed from the one before."""
        seconds = round(at - self.previous, 1) if self.previous and at >= self.previous else None
        self.done.append(StepDone(step, at, source, seconds))
        self.previous = max(self.previous, at)


def _seat(
    grid: Grid, steps: list[db.StepRow], seat: str, attendee: str, events: list[db.Event]
) -> SeatProgress:
    row = grid.snapshot(seat)["rows"][0]
    cells = row["cells"]
    current = _since_reset(events)
    started = _started(current)
    # The source of a done cell: the check event that made it done (same step, same time).
    sources = {(e.step, e.at): e.source for e in current if e.kind == db.CHECK}
    cursor = _Cursor(started)
    for step, cell in sorted(
        ((s, c) for s, c in cells.items() if c["state"] == DONE), key=lambda sc: sc[1]["changed"]
    ):
        cursor.add(step, cell["changed"], sources.get((step, cell["changed"]), ""))
    undone = [s.id for s in steps if s.checked and cells[s.id]["state"] != DONE]
    at_step = undone[0] if undone else ""
    state = cells[at_step]["state"] if at_step else DONE
    attempts = Counter(
        e.step
        for e in events
        if (e.kind == db.CHECK and e.source == db.BY_CHECK) or e.kind == db.RUN
    )
    return SeatProgress(
        seat=seat,
        attendee=attendee,
        machine=row["machine"],
        started=started,
        done=cursor.done,
        at_step=at_step,
        at_state=state,
        since=cursor.previous,
        last_failure=cells[at_step]["detail"] if state == FAILING else "",
        attempts=dict(attempts),
    )


def _step(step: db.StepRow, seats: list[SeatProgress], events: list[db.Event]) -> StepSummary:
    times = [
        (d.seconds, s.seat)
        for s in seats
        for d in s.done
        if d.step == step.id and d.seconds is not None
    ]
    failures = [
        e
        for e in events
        if e.step == step.id
        and e.kind == db.CHECK
        and e.source == db.BY_CHECK
        and e.outcome in FAILED_OUTCOMES
    ]
    # Each message once per failed Check: one press with five failed checks is one failure.
    messages = Counter(m for e in failures for m in set(e.messages))
    commonest = messages.most_common(1)
    slowest = max(times, default=None)
    return StepSummary(
        step=step.id,
        title=step.title,
        checked=step.checked,
        reached=sum(any(d.step == step.id for d in s.done) for s in seats),
        median_seconds=round(statistics.median(t for t, _ in times), 1) if times else None,
        slowest_seconds=slowest[0] if slowest else None,
        slowest_seat=slowest[1] if slowest else "",
        attempts=sum(s.attempts.get(step.id, 0) for s in seats),
        failures=len(failures),
        commonest_failure=commonest[0][0] if commonest else "",
        commonest_count=commonest[0][1] if commonest else 0,
        here_now=sum(s.at_step == step.id for s in seats),
    )
