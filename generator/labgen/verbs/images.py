"""`labgen images save|load`: the docker provider's base image on a USB stick."""

from __future__ import annotations

from pathlib import Path

from ..context import Context
from ..providers import docker


def _docker() -> docker.DockerProvider:
    from .. import providers

    provider = providers.get("docker")
    assert isinstance(provider, docker.DockerProvider)
    return provider


def save(ctx: Context, target: Path) -> str:
    """Save the base image (built first if need be) to `target`; returns its tag."""
    provider = _docker()
    tag, _ = provider.ensure_box(ctx.say)
    ctx.say(f"saving {tag}")
    provider.save_image(target)
    return tag


def load(tarball: Path) -> str:
    """Load a tarball made by `save` into this host's Docker; what Docker said."""
    return _docker().load_images(tarball)
