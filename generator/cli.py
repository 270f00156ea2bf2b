"""The `labgen` command line: parses arguments and hands them to one function per verb."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.markup import escape

from . import __version__, lifecycle, ui
from .errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE, LabgenError
from .lab import Lab, LabSpec, find_lab_dir, iter_labs, lab_search_path, load_lab_dir
from .lint import lint_lab_dir
from .providers import providers
from .scaffold import new_lab
from .verify import Destroy, junit_xml, verify_labs

F = TypeVar("F", bound=Callable[..., Any])

PROVIDER_HELP = (
    "Vagrant provider: " + ", ".join(providers()) + ". Default: $LABGEN_PROVIDER, else docker."
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="labgen")
def main() -> None:
    """Reproducible container-networking labs on Vagrant machines.

    A lab is a folder (lab.yaml and testinfra checks). `labgen up LAB` renders it
    into a Vagrant machine with Docker and the lab's steps installed;
    `labgen run LAB --all` walks the steps; `labgen check LAB` says whether the
    machine is in the state the steps should leave it in.

    Machines live under $LABGEN_HOME (default: the per-user data directory).

    Exit status: 0 success, 1 a machine or check failed, 2 bad input or a
    missing prerequisite (nothing was started).
    """


def _handle_errors(func: F) -> F:
    """One place turns a LabgenError into a message and an exit status."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except LabgenError as exc:
            ui.err.print(f"[red]labgen: error:[/] {escape(exc.message)}")
            if exc.hint:
                ui.err.print(f"[dim]hint: {escape(exc.hint)}[/]")
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            ui.err.print("labgen: interrupted")
            sys.exit(130)

    wrapper.__name__ = func.__name__
    wrapper.__doc__ = func.__doc__
    return wrapper  # type: ignore[return-value]


def _warn_if_stale(machine: str) -> None:
    warning = lifecycle.staleness(machine)
    if warning:
        ui.err.print(f"[yellow]labgen: warning:[/] {escape(warning)}")


@main.command("list")
@_handle_errors
def list_cmd() -> None:
    """List the labs, with their titles."""
    broken: list[LabgenError] = []
    ui.print_labs(list(iter_labs(on_error=broken.append)))
    for error in broken:
        ui.err.print(f"[red]labgen: broken lab:[/] {escape(error.message)}")
    if broken:
        sys.exit(EXIT_USAGE)


@main.command()
@click.argument("lab")
@click.option("--provider", "-p", help=PROVIDER_HELP)
@click.option("--name", help="Machine name (default: the lab's name); lets one lab run twice.")
@click.option("--verbose", "-v", is_flag=True, help="Show every line Vagrant prints.")
@_handle_errors
def up(lab: str, provider: str | None, name: str | None, verbose: bool) -> None:
    """Bring up LAB's machine (a lab name, or a path to a lab folder).

    Renders the lab into an instance directory, builds the docker provider's base
    image on first use, and runs `vagrant up`. A machine that already runs is reused.
    """
    with ui.progress(f"Bringing up {lab}", verbose) as say:
        result = lifecycle.up(lab, provider, name, say)
    verb = "is already up" if result.reused else "is up"
    ui.out.print(
        f"[green]Machine {result.instance} {verb}[/] (lab {result.lab}, provider "
        f"{result.provider}, {result.seconds:.1f} s)."
    )
    ui.out.print("Next:")
    ui.out.print(f"  labgen run {result.instance} --all     run every step of the lab")
    ui.out.print(f"  labgen check {result.instance}         is the machine where the steps lead?")
    ui.out.print(
        f"  labgen ssh {result.instance}           a shell on the machine (labgen-lab list)"
    )
    ui.out.print(f"  labgen destroy {result.instance}       remove it when done")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the machines as JSON.")
@_handle_errors
def status(as_json: bool) -> None:
    """Show the lab machines that exist and their state."""
    ui.print_status(lifecycle.status(), as_json)


@main.command()
@click.argument("machine")
@click.argument("steps", nargs=-1)
@click.option("--all", "every", is_flag=True, help="Run every step, in order.")
@click.option("--diff", is_flag=True, help="Show what each step changed in the network state.")
@_handle_errors
def run(machine: str, steps: tuple[str, ...], every: bool, diff: bool) -> None:
    """Run STEPS of the lab on MACHINE, in order, showing their output.

    Where the documented command is interactive (-it, a foreground server, logs -f),
    the lab's non-interactive form runs instead. Stops at the first failing step.
    """
    from .guide import show_diff

    _warn_if_stale(machine)
    outcomes = lifecycle.run_steps(
        machine, steps, every, ui.announce_step, on_diff=show_diff if diff else None
    )
    failed = [o for o in outcomes if o.exit_code != 0]
    if failed:
        ui.out.print(f"[red]step {failed[0].step} failed with exit status {failed[0].exit_code}[/]")
        sys.exit(EXIT_FAILED)
    ui.out.print(
        f"\n[green]{len(outcomes)} step(s) ran[/]; `labgen check {machine}` checks the result"
    )


@main.command()
@click.argument("machine")
@click.option(
    "--step",
    "-s",
    help="Check the state after this step (default: the furthest step run, else the last).",
)
@click.option("--only", is_flag=True, help="Only the chosen step's own checks.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@_handle_errors
def check(machine: str, step: str | None, only: bool, as_json: bool) -> None:
    """Run MACHINE's lab checks (testinfra over SSH) and say which pass.

    One line per check, grouped by the step after which it must hold. Exit 0 when
    all pass, 1 when any fails.
    """
    if only and step is None:
        raise click.UsageError("--only needs --step STEP")
    _warn_if_stale(machine)
    result, lab = lifecycle.check(machine, step, only)
    ui.print_check_run(result, lab, as_json)
    sys.exit(EXIT_OK if result.ok else EXIT_FAILED)


@main.command(context_settings={"ignore_unknown_options": True})
@click.argument("machine")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@_handle_errors
def ssh(machine: str, command: tuple[str, ...]) -> None:
    """A shell on MACHINE, or one COMMAND (after --) with its exit status."""
    sys.exit(lifecycle.ssh_into(machine, command))


@main.command()
@click.argument("machines", nargs=-1)
@click.option("--all", "every", is_flag=True, help="Destroy every lab machine.")
@_handle_errors
def destroy(machines: tuple[str, ...], every: bool) -> None:
    """Destroy MACHINES and remove their instance directories."""
    if not machines and not every:
        raise click.UsageError("name the machines to destroy, or pass --all")
    if machines and every:
        raise click.UsageError("name machines or pass --all, not both")
    with ui.progress("Destroying") as say:
        done = lifecycle.destroy(machines, every, say)
    for name in done:
        ui.out.print(f"destroyed {name}")


@main.group()
def box() -> None:
    """The docker provider's base image (Debian, Docker, sshd, offline images)."""


@box.command("build")
@click.option(
    "--provider",
    "-p",
    type=click.Choice(sorted(lifecycle.BOX_BUILDERS)),
    default="docker",
    show_default=True,
    help="Whose box: the docker provider's base image, or the libvirt VM box.",
)
@click.option("--force", is_flag=True, help="Rebuild even if the current box exists.")
@click.option("--verbose", "-v", is_flag=True, help="Show every line of the build.")
@_handle_errors
def box_build(provider: str, force: bool, verbose: bool) -> None:
    """Build a box from Debian packages (needs root; a minute or two; once per recipe).

    Both come from one recipe (generator/box.yaml): Docker 20.10, sshd, the seed's
    tools and offline substitutes for the labs' images.
    """
    with ui.progress(f"Building the {provider} box", verbose) as say:
        name = lifecycle.ensure_box(provider, force, say)
    ui.out.print(f"{name} is ready")


@box.command("prune")
@_handle_errors
def box_prune() -> None:
    """Remove boxes built from older recipes (about 500 MB each, 1.4 GB for libvirt)."""
    from .box import prune_boxes

    removed = prune_boxes()
    for tag in removed:
        ui.out.print(f"removed {tag}")
    if not removed:
        ui.out.print("nothing to remove")


@box.command("list")
@_handle_errors
def box_list() -> None:
    """List the boxes built on this host (* marks the current recipe's)."""
    from .box import list_boxes
    from .vmbox import list_libvirt_boxes

    for info in list_boxes():
        mark = "*" if info.current else " "
        ui.out.print(f"{mark} docker   {info.tag}  {info.created}  {info.size}")
    for vm in list_libvirt_boxes():
        mark = "*" if vm.current else " "
        ui.out.print(f"{mark} libvirt  {vm.name}  {vm.size_mb} MB")


def _add_lab_dirs(dirs: tuple[str, ...]) -> None:
    """--labs DIR: search these folders first; set in the environment for child processes too."""
    if dirs:
        current = os.environ.get("LABGEN_LABS_PATH", "")
        os.environ["LABGEN_LABS_PATH"] = os.pathsep.join([*dirs, *([current] if current else [])])


def _select_labs(refs: tuple[str, ...], every: bool) -> list[Lab]:
    if refs and every:
        raise click.UsageError("name labs or pass --all, not both")
    if not refs and not every:
        raise click.UsageError("name the labs (names or folders), or pass --all")
    if every:
        return list(iter_labs())
    return [load_lab_dir(find_lab_dir(ref)) for ref in refs]


LABS_OPTION = click.option(
    "--labs",
    "lab_dirs",
    multiple=True,
    type=click.Path(file_okay=False),
    help="Also look for labs in this folder (repeatable; $LABGEN_LABS_PATH too).",
)


@main.command()
@click.argument("labs", nargs=-1)
@click.option("--all", "every", is_flag=True, help="Verify every lab.")
@LABS_OPTION
@click.option(
    "--destroy",
    type=click.Choice([d.value for d in Destroy]),
    default=Destroy.ALWAYS.value,
    show_default=True,
    help="When to destroy each lab's machine.",
)
@click.option(
    "-j",
    "--jobs",
    default=1,
    show_default=True,
    type=click.IntRange(1, 16),
    help="Verify this many labs at once, each on its own machine.",
)
@click.option("--junitxml", type=click.Path(dir_okay=False), help="Write JUnit XML here.")
@click.option("--json", "as_json", is_flag=True, help="Print the reports as JSON.")
@click.option("--provider", "-p", help=PROVIDER_HELP)
@_handle_errors
def verify(
    labs: tuple[str, ...],
    every: bool,
    lab_dirs: tuple[str, ...],
    destroy: str,
    jobs: int,
    junitxml: str | None,
    as_json: bool,
    provider: str | None,
) -> None:
    """Prove that LABS still work, each on a fresh machine.

    For every step, in order: its checks must fail before it (a check that already
    passes proves nothing), its command must succeed, and its checks must then pass.
    A failing step stops its lab. Exit 0 when every lab passes, 1 when one fails,
    2 for bad input (nothing is started then).
    """
    _add_lab_dirs(lab_dirs)
    chosen = _select_labs(labs, every)
    with ui.progress("Preparing the provider") as say:
        lifecycle.prepare_provider(provider, say)
    if provider:
        os.environ["LABGEN_PROVIDER"] = provider
    reports = verify_labs(chosen, Destroy(destroy), jobs, ui.verify_event)
    if junitxml:
        Path(junitxml).write_text(junit_xml(reports), encoding="utf-8")
    ui.print_verify(reports, as_json)
    sys.exit(EXIT_OK if all(r.ok for r in reports) else EXIT_FAILED)


@main.command()
@click.argument("labs", nargs=-1)
@LABS_OPTION
@_handle_errors
def lint(labs: tuple[str, ...], lab_dirs: tuple[str, ...]) -> None:
    """Check the lab folders LABS without any machine (default: every lab).

    The lab file against its schema, every check tied to an existing step, and the
    lab's scripts rendered and parsed by the shell. Exit 2 when anything is wrong.
    """
    _add_lab_dirs(lab_dirs)
    if labs:
        folders = [find_lab_dir(ref) for ref in labs]
    else:
        folders = sorted(
            {
                p
                for d in lab_search_path()
                if d.is_dir()
                for p in d.iterdir()
                if (p / "lab.yaml").is_file()
            }
        )
    reports = [lint_lab_dir(folder) for folder in folders]
    for report in reports:
        if report.ok:
            ui.out.print(f"[green]ok[/]   {report.path}")
        else:
            ui.out.print(f"[red]fail[/] {report.path}")
            for problem in report.problems:
                ui.out.print(f"       {escape(problem)}")
    sys.exit(EXIT_OK if all(r.ok for r in reports) else EXIT_USAGE)


@main.command()
def schema() -> None:
    """Print the JSON schema of lab.yaml (for editors that validate and complete)."""
    ui.print_json(LabSpec.model_json_schema())


@main.command()
@click.argument("name")
@click.option(
    "--dir",
    "parent",
    default=".",
    type=click.Path(file_okay=False),
    show_default=True,
    help="Where to create the lab folder.",
)
@_handle_errors
def new(name: str, parent: str) -> None:
    """Create a lab folder NAME that passes `labgen lint`, with comments saying what to fill in."""
    folder = new_lab(name, Path(parent))
    ui.out.print(f"created {folder}/lab.yaml and {folder}/checks.py")
    ui.out.print(f"next: edit them, then `labgen lint {folder}` and `labgen verify {folder}`")


@main.command()
@click.option(
    "-o",
    "--output",
    default="docs",
    show_default=True,
    type=click.Path(file_okay=False),
    help="The docs folder to write into.",
)
@click.option(
    "--check",
    "check_only",
    is_flag=True,
    help="Write nothing; exit 1 if the pages differ from the lab files.",
)
@_handle_errors
def docs(output: str, check_only: bool) -> None:
    """Generate the docs pages (one per lab, an index, the seed map) from the lab files."""
    from . import docs as docgen

    labs = list(iter_labs())
    seed = docgen.default_seed_path().read_text(encoding="utf-8")
    if check_only:
        stale = docgen.check_docs(Path(output), labs, seed)
        for path in stale:
            ui.out.print(f"out of date: {path}")
        if stale:
            ui.err.print("run `labgen docs` to regenerate them")
        sys.exit(EXIT_FAILED if stale else EXIT_OK)
    for path in docgen.write_docs(Path(output), labs, seed):
        ui.out.print(f"wrote {path}")


@main.command("render")
@click.argument("lab")
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(file_okay=False),
    help="The folder to write the bundle into (new or empty).",
)
@click.option(
    "--with-images",
    is_flag=True,
    help="Also save the base image into the bundle (about 500 MB) for offline rooms.",
)
@_handle_errors
def render_cmd(lab: str, output: str, with_images: bool) -> None:
    """Write a standalone bundle of LAB that attendees bring up with plain Vagrant.

    The folder holds the Vagrantfile, the provisioning and lab scripts (with the
    in-machine helper `labgen-lab` that lists, runs and checks steps) and a README.
    """
    with ui.progress(f"Rendering {lab}") as say:
        bundle = lifecycle.render_bundle(lab, Path(output), with_images, say)
    ui.out.print(f"wrote {bundle.path}; there: `vagrant up --provider=docker`, then `vagrant ssh`")


@main.group()
def images() -> None:
    """Carry the lab machine's images on a USB stick, for rooms without a network."""


@images.command("save")
@click.option(
    "-o", "--output", required=True, type=click.Path(dir_okay=False), help="The tarball to write."
)
@_handle_errors
def images_save(output: str) -> None:
    """Save the base image (Docker, tools and every lab's offline images) to a tarball."""
    from . import box as boxes

    with ui.progress("Saving the base image") as say:
        tag, _ = boxes.ensure_base_image(say)
        boxes.save_image(tag, Path(output))
    ui.out.print(f"saved {tag} to {output}; `labgen images load {output}` on the other machine")


@images.command("load")
@click.argument("tarball", type=click.Path(dir_okay=False))
@_handle_errors
def images_load(tarball: str) -> None:
    """Load TARBALL (made by `labgen images save`) into this host's Docker."""
    from . import box as boxes

    ui.out.print(boxes.load_images(Path(tarball)))


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the probes as JSON.")
@_handle_errors
def doctor(as_json: bool) -> None:
    """Probe what each provider needs on this host, with the fix for each gap.

    Exit 0 when some provider is ready (the one `labgen up` would choose is named),
    1 when none is.
    """
    from . import doctor as doc

    health = doc.examine_all()
    ready = [h.provider for h in health if h.ready]
    ui.print_doctor(health, as_json)
    sys.exit(EXIT_OK if ready else EXIT_FAILED)


@main.command("guide")
@click.argument("machine")
@click.option(
    "--auto",
    is_flag=True,
    help="Play every step without input (a demo, a recording, a test); "
    "exit 1 if a step's checks fail.",
)
@click.option("--restart", is_flag=True, help="Start again from the first step.")
@_handle_errors
def guide_cmd(machine: str, auto: bool, restart: bool) -> None:
    """Walk MACHINE's lab step by step: explanation, command, what changed, done / not yet.

    At each step: Enter runs it, c checks a step you ran yourself in `labgen ssh`,
    s skips, b goes back, q quits. A guide you quit resumes where you left off.
    """
    from . import guide as guiding

    def ask(prompt: str) -> str:
        return str(click.prompt(prompt, default="", show_default=False, prompt_suffix="\n> "))

    instance, state, lab = lifecycle.running(machine)
    _warn_if_stale(machine)
    try:
        result = guiding.guide(instance, state, lab, auto=auto, restart=restart, ask=ask)
    except click.Abort:
        ui.out.print("\nguide stopped; `labgen guide` resumes here")
        sys.exit(EXIT_OK)
    if result.failed_step:
        ui.out.print(f"[red]step {result.failed_step} is not done[/]")
        sys.exit(EXIT_FAILED)
    if result.quit:
        ui.out.print(
            f"stopped after {result.completed} of {result.total} steps; "
            f"`labgen guide {machine}` resumes here"
        )
