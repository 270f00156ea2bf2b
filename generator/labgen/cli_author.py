"""The command line of lab authors, instructors and CI: box, verify, lint, new, docs,
schema, render, images, doctor. Parses arguments and calls one verb function each;
cli.py adds these commands to `labgen` under its error boundary."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from . import providers, ui
from .cli_options import EVERY, JSON, LABS, PROVIDER, VERBOSE, context
from .errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from .lab import LabSpec, find_lab_dir, iter_labs, lab_folders, load_lab
from .verbs import box, docs, doctor, images, lint, new, render, verify


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
@click.option("--force", is_flag=True, help="Rebuild even if the current box exists.")
@VERBOSE
def box_build(provider: str, force: bool, verbose: bool) -> None:
    """Build a provider's box from Debian packages (root; minutes; once per recipe)."""
    with ui.progress(f"Building the {provider} box", verbose) as say:
        ui.out.print(f"{box.build(context().with_say(say), provider, force)} is ready")


@box_group.command("prune")
def box_prune() -> None:
    """Remove boxes built from older recipes (about 500 MB each, more for a VM box)."""
    ui.out.print("\n".join(f"removed {name}" for name in box.prune()) or "nothing to remove")


@box_group.command("list")
def box_list() -> None:
    """List the boxes built on this host (* marks the current recipe's)."""
    ui.print_boxes(box.list_boxes())


@click.command("verify")
@click.argument("labs", nargs=-1)
@EVERY
@click.option(
    "--destroy",
    "when",
    type=click.Choice([d.value for d in verify.Destroy]),
    default="always",
    show_default=True,
    help="When to destroy each lab's machine.",
)
@click.option("-j", "--jobs", default=1, type=click.IntRange(1, 16), help="Labs at once.")
@click.option("--junitxml", type=click.Path(dir_okay=False), help="Write JUnit XML here.")
@JSON
@PROVIDER
@LABS
def verify_cmd(
    labs: tuple[str, ...],
    every: bool,
    when: str,
    jobs: int,
    junitxml: str | None,
    as_json: bool,
    provider: str | None,
    lab_dirs: tuple[str, ...],
) -> None:
    """Prove that LABS (or --all) still work, each on a fresh machine.

    For every step, in order: its checks must fail before it (a check that already
    passes proves nothing), its command must succeed, and its checks must then pass.
    Exit 0 when every lab passes, 1 when one fails, 2 for bad input (nothing started).
    """
    if bool(labs) == every:
        raise click.UsageError("name the labs (names or folders), or pass --all (not both)")
    ctx = context(provider, lab_dirs)
    chosen = list(iter_labs(ctx.labs_path)) if every else [load_lab(r, ctx.labs_path) for r in labs]
    with ui.progress("Preparing the provider") as say:
        ctx = verify.prepare(ctx.with_say(say), chosen)
    reports = verify.verify_labs(ctx, chosen, verify.Destroy(when), jobs, ui.verify_event)
    if junitxml:
        from .junit import write_junit

        write_junit(Path(junitxml), chosen, reports)
    ui.print_verify(reports, as_json)
    sys.exit(EXIT_OK if all(r.ok for r in reports) else EXIT_FAILED)


@click.command("lint")
@click.argument("labs", nargs=-1)
@LABS
def lint_cmd(labs: tuple[str, ...], lab_dirs: tuple[str, ...]) -> None:
    """Check lab folders LABS (default: every lab) without any machine; exit 2 on a problem.

    The lab file against its schema, every check tied to an existing step, and the
    lab's scripts rendered and parsed by the shell.
    """
    path = context(labs=lab_dirs).labs_path
    folders = [find_lab_dir(ref, path) for ref in labs] if labs else lab_folders(path)
    reports = [lint.lint_lab_dir(folder) for folder in folders]
    ui.print_lint(reports)
    sys.exit(EXIT_OK if all(r.ok for r in reports) else EXIT_USAGE)


@click.command("schema")
def schema_cmd() -> None:
    """Print the JSON schema of lab.yaml (for editors that validate and complete)."""
    ui.print_json(LabSpec.model_json_schema())


@click.command("new")
@click.argument("name")
@click.option("--dir", "parent", default=".", help="Where to create the lab folder.")
def new_cmd(name: str, parent: str) -> None:
    """Create a lab folder NAME that passes `labgen lint`, with comments on what to fill in."""
    ui.print_new(new.new_lab(name, Path(parent)))


@click.command("docs")
@click.option("-o", "--output", default="docs", show_default=True, help="The docs folder.")
@click.option("--check", "check_only", is_flag=True, help="Write nothing; exit 1 if stale.")
@LABS
def docs_cmd(output: str, check_only: bool, lab_dirs: tuple[str, ...]) -> None:
    """Generate the docs pages (one per lab, an index, the seed map) from the lab files."""
    paths = docs.docs(context(labs=lab_dirs), Path(output), check_only)
    ui.print_docs(paths, check_only)
    sys.exit(EXIT_FAILED if check_only and paths else EXIT_OK)


@click.command("render")
@click.argument("lab")
@click.option("-o", "--output", required=True, help="The folder to write (new or empty).")
@click.option("--with-images", is_flag=True, help="Add the base image (~500 MB) for offline rooms.")
@LABS
def render_cmd(lab: str, output: str, with_images: bool, lab_dirs: tuple[str, ...]) -> None:
    """Write a standalone bundle of LAB that attendees bring up with plain Vagrant.

    The folder holds the Vagrantfile, the provisioning and lab scripts (with the
    in-machine helper `labgen-lab` that lists, runs and checks steps) and a README.
    """
    ctx = context(labs=lab_dirs)
    with ui.progress(f"Rendering {lab}") as say:
        path = render.render_bundle(ctx.with_say(say), lab, Path(output), with_images)
    ui.out.print(f"wrote {path}; there: `vagrant up --provider=docker`, then `vagrant ssh`")


@click.group("images")
def images_group() -> None:
    """Carry the lab machine's images on a USB stick, for rooms without a network."""


@images_group.command("save")
@click.option("-o", "--output", required=True, help="The tarball to write.")
def images_save(output: str) -> None:
    """Save the base image (Docker, tools and every lab's offline images) to a tarball."""
    with ui.progress("Saving the base image") as say:
        tag = images.save(context().with_say(say), Path(output))
    ui.out.print(f"saved {tag} to {output}; `labgen images load {output}` on the other machine")


@images_group.command("load")
@click.argument("tarball")
def images_load(tarball: str) -> None:
    """Load TARBALL (made by `labgen images save`) into this host's Docker."""
    ui.out.print(images.load(Path(tarball)))


@click.command("doctor")
@JSON
def doctor_cmd(as_json: bool) -> None:
    """Probe what each provider needs here, with the fix for each gap (exit 1: none ready)."""
    health = doctor.doctor()
    ui.print_doctor(health, as_json)
    sys.exit(EXIT_OK if any(h.ready for h in health) else EXIT_FAILED)


COMMANDS = [box_group, verify_cmd, lint_cmd, schema_cmd, new_cmd, docs_cmd, render_cmd]
COMMANDS += [images_group, doctor_cmd]
