"""The command line of workshops: a room of seats, a server, an instructor's grid."""

from __future__ import annotations

import click

COMMANDS: list[click.Command] = []
