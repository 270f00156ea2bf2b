"""What several `labgen` commands share: their common options, and the verbs' Context
built from the command line and the environment a user sets."""

from __future__ import annotations

import os
from pathlib import Path

import click

from labgen.core.context import Context
from labgen.machine import providers, recipe


def context(
    provider: str | None = None, labs: tuple[str, ...] = (), engine: str | None = None
) -> Context:
    """--labs, then $LABGEN_LABS_PATH; --provider, else $LABGEN_PROVIDER; --engine, else
    $LABGEN_ENGINE (checked against the recipe's engines by the verbs)."""
    env_labs = [p for p in os.environ.get("LABGEN_LABS_PATH", "").split(os.pathsep) if p]
    return Context(
        labs_path=tuple(Path(p) for p in [*labs, *env_labs]),
        provider=provider or os.environ.get("LABGEN_PROVIDER") or None,
        engine=engine or os.environ.get("LABGEN_ENGINE") or None,
    )


NAMES = ", ".join(providers.names())
PROVIDER = click.option(
    "--provider",
    "-p",
    type=click.Choice(providers.names()),
    help=f"Vagrant provider: {NAMES}. Default: $LABGEN_PROVIDER, else the first ready one.",
)
LABS = click.option(
    "--labs",
    "lab_dirs",
    multiple=True,
    type=click.Path(file_okay=False),
    help="Also look for labs in this folder (repeatable; $LABGEN_LABS_PATH too).",
)
ENGINE = click.option(
    "--engine",
    "-e",
    type=click.Choice(recipe.engines()),
    help="Docker engine of the machine. Default: $LABGEN_ENGINE, else the lab's default.",
)
JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON for tools.")
VERBOSE = click.option("--verbose", "-v", is_flag=True, help="Show every line of the work.")
EVERY = click.option("--all", "every", is_flag=True, help="All of them.")


def complete_labs(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """Shell completion of lab names (`eval "$(_LABGEN_COMPLETE=bash_source labgen)"`)."""
    from labgen.core.lab import lab_folders

    return [f.name for f in lab_folders(context().labs_path) if f.name.startswith(incomplete)]


def complete_machines(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """Shell completion of the machines under this labgen home."""
    from labgen.machine.instance import all_instances

    return [i.name for i in all_instances() if i.name.startswith(incomplete)]
