"""The command line of lab authors and instructors: lint, new, docs, schema, render,
images, doctor. Parses arguments and calls one verb function each; cli.py adds these
commands to `labgen` under its error boundary."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from labgen.cli.options import JSON, LABS, context
from labgen.core.errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from labgen.core.lab import LabSpec
from labgen.inmachine import kernel
from labgen.ui import kernel as ui_kernel
from labgen.ui import printers as ui
from labgen.verbs import docs, doctor, images, lint, new, render


@click.command("lint")
@click.argument("labs", nargs=-1)
@LABS
@JSON
def lint_cmd(labs: tuple[str, ...], lab_dirs: tuple[str, ...], as_json: bool) -> None:
    """Check lab folders LABS without any machine; exit 2 on a problem.

    Without LABS: the lab in the current folder if it is one (it holds lab.yaml),
    else every lab. Every problem in one run, each at its file and line: the lab
    file against its schema, every check tied to an existing step, the checks
    module imported, and each step's command parsed by bash.
    """
    path = context(labs=lab_dirs).labs_path
    folders = lint.lint_folders(labs, path, Path.cwd())
    reports = [lint.lint_lab_dir(folder) for folder in folders]
    if as_json:
        ui.print_json([r.to_json() for r in reports])
    else:
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
@click.argument("labs", nargs=-1)
@click.option("-o", "--output", default="docs", show_default=True, help="The docs folder.")
@click.option("--check", "check_only", is_flag=True, help="Write nothing; exit 1 if stale.")
@LABS
def docs_cmd(
    labs: tuple[str, ...], output: str, check_only: bool, lab_dirs: tuple[str, ...]
) -> None:
    """Generate the docs pages from the lab files: with LABS (names, or lab folders
    anywhere), those labs' pages alone; without, every page (one per lab, an index,
    the seed map), the pages already made for labs elsewhere included.

    The site's navigation lists every page under OUTPUT/labs by itself (mkdocs.yml's
    hook): `mkdocs build --strict` takes a new lab's page as it is.
    """
    paths = docs.docs(context(labs=lab_dirs), Path(output), check_only, labs)
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
    ui.print_rendered(path)


@click.group("images")
def images_group() -> None:
    """Carry the lab machine's images on a USB stick, for rooms without a network."""


@images_group.command("save")
@click.option("-o", "--output", required=True, help="The tarball to write.")
@click.option(
    "--gzip", "gzipped", is_flag=True, help="Compress it (about 40% of the size, 6x the time)."
)
def images_save(output: str, gzipped: bool) -> None:
    """Save the base image (Docker, tools and every lab's offline images) to a tarball."""
    with ui.progress("Saving the base image") as say:
        tag = images.save(context().with_say(say), Path(output), gzip=gzipped)
    ui.print_images_saved(tag, output)


@images_group.command("load")
@click.argument("tarball")
def images_load(tarball: str) -> None:
    """Load TARBALL (made by `labgen images save`, plain or --gzip) into this host's Docker."""
    ui.print_images_loaded(images.load(Path(tarball)))


@click.command("doctor")
@click.option("--host", "host", metavar="NAME", help="Probe registered host NAME instead.")
@JSON
def doctor_cmd(host: str | None, as_json: bool) -> None:
    """Probe what each provider needs here, with the fix for each gap (exit 1: none ready).
    With --host NAME: what that host lacks (Docker or libvirtd answering, base image, disk)."""
    if host is not None:
        from labgen.cli.hosts import doctor_host  # only a --host run pays for its imports

        doctor_host(host, as_json)
        return
    health = doctor.doctor()
    ui.print_doctor(health, as_json)
    if not as_json:  # --json prints a list of providers: no room for it without breaking it
        ui_kernel.print_kernel_view(kernel.host_view())
    sys.exit(EXIT_OK if any(h.ready for h in health) else EXIT_FAILED)


COMMANDS = [lint_cmd, schema_cmd, new_cmd, docs_cmd, render_cmd, images_group, doctor_cmd]
