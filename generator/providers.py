"""The provider table (providers.yaml): what each Vagrant provider needs and defaults to."""

from __future__ import annotations

import functools
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict

PROVIDERS_FILE = Path(__file__).with_name("providers.yaml")


class Provider(BaseModel):
    """One row of providers.yaml."""

    model_config = ConfigDict(extra="forbid")

    name: str = ""
    summary: str
    requires: list[str]
    own_ssh_key: bool
    # The machine is a container on a docker network of its own, which labgen creates
    # (on a free subnet) before rendering and removes with the machine.
    docker_network: bool = False
    box: str | None
    box_arm64: str | None = None  # where the default box is amd64 only
    memory: int | None
    cpus: int | None
    # libvirt: where QEMU reads the box's kernel and initrd (one directory per box),
    # and the kernel command line its VMs boot with (the instance's key is added).
    boot_dir: str | None = None
    cmd_line: str | None = None


@functools.cache
def providers() -> dict[str, Provider]:
    """Every provider labgen renders a block for, in preference order."""
    raw = yaml.safe_load(PROVIDERS_FILE.read_text(encoding="utf-8"))
    return {name: Provider.model_validate({**row, "name": name}) for name, row in raw.items()}
