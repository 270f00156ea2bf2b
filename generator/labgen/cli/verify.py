"""The command line of CI and of a host's boxes: verify, box. Parses arguments and calls
one verb function each; cli.py adds these commands to `labgen` under its error boundary."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from labgen.cli.options import (
    EVERY,
    JSON,
    LABS,
    PROVIDER,
    VERBOSE,
    complete_labs,
    context,
    engines_option,
)
from labgen.core.errors import EXIT_FAILED, EXIT_OK
from labgen.core.lab import iter_labs, load_lab
from labgen.machine import providers
from labgen.ui import printers as ui
from labgen.verbs import box, verify


@click.group("box")
def box_group() -> None:
    """The boxes providers build from labgen's recipe (a base image, a VM box)."""


@box_group.command("build")
@click.option(
    "--provider",
    "-p",
    type=click.Choice(providers.names()),
    default="docker",
    show_default=True,
    help="Whose box to build.",
)
@engines_option("to build it with")
@click.option("--force", is_flag=True, help="Rebuild even if the current box exists.")
@VERBOSE
def box_build(provider: str, engines: str, force: bool, verbose: bool) -> None:
    """Build a provider's box from Debian packages (root; minutes; once per recipe)."""
    chosen = box.engines_named(engines)
    with ui.progress(f"Building the {provider} box", verbose) as say:
        for engine in chosen:
            name = box.build(context().with_say(say), provider, engine, force)
            ui.print_box_ready(name)


@box_group.command("prune")
def box_prune() -> None:
    """Remove boxes built from older recipes (about 500 MB each, more for a VM box)."""
    ui.print_pruned(box.prune())


@box_group.command("list")
def box_list() -> None:
    """List the boxes built on this host (* marks the current recipe's)."""
    ui.print_boxes(box.list_boxes())


@click.command("verify")
@click.argument("labs", nargs=-1, shell_complete=complete_labs)
@EVERY
@click.option(
    "--destroy",
    "when",
    type=click.Choice([d.value for d in verify.Destroy]),
    default="always",
    show_default=True,
    help="When to destroy each lab's machine.",
)
@click.option(
    "--engine",
    "-e",
    "engines",
    metavar="all|E[,E...]",
    envvar="LABGEN_ENGINE",
    show_envvar=True,
    help="Docker engines: 'all' (each lab's verified ones) or a list, e.g. 20.10,28.5. "
    "Default: each lab's default.",
)
@click.option(
    "-j",
    "--jobs",
    default=1,
    type=click.IntRange(1, 16),
    help="Machines at once (with --hosts: on each host).",
)
@click.option(
    "--hosts",
    metavar="H[,H...]",
    help="Spread the lab × engine runs over these registered hosts in turn "
    "(`labgen hosts list`; `local` is this machine), -j on each. Each must answer and "
    "have the base image of every engine it is given (`labgen hosts push`), "
    "checked before any machine starts. Default: all here.",
)
@click.option("--junitxml", type=click.Path(dir_okay=False), help="Write JUnit XML here.")
@click.option(
    "--record",
    is_flag=True,
    help="Write each step's output, normalised, to LAB/recorded/ENGINE/STEP.txt "
    "(after a run that passes).",
)
@click.option(
    "--strict",
    is_flag=True,
    help="Fail (exit 1) when a step's output drifted from its recording, or has none.",
)
@click.option(
    "--ahead/--no-ahead",
    default=True,
    show_default=True,
    help="While the first JOBS runs go, make machines for the next ones in the warm pool "
    "(providers that keep one), at most JOBS waiting; each run claims one. Unclaimed ones "
    "are destroyed at the end.",
)
@JSON
@PROVIDER
@LABS
def verify_cmd(
    labs: tuple[str, ...],
    every: bool,
    when: str,
    engines: str | None,
    jobs: int,
    hosts: str | None,
    junitxml: str | None,
    record: bool,
    strict: bool,
    ahead: bool,
    as_json: bool,
    provider: str | None,
    lab_dirs: tuple[str, ...],
) -> None:
    """Prove that LABS (or --all) still work, each on a fresh machine per Docker engine.

    For every step, in order: its checks must fail before it (a check that already
    passes proves nothing), its command must succeed, and then every check that should
    hold must pass (the earlier steps' too) while those whose until= names the step
    must fail.
    Each step's output is compared with its recording for the engine, if the lab has
    recordings (labgen/recordings.py normalises both): a difference is drift, shown as
    a diff; --strict makes it a failure; --record writes the recordings instead.
    Exit 0 when every lab passes, 1 when one fails, 2 for bad input (nothing started).
    """
    if bool(labs) == every:
        raise click.UsageError("name the labs (names or folders), or pass --all (not both)")
    if record and strict:
        raise click.UsageError("--record writes the recordings; --strict compares with them")
    ctx = context(provider, lab_dirs)
    chosen = list(iter_labs(ctx.labs_path)) if every else [load_lab(r, ctx.labs_path) for r in labs]
    runs = verify.spread(verify.plan(chosen, engines), hosts)
    with ui.progress("Preparing the provider") as say:
        ctx = verify.prepare(ctx.with_say(say), runs)
    recording = verify.Recording(record=record, strict=strict)
    reports = verify.verify_labs(
        ctx, runs, verify.Destroy(when), jobs, ui.verify_event, recording, ahead
    )
    if junitxml:
        from labgen.docs.junit import write_junit

        write_junit(Path(junitxml), [run.lab for run in runs], reports)
    ui.print_verify(reports, as_json, verify.kept_machines(reports), when)
    if not as_json:
        ui.print_recordings(reports)
    sys.exit(EXIT_OK if all(r.ok for r in reports) else EXIT_FAILED)


COMMANDS = [box_group, verify_cmd]
