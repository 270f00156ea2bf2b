"""The command line of workshops: a room of seats, a server, an instructor's grid."""

from __future__ import annotations

import sys
import time

import click

from labgen.cli.options import ENGINE, JSON, LABS, PROVIDER, context
from labgen.core.errors import EXIT_FAILED, EXIT_OK, UsageError
from labgen.ui import live as display
from labgen.ui import room as seating_display
from labgen.ui.report import print_report
from labgen.verbs import workshop
from labgen.workshop.seats import READY


@click.group("workshop")
def workshop_group() -> None:
    """A room of attendees: N machines of a lab, a browser page per seat, a grid.

    `workshop up LAB --seats N` brings the seats up; `workshop serve W` prints each
    seat's URL, the instructor's and the join page's; `workshop seats W` lists who sits
    where (`assign`, `free`, `reissue` change it); `workshop report W` tells who did
    what, when; `workshop down W` removes the seats (and, with --purge, the room's
    database).
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
@click.option(
    "--hosts",
    "host_list",
    metavar="A,B,...",
    help="Place the seats over these registered hosts (`labgen hosts list`; `local` is "
    "this machine): one at a time to the host with the most free memory left, counting "
    "135 MiB a seat, at most 10 seats per core. A host that does not answer or lacks the "
    "base image is refused before any seat starts. The placement is printed first.",
)
@click.option(
    "--kernel-trace",
    is_flag=True,
    help="Let attendees run `labgen-lab trace --kernel` in their seats. Off by default: "
    "under the docker provider its probes load into the host's kernel and see every "
    "seat's packets (docs/security.md).",
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
    host_list: str | None,
    kernel_trace: bool,
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
    ctx = context(provider, lab_dirs, engine)
    chosen = None
    if host_list is not None:
        # The hosts are probed and the placement printed before any seat starts.
        chosen = workshop.place(ctx, lab, n_seats, [h for h in host_list.split(",") if h.strip()])
        seating_display.print_placement(chosen.hosts, name or workshop.lab_name(ctx, lab))
    with display.seat_progress(f"Bringing up {n_seats} seats of {lab}") as report:
        room, finals = workshop.up(
            ctx, lab, n_seats, name, jobs, report, spares, chosen, kernel_trace
        )
    display.print_up(room, finals, time.monotonic() - began)
    sys.exit(EXIT_OK if all(e.state == READY for e in finals) else EXIT_FAILED)


@workshop_group.command("status")
@click.argument("name", required=False)
@JSON
def status_cmd(name: str | None, as_json: bool) -> None:
    """The workshops (or workshop NAME) and whether each seat answers over SSH."""
    seating_display.print_status(workshop.status(name), as_json)


@workshop_group.command("down")
@click.argument("name")
@click.option("-j", "--jobs", type=int, default=8, show_default=True, help="Seats at a time.")
@click.option(
    "--purge",
    is_flag=True,
    help="Remove the room's database too (what `workshop report` reads); also works on a "
    "workshop already brought down.",
)
def down_cmd(name: str, jobs: int, purge: bool) -> None:
    """Remove every seat of workshop NAME (machines, networks, instance dirs) and it.

    The room's database (every check and run, the settings) stays, so that `workshop
    report NAME` still reads it, until `down --purge`; a new `workshop up` of NAME is
    refused while it is there. Refused (exit 2) while `workshop serve NAME` runs: stop
    the server first, so that no page is left up for machines that are gone.
    """
    with display.seat_progress(f"Removing workshop {name}") as report:
        events = workshop.down(name, jobs, report, purge)
    display.print_down(name, events, purge)
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
@click.option(
    "--tls",
    is_flag=True,
    help="HTTPS with a self-signed certificate made for the room (kept in its folder, "
    "reused); its SHA-256 fingerprint is printed for attendees to compare.",
)
@click.option("--cert", metavar="FILE", help="HTTPS with this PEM certificate (with --key).")
@click.option("--key", metavar="FILE", help="The unencrypted PEM private key of --cert.")
@click.option(
    "--public-url",
    metavar="URL",
    help="What the printed links say, e.g. https://room.example:8443 (a name the room "
    "reaches, or a proxy in front); default: the listen address.",
)
@LABS
def serve_cmd(
    name: str,
    listen: str,
    stop_after: float | None,
    tls: bool,
    cert: str | None,
    key: str | None,
    public_url: str | None,
    lab_dirs: tuple[str, ...],
) -> None:
    """Serve workshop NAME: a page per seat (steps and a terminal) and the instructor's grid.

    Prints each seat's URL and the instructor's, each with its own token, and the join
    page's short URL (/j/CODE) to show the room: an attendee types a name there and is
    given a free seat, and the same browser comes back to it. Runs until Ctrl-C.
    Every check and run is written to the room's database as it happens, so a server
    started again shows the grid it had (states, times, settings, who sits where). One
    server per workshop: a second `serve` of NAME is refused (exit 2) naming the
    first's address; a killed server holds nothing.

    A printed link's token becomes an HttpOnly, SameSite=Strict cookie at the first
    visit, and the browser goes on to the page without it. With --tls (or --cert and
    --key) the port speaks HTTPS only and the cookies are Secure.
    """
    security = workshop.Security(tls, cert, key, public_url)
    workshop.serve(
        context(None, lab_dirs),
        name,
        listen,
        seating_display.print_serving,
        stop_after,
        security=security,
    )


@workshop_group.command("report")
@click.argument("name")
@JSON
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV: a row per seat and step.")
def report_cmd(name: str, as_json: bool, as_csv: bool) -> None:
    """What happened in workshop NAME, from its database: per seat the steps done and
    when; per step the median and slowest time, attempts, the commonest failure; where
    each seat is now.

    Works while `serve` runs, without it, and after `workshop down` (the database stays
    until `workshop down --purge`).
    """
    if as_json and as_csv:
        raise UsageError("--json and --csv: pick one")
    print_report(workshop.report(name), "json" if as_json else "csv" if as_csv else "text")


@workshop_group.command("seats")
@click.argument("name")
@JSON
@click.option("--links", is_flag=True, help="Print each seat's link too (it carries its token).")
def seats_cmd(name: str, as_json: bool, links: bool) -> None:
    """Who sits where in workshop NAME: each seat's attendee, whether the instructor
    assigned it or the attendee joined, since when, and its link's generation (a
    re-issue makes the next); and the join page's URL, open or closed.

    Reads the room's database, with or without a server running.
    """
    seating_display.print_seats(workshop.seating(name), as_json, links)


@workshop_group.command("assign")
@click.argument("name")
@click.argument("seat")
@click.argument("attendee")
def assign_cmd(name: str, seat: str, attendee: str) -> None:
    """Keep SEAT (pf-03, or 3) of workshop NAME for ATTENDEE, and print its link.

    The join page never gives an assigned seat away: hand ATTENDEE the link (or the
    seat's card on the instructor's sheet). Refused (exit 2) when the seat is someone's:
    `free` it first. A running server sees the change at once.
    """
    seats, state = workshop.assign(name, seat, attendee)
    seating_display.print_seat_change(seats, state, "assign")


@workshop_group.command("free")
@click.argument("name")
@click.argument("seat")
def free_cmd(name: str, seat: str) -> None:
    """Take SEAT of workshop NAME from its attendee: the join page may give it to the
    next, and its link is re-issued, so the old link and the old browser's cookie open
    nothing. The machine stays as it is (reset it from the grid for a clean one).
    """
    seats, state = workshop.free(name, seat)
    seating_display.print_seat_change(seats, state, "free")


@workshop_group.command("reissue")
@click.argument("name")
@click.argument("seat")
def reissue_cmd(name: str, seat: str) -> None:
    """A new link for SEAT of workshop NAME (a leaked one): the old link and every
    cookie made from it get the same 404 as a wrong token, at once, and its open pages
    and terminals are closed. The attendee keeps the seat; prints the new link.
    """
    seats, state = workshop.reissue(name, seat)
    seating_display.print_seat_change(seats, state, "reissue")


COMMANDS: list[click.Command] = [workshop_group]
