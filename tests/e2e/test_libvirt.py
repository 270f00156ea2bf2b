"""The libvirt provider for real: labgen's own box, a VM under libvirt, the CI flow.

`labgen box build --provider libvirt` (once; reused while the recipe is unchanged), then
`labgen up port-forwarding --provider libvirt`, `run --all`, `check`, `destroy`, and
nothing left in libvirt: no domain, volume or network that was not there before.

Needs root, Debian's mirror (for the box build) and a running libvirtd with
vagrant-libvirt (scripts/setup-libvirt.sh). Where libvirt is not ready the test is
skipped with the reason and its fix, unless LABGEN_LIBVIRT_REQUIRED=1 (CI), which
turns that into a failure. Each phase's wall time is printed and recorded as a
JUnit (test suite) property.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import labgen, show
from labgen.machine import providers
from labgen.machine.providers import libvirt_box as vmbox
from labgen.machine.render import ruby_literal

pytestmark = [pytest.mark.e2e, pytest.mark.libvirt]

LAB = "port-forwarding"


def _virsh_column(*args: str) -> set[str]:
    out = subprocess.run(
        ["virsh", "-q", "-c", vmbox.LIBVIRT_URI, *args],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def libvirt_state() -> dict[str, set[str]]:
    """Every domain, network and volume (of the pool VMs use) libvirt knows of."""
    return {
        "domain": _virsh_column("list", "--all", "--name"),
        "network": _virsh_column("net-list", "--all", "--name"),
        "volume": _virsh_column("vol-list", vmbox.STORAGE_POOL),
    }


def _remove_leftovers(left: dict[str, set[str]]) -> None:
    """After a failure is recorded: do not leave a running VM on the host."""
    virsh = ["virsh", "-q", "-c", vmbox.LIBVIRT_URI]
    for domain in left["domain"]:
        subprocess.run([*virsh, "destroy", domain], capture_output=True)
        subprocess.run([*virsh, "undefine", domain, "--remove-all-storage"], capture_output=True)
    for network in left["network"]:
        subprocess.run([*virsh, "net-destroy", network], capture_output=True)
        subprocess.run([*virsh, "net-undefine", network], capture_output=True)
    for volume in left["volume"]:
        subprocess.run(
            [*virsh, "vol-delete", "--pool", vmbox.STORAGE_POOL, volume], capture_output=True
        )


@pytest.fixture
def libvirt_ready() -> None:
    reason = None
    if os.geteuid() != 0:
        reason = "the libvirt box build needs root (debootstrap)"
    else:
        reason = next(
            (p.detail for p in providers.get("libvirt").examine().probes if not p.ok), None
        )
    if reason:
        if os.environ.get("LABGEN_LIBVIRT_REQUIRED") == "1":
            pytest.fail(f"libvirt is not ready: {reason}")
        pytest.skip(f"libvirt is not ready: {reason}")


def timed(
    times: dict[str, float], phase: str, action: Callable[[], subprocess.CompletedProcess[str]]
) -> subprocess.CompletedProcess[str]:
    began = time.monotonic()
    try:
        return action()
    finally:
        times[phase] = round(time.monotonic() - began, 1)
        print(f"libvirt {phase}: {times[phase]} s", file=sys.stderr, flush=True)


def test_box_build_up_run_check_destroy_leaves_nothing(
    libvirt_ready: None,
    labgen_home: Path,
    record_testsuite_property: Callable[[str, object], None],
) -> None:
    times: dict[str, float] = {}

    began = time.monotonic()
    build = labgen("box", "build", "--provider", "libvirt", timeout=1800)
    assert build.returncode == 0, show(build)
    box_name = providers.get("libvirt").box_name()  # type: ignore[attr-defined]
    assert box_name in build.stdout
    times["box build"] = round(time.monotonic() - began, 1)
    print(f"libvirt box build: {times['box build']} s", file=sys.stderr)
    assert box_name == providers.get("libvirt").box_name()  # type: ignore[attr-defined]
    # Built once: a second call finds it and changes nothing.
    again = labgen("box", "build", "--provider", "libvirt")
    assert again.returncode == 0 and "already built" in again.stderr + again.stdout, show(again)

    before = libvirt_state()
    try:
        up = timed(times, "up", lambda: labgen("up", LAB, "--provider", "libvirt"))
        assert up.returncode == 0, show(up)

        # The Vagrantfile asks for the box that was built, by the same name.
        instance = labgen_home / "instances" / LAB
        vagrantfile = (instance / "Vagrantfile").read_text()
        assert f"override.vm.box = {ruby_literal(box_name)}" in vagrantfile

        # The VM accepts its own instance's key, and not Vagrant's well-known one.
        keys = labgen("ssh", LAB, "--", "cat", ".ssh/authorized_keys")
        assert keys.returncode == 0, show(keys)
        own = (instance / "keys" / "id_ed25519.pub").read_text().split()
        assert keys.stdout.split() == own
        insecure = Path(os.environ.get("VAGRANT_HOME", "~/.vagrant.d")).expanduser()
        insecure = insecure / "insecure_private_key"
        if insecure.is_file():
            config = (instance / "ssh-config").read_text()
            host = next(line.split()[1] for line in config.splitlines() if "HostName" in line)
            refused = subprocess.run(
                [
                    "ssh",
                    "-o",
                    "BatchMode=yes",
                    "-o",
                    "IdentitiesOnly=yes",
                    "-o",
                    "StrictHostKeyChecking=no",
                    "-o",
                    "UserKnownHostsFile=/dev/null",
                    "-o",
                    "ConnectTimeout=20",
                    "-i",
                    str(insecure),
                    f"vagrant@{host}",
                    "true",
                ],
                capture_output=True,
                text=True,
            )
            assert refused.returncode == 255, "the VM accepted Vagrant's well-known key"

        run = timed(times, "run --all", lambda: labgen("run", LAB, "--all"))
        assert run.returncode == 0, show(run)

        check = timed(times, "check", lambda: labgen("check", LAB))
        assert check.returncode == 0, show(check)
    finally:
        destroyed = timed(times, "destroy", lambda: labgen("destroy", "--all"))
        for phase, seconds in times.items():
            record_testsuite_property(f"libvirt {phase} s", seconds)
        after = libvirt_state()
        left = {kind: after[kind] - before[kind] for kind in after}
        if any(left.values()):
            _remove_leftovers(left)
    assert destroyed.returncode == 0, show(destroyed)
    assert not any(left.values()), f"left behind in libvirt: {left}"
    assert not (labgen_home / "instances" / LAB).exists()
