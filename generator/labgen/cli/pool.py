"""The command line of the warm pool: pool fill, status, drain. Parses arguments and calls
verbs/pool.py; ui/printers.py prints."""

from __future__ import annotations

import click

from labgen.cli.options import HOST, JSON, PROVIDER, VERBOSE, context, engines_option
from labgen.ui import printers as ui
from labgen.verbs import box, pool


@click.group("pool")
def pool_group() -> None:
    """Machines made ahead of time, so that `labgen up` is ready in about a second.

    A pooled machine has Docker running and every offline image loaded, and no lab yet.
    `labgen up LAB` (and a workshop's seats, and verify) claims one of the lab's engine
    when one is ready: the lab's files and settings go in over SSH, and the machine is
    the lab's from then on (destroyed with it, never returned to the pool). Without one,
    `up` makes a machine as always. Each pooled machine costs what a lab machine does
    (see README.md: memory and disk). The docker provider keeps a pool.
    """


@pool_group.command("fill")
@engines_option("to pool")
@click.option(
    "-n",
    "count",
    type=click.IntRange(1, 50),
    default=1,
    show_default=True,
    help="How many ready machines of each engine the pool should hold.",
)
@click.option(
    "--jobs",
    "-j",
    type=click.IntRange(1, 8),
    default=1,
    show_default=True,
    help="Machines made at a time.",
)
@PROVIDER
@HOST
@VERBOSE
def pool_fill(
    engines: str, count: int, jobs: int, provider: str | None, host: str | None, verbose: bool
) -> None:
    """Make pooled machines until each engine has N ready (11-17 s each here); with
    --host, in that host's pool (a pool per host and engine)."""
    chosen = box.engines_named(engines)
    with ui.progress("Filling the pool", verbose) as say:
        result = pool.fill(context(provider, host=host).with_say(say), chosen, count, jobs)
    ui.print_pool_fill(result)


@pool_group.command("status")
@JSON
def pool_status(as_json: bool) -> None:
    """The pooled machines, their engine, and whether each can be claimed."""
    ui.print_pool_status(pool.status(), as_json)


@pool_group.command("drain")
@VERBOSE
def pool_drain(verbose: bool) -> None:
    """Destroy every pooled machine."""
    with ui.progress("Draining the pool", verbose) as say:
        gone = pool.drain(context().with_say(say))
    ui.print_pool_drain(gone)


COMMANDS = [pool_group]
