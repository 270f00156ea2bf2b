"""The HTML of the pages, from Jinja2 templates beside this module.

Step explanations are the lab's Markdown, rendered with raw HTML off (a lab file is
not trusted to inject markup into an attendee's page). The pages carry no inline
script: what the scripts need (seat, URLs) travels in data- attributes.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from pathlib import Path

import jinja2
from markdown_it import MarkdownIt
from starlette.responses import HTMLResponse

from labgen.checks.reader import read_checks
from labgen.core.errors import PrerequisiteError
from labgen.core.results import WorkshopReport
from labgen.workshop.service import RoomService, engine_of

HERE = Path(__file__).resolve().parent
VENDOR = HERE / "static" / "vendor"
VENDORED = ("xterm.js", "xterm.css", "addon-fit.js")


def require_vendor() -> None:
    """A PrerequisiteError with the fix unless xterm.js is in the vendor folder."""
    missing = [name for name in VENDORED if not (VENDOR / name).is_file()]
    if missing:
        raise PrerequisiteError(
            f"the workshop's terminal front-end is missing ({', '.join(missing)} in {VENDOR})",
            hint="in a checkout: scripts/setup-workshop.sh (npm ci from package-lock.json); "
            "an installed labgen lacks it only if it was built without it: reinstall it where "
            "npm is (`pip install --force-reinstall labgen`, or `pipx reinstall labgen`)",
        )


@cache
def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


@cache
def _markdown() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": False})


def _steps(service: RoomService, engine: str) -> list[dict[str, object]]:
    checks = read_checks(service.lab)
    return [
        {
            # What differs on this seat's Docker engine, where the lab says.
            "note": _markdown().render(getattr(step, "notes", {}).get(engine, "")),
            "number": number,
            "id": step.id,
            "title": step.title,
            "explain": _markdown().render(step.explain),
            "command": step.command.rstrip("\n"),
            "checks": [c.description for c in checks if c.step == step.id],
        }
        for number, step in enumerate(service.lab.steps, start=1)
    ]


def attendee(service: RoomService, seat: str) -> str:
    """A seat's page: the lab's steps beside a terminal on the seat's machine."""
    engine = engine_of(seat, service.lab)
    template = _env().get_template("attendee.html.j2")
    return template.render(seat=seat, lab=service.lab, engine=engine, steps=_steps(service, engine))


def instructor(service: RoomService, join: str, join_open: bool) -> str:
    """The instructor's page: the room as a grid of seats x steps, and the join page's
    URL (`join`) to show the room."""
    return (
        _env()
        .get_template("instructor.html.j2")
        .render(
            room=service.room,
            lab=service.lab,
            steps=service.lab.steps,
            join=join,
            join_path="/j/" + join.rsplit("/j/", 1)[-1],
            join_open=join_open,
        )
    )


def sheet(service: RoomService, join: object, cards: Sequence[object], join_open: bool) -> str:
    """The printable sheet: the join page's card, then a card per seat (sheet.py)."""
    return (
        _env()
        .get_template("sheet.html.j2")
        .render(room=service.room, lab=service.lab, join=join, cards=cards, join_open=join_open)
    )


def join_page(**context: object) -> str:
    """The join page: its form, or why it seats nobody now (join.py's JoinPage)."""
    return _env().get_template("join.html.j2").render(**context)


CHART_WIDTH = 300  # pixels of the longest bar: every seat reached the step
TIMELINE = (520, 160)  # pixels of the timeline's plot: width, height


def timeline(record: WorkshopReport, width: int, height: int) -> dict[str, object]:
    """How many seats had each checked step done, over time, as SVG polylines: a step
    line per step from the room's first sign of an attendee until the report's time.
    Empty when nobody did anything yet."""
    from labgen.workshop.report import clock

    starts = [s.started for s in record.seats if s.started]
    dones = [d.at for s in record.seats for d in s.done]
    if not dones:
        return {"lines": [], "start": "", "end": ""}
    first = min([*starts, *dones])
    span = max(record.at - first, 1.0)
    seats = max(1, len(record.seats))

    def x(at: float) -> float:
        return round((at - first) / span * width, 1)

    def y(count: int) -> float:
        return round(height - count / seats * height, 1)

    lines = []
    for number, step in enumerate(record.steps, start=1):
        times = sorted(d.at for s in record.seats for d in s.done if d.step == step.step)
        if not step.checked or not times:
            continue
        points = [(0.0, y(0))]
        for count, at in enumerate(times, start=1):
            points += [(x(at), y(count - 1)), (x(at), y(count))]
        points.append((float(width), y(len(times))))
        drawn = " ".join(f"{px},{py}" for px, py in points)
        lines.append({"step": step.step, "number": number, "points": drawn, "reached": len(times)})
    return {"lines": lines, "start": clock(first), "end": clock(record.at)}


def report(service: RoomService) -> str:
    """The room's report as a fragment of the instructor's page: a chart of how many
    seats reached each step (inline SVG, drawn here: no script, nothing fetched), and
    the report's tables."""
    from labgen.workshop import report as reports

    assert service.store is not None, "the handler answers a room without a database"
    record = reports.build(service.store)
    seats = max(1, len(record.seats))
    checked = [s for s in record.steps if s.checked]
    chart = [
        {
            "step": s.step,
            "number": number,
            "reached": s.reached,
            "width": round(CHART_WIDTH * s.reached / seats),
        }
        for number, s in enumerate(record.steps, start=1)
        if s in checked
    ]
    return (
        _env()
        .get_template("report.html.j2")
        .render(
            report=record,
            chart=chart,
            chart_width=CHART_WIDTH,
            timeline=timeline(record, *TIMELINE),
            plot=TIMELINE,
            seats=len(record.seats),
            clock=reports.clock,
            duration=reports.duration,
        )
    )


def watch(service: RoomService, seat: str) -> str:
    """A seat's terminal, read-only, for the instructor."""
    return _env().get_template("watch.html.j2").render(seat=seat, lab=service.lab)


def response(body: str) -> HTMLResponse:
    """A page as the server sends it: never cached (its URL carries a token)."""
    return HTMLResponse(body, headers={"Cache-Control": "no-store"})
