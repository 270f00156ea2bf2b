"""The command line of workshops: a room of seats, a server, an instructor's grid."""

from __future__ import annotations

import sys
import time

import click

from labgen.cli.options import ENGINE, JSON, LABS, PROVIDER, context
from labgen.core.errors import EXIT_FAILED, EXIT_OK
from labgen.ui import live as display
from labgen.verbs import workshop
from labgen.workshop.seats import READY


@click.group("workshop")
def workshop_group() -> None:
    """A room of attendees: N machines of a lab, a browser page per seat, a grid.

    `workshop up LAB --seats N` brings the seats up; `workshop serve W` prints each
    seat's URL and the instructor's; `workshop down W` removes everything.
    """


@workshop_group.command("up")
@click.argument("lab")
@click.option("--seats", "n_seats", type=int, required=True, help="How many machines.")
@click.option("--name", help="The workshop's name (default: the lab's); seats are NAME-01 ...")
@click.option("-j", "--jobs", type=int, default=4, show_default=True, help="Seats at a time.")
@click.option(
    "--spares",
    type=int,
    default=0,
    show_default=True,
    help="Pooled machines to keep ready: a reset hands the seat one in about two seconds "
    "and refills behind it (they stay in `labgen pool` afterwards).",
)
@ENGINE
@PROVIDER
@LABS
def up_cmd(
    lab: str,
    n_seats: int,
    name: str | None,
    jobs: int,
    spares: int,
    engine: str | None,
    provider: str | None,
    lab_dirs: tuple[str, ...],
) -> None:
    """Bring up N seats of LAB, J at a time; a seat that fails is retried once.

    Seats claim pooled machines where `labgen pool fill` made some; --spares K keeps K
    more ready for the instructor's resets.

    Exit 1 when a seat failed twice (the others stay up).
    """
    began = time.monotonic()
    with display.seat_progress(f"Bringing up {n_seats} seats of {lab}") as report:
        ctx = context(provider, lab_dirs, engine)
        room, finals = workshop.up(ctx, lab, n_seats, name, jobs, report, spares)
    display.print_up(room, finals, time.monotonic() - began)
    sys.exit(EXIT_OK if all(e.state == READY for e in finals) else EXIT_FAILED)


@workshop_group.command("status")
@click.argument("name", required=False)
@JSON
def status_cmd(name: str | None, as_json: bool) -> None:
    """The workshops (or workshop NAME) and whether each seat answers over SSH."""
    display.print_status(workshop.status(name), as_json)


@workshop_group.command("down")
@click.argument("name")
@click.option("-j", "--jobs", type=int, default=8, show_default=True, help="Seats at a time.")
def down_cmd(name: str, jobs: int) -> None:
    """Remove every seat of workshop NAME (machines, networks, instance dirs) and it."""
    with display.seat_progress(f"Removing workshop {name}") as report:
        events = workshop.down(name, jobs, report)
    display.print_down(name, events)
    sys.exit(EXIT_OK if all(e.state == "removed" for e in events) else EXIT_FAILED)


@workshop_group.command("serve")
@click.argument("name")
@click.option(
    "--listen",
    default="127.0.0.1:8080",
    show_default=True,
    help="ADDRESS:PORT to serve on; 0.0.0.0:8080 lets other hosts in (the room's laptops).",
)
@click.option(
    "--stop-after", type=float, help="Stop by itself after this many seconds (tests, timed rooms)."
)
@LABS
def serve_cmd(name: str, listen: str, stop_after: float | None, lab_dirs: tuple[str, ...]) -> None:
    """Serve workshop NAME: a page per seat (steps and a terminal) and the instructor's grid.

    Prints each seat's URL and the instructor's; each carries its own token. Runs
    until Ctrl-C.
    """
    workshop.serve(context(None, lab_dirs), name, listen, display.print_urls, stop_after)


COMMANDS: list[click.Command] = [workshop_group]
