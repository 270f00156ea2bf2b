"""The virtualbox provider: a real VM on a laptop, from a public box (online only).

Rendered into every Vagrantfile and validated (`vagrant validate`), not run on
labgen's own machines, which have no VirtualBox.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass

from labgen.core.errors import UsageError
from labgen.machine.instance import InstanceState
from labgen.machine.providers.base import Probe, Provider


def probe_virtualbox() -> Probe:
    """VBoxManage on PATH."""
    path = shutil.which("VBoxManage")
    if path is None:
        return Probe(
            "VBoxManage",
            False,
            "VirtualBox is not installed",
            "install VirtualBox from virtualbox.org (it is not in Debian's main archive), "
            "or use --provider docker",
        )
    return Probe("VBoxManage", True, f"VirtualBox at {path}")


@dataclass(frozen=True)
class VirtualboxSettings:
    """What the virtualbox block needs."""

    box: str
    box_arm64: str  # arm64 hosts: a multi-architecture box (Vagrant 2.4+)
    memory: int
    cpus: int


class VirtualboxProvider(Provider):
    probes = {**Provider.probes, "VBoxManage": probe_virtualbox}

    def settings(
        self,
        instance: str,
        *,
        live: bool,
        others: Sequence[InstanceState],
        engine: str | None = None,
        host: str = "",
    ) -> VirtualboxSettings:
        if host and live:
            raise UsageError(
                f"the {self.name} provider brings machines up on this host only, not on {host}",
                hint="--provider docker puts a machine on another Docker host",
            )
        extra = self.row.extra
        return VirtualboxSettings(
            box=str(extra["box"]),
            box_arm64=str(extra["box_arm64"]),
            memory=int(extra["memory"]),
            cpus=int(extra["cpus"]),
        )


PROVIDER_CLASS = VirtualboxProvider
