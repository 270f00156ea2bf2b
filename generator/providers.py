"""The provider table (providers.yaml): what each Vagrant provider needs and defaults to."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict

from .errors import UsageError

PROVIDERS_FILE = Path(__file__).with_name("providers.yaml")
DEFAULT_PROVIDER = "docker"


class Provider(BaseModel):
    """One row of providers.yaml."""

    model_config = ConfigDict(extra="forbid")

    name: str = ""
    summary: str
    requires: list[str]
    own_ssh_key: bool
    box: str | None
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


def get(name: str | None) -> Provider:
    """The named provider (default: LABGEN_PROVIDER, else docker), or a UsageError."""
    chosen = name or os.environ.get("LABGEN_PROVIDER") or DEFAULT_PROVIDER
    table = providers()
    if chosen not in table:
        raise UsageError(
            f"unknown provider {chosen!r}; labgen knows: {', '.join(table)}",
            hint="pass --provider with one of them (docker works wherever Docker runs)",
        )
    return table[chosen]
