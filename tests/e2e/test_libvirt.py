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


def tail(path: Path, lines: int = 40) -> str:
    """The last `lines` of a log, or why there is none."""
    if not path.is_file():
        return f"({path} does not exist)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def timed(
    times: dict[str, float],
    phase: str,
    action: Callable[[], subprocess.CompletedProcess[str]],
    instance: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """`action`'s result, its wall time kept in `times`; a phase that times out fails
    with where the VM stood (Vagrant's log and the VM's console), which a CI log alone
    cannot tell (stop 25's CI: up timed out after 900 s with no more than that)."""
    began = time.monotonic()
    try:
        return action()
    except subprocess.TimeoutExpired as exc:
        where = ""
        if instance is not None:
            where = (
                f"\n--- {instance}/vagrant.log (last lines)\n{tail(instance / 'vagrant.log')}"
                f"\n--- {instance}/console.log (last lines)\n{tail(instance / 'console.log')}"
            )
        pytest.fail(f"libvirt {phase} timed out after {exc.timeout} s{where}")
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

    # KVM or software emulation, as the box build found: the first thing to know when
    # a VM is slow.
    boot_dir = providers.get("libvirt").boot_dir(box_name)  # type: ignore[attr-defined]
    print(f"libvirt driver: {tail(boot_dir / 'driver', 2)}", file=sys.stderr, flush=True)

    before = libvirt_state()
    instance = labgen_home / "instances" / LAB
    try:
        up = timed(times, "up", lambda: labgen("up", LAB, "--provider", "libvirt"), instance)
        assert up.returncode == 0, show(up)

        # The Vagrantfile asks for the box that was built, by the same name.
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
