"""The command line of the views of a machine's network: trace, draw."""

from __future__ import annotations

import click

COMMANDS: list[click.Command] = []
