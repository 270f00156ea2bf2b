"""The command line of the host list: hosts add, list, remove, push. Parses arguments and
calls verbs/hosts.py; ui/hosts.py prints."""

from __future__ import annotations

import sys

import click

from labgen.cli.options import JSON, VERBOSE
from labgen.core.errors import EXIT_FAILED, EXIT_OK
from labgen.ui import hosts as ui
from labgen.ui import printers
from labgen.verbs import hosts


@click.group("hosts")
def hosts_group() -> None:
    """Other hosts machines may go on, reached over SSH.

    A Docker host is ssh://[user@]host[:port] (it needs Docker, sshd and key-based login
    as a user in the docker group); a libvirt host is qemu+ssh://[user@]host[:port]/system.
    labgen keeps their SSH host keys in its own known_hosts (under LABGEN_HOME/hosts),
    never in ~/.ssh; your ~/.ssh/config still applies.
    """


@hosts_group.command("add")
@click.argument("name")
@click.argument("url")
def hosts_add(name: str, url: str) -> None:
    """Register host NAME at URL, contact it once (recording its host key) and say what
    it lacks."""
    ui.print_added(hosts.add(name, url))


@hosts_group.command("list")
@JSON
def hosts_list(as_json: bool) -> None:
    """Every host with its cores, memory, free memory, disk, engines and whether it answers."""
    ui.print_list(hosts.list_hosts(), as_json)


@hosts_group.command("remove")
@click.argument("name")
def hosts_remove(name: str) -> None:
    """Forget host NAME (machines on it are not touched)."""
    ui.print_removed(hosts.remove(name).name)


@hosts_group.command("push")
@click.argument("name")
@click.option("--engine", "-e", default=None, help="The engine whose base image to push.")
@VERBOSE
def hosts_push(name: str, engine: str | None, verbose: bool) -> None:
    """Copy a base image onto Docker host NAME: docker save | ssh docker load, no registry."""
    with printers.progress(f"Pushing the base image to {name}", verbose) as say:
        result = hosts.push(name, engine, say)
    ui.print_pushed(result)


def doctor_host(name: str, as_json: bool) -> None:
    """`labgen doctor --host NAME`: the host's gaps with their fixes (exit 1 when any)."""
    report = hosts.examine(name)
    ui.print_report(report, as_json)
    sys.exit(EXIT_OK if report.answers and not report.problems else EXIT_FAILED)


COMMANDS = [hosts_group]
