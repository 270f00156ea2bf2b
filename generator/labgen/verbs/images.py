"""`labgen images save|load`: the docker provider's base image on a USB stick.

`--gzip` trades time for size. Measured here (Debian 12, 2 cores, a 566 MB image):
plain `docker save` 4.9 s; gzip -6 213 MB in 30 s, loaded in 8.8 s; zstd -3 202 MB in
2.9 s, but Docker 20.10's `docker load` refuses zstd ("invalid tar header"), so gzip
it is: every Docker loads it as it is, and so does `labgen images load`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from labgen.core.context import Context
from labgen.core.errors import MachineError, PrerequisiteError
from labgen.machine.providers import docker


def _docker() -> docker.DockerProvider:
    from labgen.machine import providers

    provider = providers.get("docker")
    assert isinstance(provider, docker.DockerProvider)
    return provider


def save(ctx: Context, target: Path, gzip: bool = False) -> str:
    """Save the base image (built first if need be) to `target`, gzipped with `gzip`,
    readable by the others the file is for; returns its tag."""
    provider = _docker()
    tag, _ = provider.ensure_box(ctx.say)
    ctx.say(f"saving {tag}" + (" (gzip: about 30 s a 500 MB image)" if gzip else ""))
    if gzip:
        _save_gzipped(tag, target)
    else:
        provider.save_image(target)
    _readable(target)
    return tag


def _save_gzipped(tag: str, target: Path) -> None:
    """`docker save TAG | gzip`, written beside `target` and renamed into place."""
    if shutil.which("gzip") is None:
        raise PrerequisiteError("--gzip needs gzip on PATH", hint="apt-get install gzip")
    partial = target.with_name(target.name + ".partial")
    try:
        with partial.open("wb") as out:
            save = subprocess.Popen(
                ["docker", "save", tag], stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
            assert save.stdout is not None
            zipped = subprocess.run(["gzip", "-c"], stdin=save.stdout, stdout=out)
            save.stdout.close()
            error = save.stderr.read().decode(errors="replace") if save.stderr else ""
            save.wait()
        if save.returncode != 0 or zipped.returncode != 0:
            raise MachineError(f"`docker save {tag} | gzip` failed: {error.strip()}")
        partial.rename(target)
    finally:
        partial.unlink(missing_ok=True)


def _readable(path: Path) -> None:
    """The mode the user's umask gives new files (`docker save -o` writes 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    path.chmod(0o666 & ~umask)


def load(tarball: Path) -> str:
    """Load a tarball made by `save`, plain or gzipped (Docker reads both), into this
    host's Docker; what Docker said."""
    return _docker().load_images(tarball)
