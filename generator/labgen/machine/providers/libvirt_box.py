"""Building the libvirt provider's box from the recipe, and putting it where QEMU reads it.

The recipe's root file system (rootfs.build_rootfs, with recipe.yaml's vm: packages)
gets templates/box/configure-vm.sh, becomes an ext4 disk (`mkfs.ext4 -d`, no partition
table, no boot loader) converted to qcow2, and is added to Vagrant with a local
catalog so the box has a version without any server. Vagrant boots the box's kernel
directly (vagrant-libvirt's `kernel`, `initrd`, `cmd_line`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import vagrant

from labgen.core.context import Say
from labgen.core.errors import MachineError
from labgen.machine import recipe, rootfs
from labgen.machine.vagrant import vagrant_env

LIBVIRT_URI = "qemu:///system"  # libvirt's system daemon: $LIBVIRT_DEFAULT_URI overrides it
DRIVER_ENV = "LABGEN_LIBVIRT_DRIVER"  # kvm or qemu: overrides the probe's verdict
STORAGE_POOL = "default"


def virsh(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """`virsh -c qemu:///system ARGS`, captured."""
    return subprocess.run(
        ["virsh", "-q", "-c", libvirt_uri(), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def libvirt_uri() -> str:
    """Where libvirtd is asked: $LIBVIRT_DEFAULT_URI (as virsh reads it), else the system's."""
    return os.environ.get("LIBVIRT_DEFAULT_URI") or LIBVIRT_URI


def vagrant_home() -> Path:
    return Path(os.environ.get("VAGRANT_HOME") or "~/.vagrant.d").expanduser()


@dataclass(frozen=True)
class BoxPlace:
    """A box and its copies on this host (names from providers/libvirt.py)."""

    name: str
    boot_dir: Path  # vmlinuz, initrd.img and the KVM verdict, where QEMU reads them
    box_dir: Path  # Vagrant's unpacked copy
    volume: str  # libvirt's copy of its disk, in STORAGE_POOL


def disks_on(box: BoxPlace) -> list[str]:
    """The volumes (machines' disks) whose backing file is the box's volume."""
    base = virsh("vol-path", "--pool", STORAGE_POOL, box.volume)
    if base.returncode != 0:
        return []
    users = []
    for line in virsh("vol-list", STORAGE_POOL).stdout.splitlines():
        volume = line.split()[0] if line.split() else ""
        if not volume or volume == box.volume:
            continue
        xml = virsh("vol-dumpxml", "--pool", STORAGE_POOL, volume).stdout
        try:
            backing = ET.fromstring(xml).findtext("backingStore/path")
        except ET.ParseError:
            continue
        if backing == base.stdout.strip():
            users.append(volume)
    return users


def refuse_if_in_use(box: BoxPlace, what: str) -> None:
    users = disks_on(box)
    if users:
        raise MachineError(
            f"cannot {what} the box {box.name}: the disks of VMs are built on it "
            f"({', '.join(users)})",
            hint="destroy those machines first (`labgen destroy --all`), then try again",
        )


def ensure(box: BoxPlace, engine: str, say: Say, force: bool) -> tuple[str, bool]:
    """The box of the current recipe, built unless it is there: (name, built now).

    A box whose stored recipe matches is reused, and what the host lost since (the
    kernel files, libvirt's volume) is put back from Vagrant's copy.
    """
    name = box.name
    if not force and _stored(box).get("recipe") == recipe.recipe_tag(engine):
        _restore_host_side(box, say)
        say(f"box {name} is already built")
        _say_driver(box, say)
        return name, False
    rootfs.require_root_and_tools(
        "the libvirt box", ["mkfs.ext4", "qemu-img"], "e2fsprogs qemu-utils"
    )
    refuse_if_in_use(box, "rebuild")
    started = time.monotonic()
    with rootfs.scratch_dir() as work:
        out = work / "box"
        out.mkdir()
        _make_disk(work, out, engine, say)
        driver, why = _probe_kvm(out / "vmlinuz", say)
        vm = recipe.recipe_spec().vm
        _write_json(
            out / "labgen.json", {"recipe": recipe.recipe_tag(engine), "driver": driver, "why": why}
        )
        _write_json(
            out / "metadata.json",
            {"provider": "libvirt", "format": "qcow2", "virtual_size": vm.disk_gb},
        )
        _add_to_vagrant(box, work, out, say)
    _remove_host_side(box)
    _restore_host_side(box, say)
    say(f"built {name} in {time.monotonic() - started:.0f} s")
    _say_driver(box, say)
    return name, True


def remove(box: BoxPlace) -> None:
    """Remove a box: from Vagrant, libvirt's pool and the boot directory."""
    refuse_if_in_use(box, "remove")
    if box.box_dir.parent.parent.is_dir():
        _vagrant().box_remove(box.name, "libvirt")
    _remove_host_side(box)


def _vagrant() -> vagrant.Vagrant:
    return vagrant.Vagrant(root=tempfile.gettempdir(), env=vagrant_env())


def _write_json(path: Path, data: object) -> None:
    path.write_text(json.dumps(data) + "\n", encoding="utf-8")


def _stored(box: BoxPlace) -> dict[str, str]:
    try:
        data = json.loads((box.box_dir / "labgen.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not (box.box_dir / "box.img").is_file():
        return {}
    return data if isinstance(data, dict) else {}


def driver(boot_dir: Path) -> tuple[str, str]:
    """(driver, why): "kvm" or "qemu" for VMs from the box; $LABGEN_LIBVIRT_DRIVER wins."""
    forced = os.environ.get(DRIVER_ENV)
    if forced in ("kvm", "qemu"):
        return forced, f"{DRIVER_ENV}={forced}"
    try:
        lines = (boot_dir / "driver").read_text(encoding="utf-8").splitlines()
    except OSError:
        return "kvm", "no KVM probe recorded (the box is not built)"
    return (lines[0] if lines and lines[0] in ("kvm", "qemu") else "kvm"), " ".join(lines[1:])


def _say_driver(box: BoxPlace, say: Say) -> None:
    driver_name, why = driver(box.boot_dir)
    if driver_name == "qemu":
        say(f"VMs will run under software emulation (libvirt driver qemu): {why}")
    else:
        say(f"VMs will run under KVM: {why}")
    kvm = Path("/dev/kvm")
    if kvm.exists() and kvm.group() != "kvm":
        say(
            "warning: /dev/kvm is not in group kvm, so libvirt re-probes QEMU at every call "
            "(minutes per `vagrant up`); fix, as udev does: chgrp kvm /dev/kvm && "
            "chmod 0660 /dev/kvm"
        )


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise MachineError(f"{what} failed (exit {proc.returncode}): {proc.stderr.strip()}")


def _make_disk(work: Path, out: Path, engine: str, say: Say) -> None:
    """The recipe's root file system plus the VM's packages, configured, as a disk."""
    vm = recipe.recipe_spec().vm
    root = work / "rootfs"
    rootfs.build_rootfs(root, engine, say, extra_packages=vm.packages)
    say("configuring the VM's boot")
    rootfs.run_in_chroot(root, recipe.box_script("configure-vm.sh"), "configuring the VM")
    # debootstrap copied the build host's /etc/hosts; a VM starts from a clean one.
    (root / "etc/hosts").write_text(
        "127.0.0.1\tlocalhost\n127.0.1.1\tlabgen\n::1\tlocalhost ip6-localhost ip6-loopback\n",
        encoding="utf-8",
    )
    rootfs.unmount_below(root)
    kernels = sorted((root / "boot").glob("vmlinuz-*"))
    initrds = sorted((root / "boot").glob("initrd.img-*"))
    if not kernels or not initrds:
        raise MachineError("the box's root file system has no kernel or initrd in /boot")
    shutil.copyfile(kernels[-1], out / "vmlinuz")
    shutil.copyfile(initrds[-1], out / "initrd.img")
    raw = work / "disk.raw"
    say(f"writing the root file system into a {vm.disk_gb} GB ext4 disk")
    began = time.monotonic()
    with open(raw, "wb") as disk:
        disk.truncate(vm.disk_gb * 1024**3)
    _run(["mkfs.ext4", "-q", "-F", "-L", "labgen-root", "-d", str(root), str(raw)], "mkfs.ext4")
    _run(["qemu-img", "convert", "-O", "qcow2", str(raw), str(out / "box.img")], "qemu-img")
    raw.unlink()
    size = (out / "box.img").stat().st_size / 1024**2
    say(f"disk image ready: {size:.0f} MB ({time.monotonic() - began:.0f} s)")


def _probe_kvm(kernel: Path, say: Say) -> tuple[str, str]:
    """Does KVM run the box's stock kernel here? Boot it to its root-mount panic and see."""
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return "qemu", "no usable /dev/kvm"
    say("testing whether KVM runs the box's kernel (up to 20 s)")
    cmd = [
        "qemu-system-x86_64",
        "-accel",
        "kvm",
        "-m",
        "256",
        "-nodefaults",
        "-display",
        "none",
        "-serial",
        "stdio",
        "-no-reboot",
        "-kernel",
        str(kernel),
        "-append",
        "console=ttyS0 panic=-1 root=/dev/labgen-probe",
    ]
    began = time.monotonic()
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=20, stdin=subprocess.DEVNULL)
        output = proc.stdout.decode(errors="replace") + proc.stderr.decode(errors="replace")
    except subprocess.TimeoutExpired as exc:
        output = (exc.stdout or b"").decode(errors="replace")
        return "qemu", (
            "KVM is present but the box's stock kernel did not boot under it within 20 s "
            f"({_last_line(output) or 'no console output'})"
        )
    if "Kernel panic" in output or "VFS:" in output:
        return "kvm", f"KVM booted the box's kernel in {time.monotonic() - began:.0f} s"
    return "qemu", f"KVM could not boot the box's kernel: {_last_line(output) or 'no output'}"


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:160] if lines else ""


def _add_to_vagrant(box: BoxPlace, work: Path, out: Path, say: Say) -> None:
    """Tar the box (uncompressed: it never leaves this host) and `vagrant box add` it."""
    name, version = box.name, recipe.recipe_spec().vm.box_version
    archive = work / "box.tar"
    say("packing the box")
    with tarfile.open(archive, "w") as tar:
        for member in ("metadata.json", "labgen.json", "box.img", "vmlinuz", "initrd.img"):
            tar.add(out / member, arcname=member)
    # A local catalog, so that the box gets a version (vagrant-libvirt names its
    # volume after it) without any server.
    catalog = work / "catalog.json"
    provider_entry = {"name": "libvirt", "url": archive.resolve().as_uri()}
    _write_json(
        catalog,
        {
            "name": name,
            "description": "labgen lab machine (Debian, Docker), built locally",
            "versions": [{"version": version, "providers": [provider_entry]}],
        },
    )
    try:
        if box.box_dir.parent.is_dir():
            say(f"replacing the older build of {name} in Vagrant")
            _vagrant().box_remove(name, "libvirt")
        say(f"vagrant box add {name} (version {version})")
        _vagrant().box_add(name, str(catalog), provider="libvirt")
    except subprocess.CalledProcessError as exc:
        raise MachineError(f"`vagrant box` failed (exit {exc.returncode}) for {name}") from None


def _remove_host_side(box: BoxPlace) -> None:
    """Drop the host-side copies of an older build under this name (kernel, volume)."""
    shutil.rmtree(box.boot_dir, ignore_errors=True)
    volume = box.volume
    if virsh("vol-info", "--pool", STORAGE_POOL, volume).returncode == 0:
        virsh("vol-delete", "--pool", STORAGE_POOL, volume)


def _restore_host_side(box: BoxPlace, say: Say) -> None:
    """Kernel, initrd and verdict where QEMU reads them; the disk as libvirt's volume."""
    source = box.box_dir
    stored = _stored(box)
    target = box.boot_dir
    recorded = target / "recipe"
    if not (recorded.is_file() and recorded.read_text().strip() == stored.get("recipe")):
        say(f"installing the box's kernel in {target}")
        target.mkdir(parents=True, exist_ok=True)
        target.chmod(0o755)
        for file in ("vmlinuz", "initrd.img"):
            shutil.copyfile(source / file, target / file)
            (target / file).chmod(0o644)
        verdict = f"{stored.get('driver', 'kvm')}\n{stored.get('why', '')}\n"
        (target / "driver").write_text(verdict, encoding="utf-8")
        recorded.write_text(f"{stored.get('recipe', '')}\n", encoding="utf-8")
    _ensure_pool()
    volume = box.volume
    if virsh("vol-info", "--pool", STORAGE_POOL, volume).returncode == 0:
        return
    image = source / "box.img"
    say(f"uploading the box's disk to libvirt's pool {STORAGE_POOL!r} as {volume}")
    began = time.monotonic()
    size = f"{recipe.recipe_spec().vm.disk_gb}G"
    created = virsh(
        "vol-create-as",
        STORAGE_POOL,
        volume,
        size,
        "--allocation",
        str(image.stat().st_size),
        "--format",
        "qcow2",
    )
    if created.returncode != 0:
        raise MachineError(f"virsh vol-create-as failed: {created.stderr.strip()}")
    uploaded = virsh("vol-upload", "--pool", STORAGE_POOL, volume, str(image), timeout=1800)
    if uploaded.returncode != 0:
        virsh("vol-delete", "--pool", STORAGE_POOL, volume)
        raise MachineError(f"virsh vol-upload failed: {uploaded.stderr.strip()}")
    say(f"disk uploaded ({time.monotonic() - began:.0f} s)")


def _ensure_pool() -> None:
    if virsh("pool-info", STORAGE_POOL).returncode == 0:
        return
    for args in (
        ("pool-define-as", STORAGE_POOL, "dir", "--target", "/var/lib/libvirt/images"),
        ("pool-build", STORAGE_POOL),
        ("pool-start", STORAGE_POOL),
        ("pool-autostart", STORAGE_POOL),
    ):
        virsh(*args)
