"""`labgen render`: a standalone bundle of a lab that attendees bring up with plain Vagrant."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from labgen.checks.reader import read_checks
from labgen.core.context import Context
from labgen.core.errors import UsageError
from labgen.core.lab import load_lab
from labgen.machine import providers, render
from labgen.machine.providers import docker


def render_bundle(ctx: Context, lab_ref: str, out: Path, with_images: bool) -> Path:
    """Write the bundle into `out` (new or empty): Vagrantfile, scripts, keys, README,
    and with `with_images` the base image, for rooms without a network."""
    lab = load_lab(lab_ref, ctx.labs_path)
    out = out.resolve()  # `-o .` and a link to a folder are the folder they name
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(
            f"{out} is not empty (or not a folder); choose a new folder for the bundle"
        )
    instance = f"{lab.name}-bundle"
    base = providers.get("docker")
    assert isinstance(base, docker.DockerProvider)
    settings = {
        p.name: base.bundle_settings(instance)
        if p is base
        else p.settings(instance, live=False, others=())
        for p in providers.all_providers()
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        public_key = render.write_keypair(tmp, comment=f"labgen-bundle-{lab.name}")
        render.render_instance(lab, instance, settings, public_key, tmp, bundle=True)
        if with_images:
            (tmp / "images").mkdir()
            base.ensure_box(ctx.say)
            ctx.say(f"saving {base.image()} into images/labgen-base.tar")
            base.save_image(tmp / "images" / "labgen-base.tar")
        readme = (
            render.jinja_env()
            .get_template("bundle/README.md.j2")
            .render(
                lab=lab,
                folder=out.name,
                checks={
                    step.id: [c.description for c in read_checks(lab) if c.step == step.id]
                    for step in lab.steps
                },
                image=base.image(),
                has_images=with_images,
                privileged=settings[base.name].privileged,
            )
        )
        (tmp / "README.md").write_text(readme, encoding="utf-8")
        share(tmp)
        if not out.exists():
            tmp.rename(out)
            return out
        # An empty folder that exists (perhaps the shell's cwd): moved into, entry by
        # entry, so that the folder itself stays the one the user is in.
        moved = []
        try:
            for entry in sorted(tmp.iterdir()):
                entry.rename(out / entry.name)
                moved.append(out / entry.name)
        except BaseException:
            for path in moved:
                shutil.rmtree(path) if path.is_dir() else path.unlink()
            raise
        tmp.rmdir()
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def share(folder: Path) -> None:
    """Give `folder` the modes the user's umask gives new files, so that the people
    it is meant for can read and copy it: mkdtemp makes it 0700, `docker save` writes
    0600, and the key pair is 0600. The key is shared by design (the Vagrantfile
    names it; every copy of the bundle has it); Vagrant narrows a copy's key to
    0600 before it uses it."""
    umask = os.umask(0)
    os.umask(umask)
    for path in [folder, *folder.rglob("*")]:
        if path.is_symlink():
            continue
        executable = path.is_dir() or path.stat().st_mode & 0o100
        path.chmod((0o777 if executable else 0o666) & ~umask)
