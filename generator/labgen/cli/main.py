"""The `labgen` command line: parses arguments and calls one verb function each.

One error boundary (LabgenGroup.invoke) turns a LabgenError into its message and
exit status; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import importlib
import shlex
import signal
import sys
from typing import Any

import click

from labgen import __version__
from labgen.cli.options import (
    ENGINE,
    EVERY,
    HOST,
    JSON,
    LABS,
    PROVIDER,
    VERBOSE,
    complete_labs,
    complete_machines,
    context,
)
from labgen.core.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, LabgenError
from labgen.core.lab import UnknownLab, iter_labs
from labgen.machine import recipe
from labgen.machine.registry import staleness
from labgen.ui import printers as ui
from labgen.ui.guide_screen import TerminalScreen
from labgen.verbs import check, destroy, guide, run, ssh, status, up


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


# The commands of the other cli modules, by name, each module imported only when one of
# its commands is named (or --help lists them all): `labgen up` need not load the docs
# site's Markdown, JUnit or the workshop's web server first. tests/unit/test_cli.py
# checks this table against the modules' COMMANDS.
ELSEWHERE = {
    **dict.fromkeys(["lint", "schema", "new", "docs", "render", "images", "doctor"], "author"),
    **dict.fromkeys(["box", "verify"], "verify"),
    **dict.fromkeys(["trace", "draw"], "views"),
    "workshop": "workshop",
    "pool": "pool",
    "hosts": "hosts",
}


class LabgenGroup(click.Group):
    """The one error boundary: every verb runs inside `invoke`. Commands of the other
    cli modules are loaded when named (ELSEWHERE)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *ELSEWHERE})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in ELSEWHERE and cmd_name not in self.commands:
            module = importlib.import_module(f"labgen.cli.{ELSEWHERE[cmd_name]}")
            for command in module.COMMANDS:
                self.add_command(command)
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        # A `kill` (SIGTERM) ends a verb as Ctrl-C does: its cleanup runs, exit 130.
        signal.signal(signal.SIGTERM, _interrupt)
        try:
            return super().invoke(ctx)
        except LabgenError as exc:
            if isinstance(exc, UnknownLab) and exc.here is not None:
                exc.hint = _lab_here_hint(exc.name, sys.argv[1:])
            ui.error(exc)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            ui.interrupted()
            ctx.exit(EXIT_INTERRUPTED)


def _lab_here_hint(name: str, argv: list[str]) -> str:
    """The command line the user typed, with the lab folder named by its path, and
    with --labs . instead: the two ways to mean the folder `name` in this directory.

    >>> print(_lab_here_hint("web", ["lint", "web"]))  # doctest: +NORMALIZE_WHITESPACE
    ./web here is a lab folder: `labgen lint ./web` (its path), or
    `labgen lint web --labs .` (the labs in this folder, by name)
    """
    args = list(argv) if name in argv else ["...", name]
    by_path = [f"./{name}" if arg == name else arg for arg in args]
    by_name = [*args, "--labs", "."]
    return (
        f"./{name} here is a lab folder: `labgen {shlex.join(by_path)}` (its path), or "
        f"`labgen {shlex.join(by_name)}` (the labs in this folder, by name)"
    )


def warn_if_stale(machine: str) -> None:
    warning = staleness(machine)
    if warning:
        ui.warning(warning)


@click.group(cls=LabgenGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="labgen")
def main() -> None:
    """Reproducible container-networking labs on Vagrant machines.

    A lab is a folder (lab.yaml and testinfra checks). `labgen up LAB` renders it
    into a Vagrant machine with Docker and the lab's steps installed;
    `labgen run LAB --all` walks the steps; `labgen check LAB` says whether the
    machine is in the state the steps should leave it in.

    Machines live under $LABGEN_HOME (default: the per-user data directory).
    Labs: the bundled ones, and folders on --labs or $LABGEN_LABS_PATH.

    Exit status: 0 success, 1 a machine or check failed, 2 bad input or a
    missing prerequisite (nothing was started), 130 interrupted.
    """


@main.command("list")
@LABS
def list_cmd(lab_dirs: tuple[str, ...]) -> None:
    """List the labs, with their titles."""
    broken: list[LabgenError] = []
    ui.print_labs(list(iter_labs(context(labs=lab_dirs).labs_path, on_error=broken.append)))
    for error in broken:
        ui.error(error)
    sys.exit(EXIT_USAGE if broken else EXIT_OK)


@main.command("up")
@click.argument("lab", shell_complete=complete_labs)
@click.option("--name", help="Machine name (default: the lab's); lets one lab run twice.")
@PROVIDER
@ENGINE
@HOST
@LABS
@VERBOSE
def up_cmd(
    lab: str,
    name: str | None,
    provider: str | None,
    engine: str | None,
    host: str | None,
    lab_dirs: tuple[str, ...],
    verbose: bool,
) -> None:
    """Bring up LAB's machine (a lab name, or a path to a lab folder).

    Renders the lab into an instance directory, builds the provider's box on first
    use, and runs `vagrant up`. A machine that already runs is reused.
    """
    with ui.progress(f"Bringing up {lab}", verbose) as say:
        result = up.up(context(provider, lab_dirs, engine, host).with_say(say), lab, name)
    ui.print_up(result)


@main.command("status")
@JSON
def status_cmd(as_json: bool) -> None:
    """Show the lab machines that exist and their state."""
    ui.print_status(status.status(), as_json)


@main.command("run")
@click.argument("machine", shell_complete=complete_machines)
@click.argument("steps", nargs=-1)
@EVERY
@click.option("--diff", is_flag=True, help="Show what each step changed in the network state.")
def run_cmd(machine: str, steps: tuple[str, ...], every: bool, diff: bool) -> None:
    """Run STEPS (or --all) of the lab on MACHINE, in order, showing their output.

    Where the documented command is interactive (-it, a foreground server, logs -f),
    the lab's non-interactive form runs instead. Stops at the first failing step.
    """
    warn_if_stale(machine)
    outcomes = run.run(machine, steps, every, ui.announce_step, ui.show_diff if diff else None)
    ui.print_run(machine, outcomes)
    sys.exit(EXIT_OK if all(o.ok for o in outcomes) else EXIT_FAILED)


@main.command("check")
@click.argument("machine", shell_complete=complete_machines)
@click.option("--step", "-s", help="The state after this step (default: the furthest run).")
@click.option("--only", is_flag=True, help="Only the chosen step's own checks.")
@click.option(
    "--expect-engine",
    type=click.Choice(recipe.engines()),
    help="Hold the machine to another engine's expected state (do the engines differ?).",
)
@JSON
def check_cmd(
    machine: str, step: str | None, only: bool, expect_engine: str | None, as_json: bool
) -> None:
    """Run MACHINE's lab checks (testinfra over SSH) and say which pass.

    \b
    Exit status:
      0  checks ran and all pass
      1  a check fails, the checks could not run, or no check applies to the
         step (nothing checked is never a pass)
      2  bad input (an unknown machine or step, --only without --step)
    """
    if only and step is None:
        raise click.UsageError("--only needs --step STEP")
    warn_if_stale(machine)
    result, lab = check.check(machine, step, only, expect_engine)
    ui.print_check_run(result, lab, as_json)
    nothing = check.nothing_checked(result)
    if nothing is not None:
        ui.error(nothing)
    sys.exit(check.exit_status(result))


@main.command("ssh", context_settings={"ignore_unknown_options": True})
@click.argument("machine", shell_complete=complete_machines)
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def ssh_cmd(machine: str, command: tuple[str, ...]) -> None:
    """A shell on MACHINE, or one COMMAND (after --) with its exit status."""
    sys.exit(ssh.ssh_into(machine, command))


@main.command("destroy")
@click.argument("machines", nargs=-1, shell_complete=complete_machines)
@EVERY
@click.option("--yes", "-y", is_flag=True, help="Do not ask before destroying --all.")
def destroy_cmd(machines: tuple[str, ...], every: bool, yes: bool) -> None:
    """Destroy MACHINES (or --all, with orphans) and remove their instance directories.

    At a terminal, --all asks first (unless --yes).
    """
    if bool(machines) == every:
        raise click.UsageError("name the machines to destroy, or pass --all (not both)")
    if every and not yes and sys.stdin.isatty():
        click.confirm("Destroy every lab machine under this labgen home?", abort=True)
    with ui.progress("Destroying") as say:
        done = destroy.destroy(context().with_say(say), machines, every)
    ui.print_destroyed(done)


@main.command("guide")
@click.argument("machine", shell_complete=complete_machines)
@click.option("--auto", is_flag=True, help="Play every step without input; exit 1 if one fails.")
@click.option("--restart", is_flag=True, help="Start again from the first step.")
def guide_cmd(machine: str, auto: bool, restart: bool) -> None:
    """Walk MACHINE's lab step by step: explanation, command, what changed, done / not yet.

    At each step: Enter runs it, c checks a step you ran yourself in `labgen ssh`,
    s skips, b goes back, q quits. A guide you quit resumes where you left off.
    """
    warn_if_stale(machine)
    try:
        result = guide.guide(machine, auto=auto, restart=restart, screen=TerminalScreen())
    except click.Abort:
        ui.guide_stopped()
        sys.exit(EXIT_OK)
    ui.print_guide_end(machine, result.failed_step, result.quit, result.completed, result.total)
    sys.exit(EXIT_FAILED if result.failed_step else EXIT_OK)
