"""What several `labgen` commands share: their common options, and the verbs' Context
built from the command line and the environment a user sets."""

from __future__ import annotations

import os
from pathlib import Path

import click

from . import providers
from .context import Context


def context(provider: str | None = None, labs: tuple[str, ...] = ()) -> Context:
    """--labs, then $LABGEN_LABS_PATH; --provider, else $LABGEN_PROVIDER."""
    env_labs = [p for p in os.environ.get("LABGEN_LABS_PATH", "").split(os.pathsep) if p]
    chosen = provider or os.environ.get("LABGEN_PROVIDER") or None
    return Context(tuple(Path(p) for p in [*labs, *env_labs]), chosen)


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
JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON for tools.")
VERBOSE = click.option("--verbose", "-v", is_flag=True, help="Show every line of the work.")
EVERY = click.option("--all", "every", is_flag=True, help="All of them.")
