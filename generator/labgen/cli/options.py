"""What several `labgen` commands share: their common options, and the verbs' Context
built from the command line and the environment a user sets."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from labgen.core.context import Context
from labgen.machine import providers, recipe

F = TypeVar("F", bound=Callable[..., Any])


def context(
    provider: str | None = None,
    labs: tuple[str, ...] = (),
    engine: str | None = None,
    host: str | None = None,
) -> Context:
    """The verbs' Context from the options below; click has already read $LABGEN_* into them."""
    return Context(
        labs_path=tuple(Path(p) for p in labs), provider=provider, engine=engine, host=host
    )


NAMES = ", ".join(providers.names())
PROVIDER = click.option(
    "--provider",
    "-p",
    type=click.Choice(providers.names()),
    envvar="LABGEN_PROVIDER",
    show_envvar=True,
    help=f"Vagrant provider: {NAMES}. Default: the first ready one.",
)
LABS = click.option(
    "--labs",
    "lab_dirs",
    multiple=True,
    type=click.Path(file_okay=False),
    # click splits a Path option's variable at os.pathsep, as PATH is.
    envvar="LABGEN_LABS_PATH",
    show_envvar=True,
    help="Also look for labs in this folder (repeatable), before the bundled ones.",
)
ENGINE = click.option(
    "--engine",
    "-e",
    type=click.Choice(recipe.engines()),
    envvar="LABGEN_ENGINE",
    show_envvar=True,
    help="Docker engine of the machine. Default: the lab's default.",
)


def engines_option(what: str) -> Callable[[F], F]:
    """--engine for verbs that take several engines: 'all' or a list ('what' they are for)."""
    return click.option(
        "--engine",
        "-e",
        "engines",
        default=recipe.recipe_spec().default_engine,
        show_default=True,
        metavar="all|E[,E...]",
        help=f"The Docker engines {what}: 'all', or a list such as 20.10,28.5.",
    )


HOST = click.option(
    "--host",
    metavar="NAME",
    help="Make the machine on this registered host (`labgen hosts list`). Default: here.",
)

JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON for tools.")
VERBOSE = click.option("--verbose", "-v", is_flag=True, help="Show every line of the work.")
EVERY = click.option("--all", "every", is_flag=True, help="All of them.")


def complete_labs(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """Shell completion of lab names (`eval "$(_LABGEN_COMPLETE=bash_source labgen)"`).

    The command's --labs (or $LABGEN_LABS_PATH) is parsed by the time this runs.
    """
    from labgen.core.lab import lab_folders

    path = context(labs=ctx.params.get("lab_dirs") or ()).labs_path
    return [f.name for f in lab_folders(path) if f.name.startswith(incomplete)]


def complete_machines(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """Shell completion of the machines under this labgen home."""
    from labgen.machine.instance import all_instances

    return [i.name for i in all_instances() if i.name.startswith(incomplete)]
