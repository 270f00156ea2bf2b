"""The libvirt provider's box, built from the same recipe as the docker provider's base image.

One description of the machine: box.yaml (packages, the user, sshd, the pinned Docker
engine, the offline images) is debootstrapped and configured by box.py's steps, exactly
as for the base image; its vm: section and templates/box/configure-vm.sh add what only
a VM needs (a kernel, systemd as init, DHCP on eth0, AppArmor, a first-boot step for
the SSH keys). The root file system becomes
an ext4 disk (`mkfs.ext4 -d`, no partition table, no boot loader) converted to qcow2;
Vagrant boots the box's kernel directly (vagrant-libvirt's `kernel`, `initrd`, `cmd_line`).

What the build leaves on the host, all named after the box:
  - the Vagrant box NAME (version from box.yaml's vm:), added with `vagrant box add`;
  - libvirt's copy of its disk, the volume vagrant-libvirt would otherwise upload at the
    first `vagrant up` (so an up/destroy cycle neither creates nor leaves a volume);
  - <boot_dir>/<name, / as -> (boot_dir from providers.yaml): vmlinuz and initrd.img,
    where QEMU can read them (Vagrant's box directory under /root it cannot), and
    `driver`, the verdict of the KVM probe.

The box's name is providers.yaml's pattern labgen/{recipe} filled with the base image's
tag (labgen/base:bookworm-1234abcd5678 -> labgen/bookworm-1234abcd5678), so it changes
whenever box.yaml (vm: included), its scripts or labgen's version do; Vagrantfile.j2
fills the same pattern from the docker block's image.

Keys: the box holds no key. Each VM boots with `labgen.authorized_key=BASE64` on its kernel
command line (the instance's public key, rendered into the Vagrantfile); a unit that runs
before sshd writes it to the user's authorized_keys and makes the host key. So a VM
accepts only its own instance's key from its first boot, as the docker provider's do.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from . import box, resources
from .errors import UsageError
from .providers import providers

Progress = box.Progress

LIBVIRT_URI = "qemu:///system"
STORAGE_POOL = "default"
DRIVER_ENV = "LABGEN_LIBVIRT_DRIVER"  # kvm or qemu: overrides the probe's verdict
SETUP_HINT = "or run scripts/setup-libvirt.sh from labgen's source"
VIRTLOGD_SOCKET = Path("/run/libvirt/virtlogd-sock")


def vm_spec() -> box.VmSpec:
    """box.yaml's vm: section."""
    return box.box_spec().vm


def configure_script() -> str:
    """templates/box/configure-vm.sh: what only a VM needs, run in the chroot."""
    return (resources.templates_dir() / "box" / "configure-vm.sh").read_text(encoding="utf-8")


# --- names ------------------------------------------------------------------


def box_name() -> str:
    """The libvirt box of the current recipe, e.g. labgen/bookworm-1234abcd5678.

    providers.yaml's pattern (labgen/{recipe}) with the base image's tag; the
    libvirt block of Vagrantfile.j2 fills in the same pattern from the docker block.
    """
    pattern = providers()["libvirt"].box or "labgen/{recipe}"
    return pattern.replace("{recipe}", box.base_image_tag().split(":", 1)[1])


def recipe_digest() -> str:
    """Everything the box is made from: the base image's tag covers all of box.yaml and
    its scripts (configure-vm.sh included)."""
    return hashlib.sha256(box.base_image_tag().encode()).hexdigest()[:16]


def boot_dir(name: str | None = None) -> Path:
    """Where QEMU reads the box's kernel and initrd (Vagrantfile.j2 knows this path too)."""
    root = providers()["libvirt"].boot_dir or "/var/lib/libvirt/boot"
    return Path(root) / (name or box_name()).replace("/", "-")


def _vagrant_home() -> Path:
    return Path(os.environ.get("VAGRANT_HOME") or "~/.vagrant.d").expanduser()


def _box_dir(name: str) -> Path:
    """Vagrant's unpacked copy of the box (its documented layout)."""
    slug = name.replace("/", "-VAGRANTSLASH-")
    return _vagrant_home() / "boxes" / slug / vm_spec().box_version / "libvirt"


def volume_name(name: str | None = None) -> str:
    """The storage volume vagrant-libvirt makes from the box's disk (its naming rule)."""
    slug = (name or box_name()).replace("/", "-VAGRANTSLASH-")
    return f"{slug}_vagrant_box_image_{vm_spec().box_version}_box.img"


# --- the host: is libvirt there? ------------------------------------------------


def _virsh(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["virsh", "-q", "-c", LIBVIRT_URI, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def _has_systemd() -> bool:
    return Path("/run/systemd/system").is_dir()


def _vagrant_libvirt_installed() -> bool:
    # Debian's package registers the plugin system-wide; `vagrant plugin install`
    # records it in Vagrant's home. Asking `vagrant plugin list` costs 1-2 s.
    if Path("/usr/share/vagrant-plugins/plugins.d/vagrant-libvirt.json").is_file():
        return True
    plugins = _vagrant_home() / "plugins.json"
    if plugins.is_file() and "vagrant-libvirt" in plugins.read_text(encoding="utf-8"):
        return True
    try:
        out = subprocess.run(
            ["vagrant", "plugin", "list"],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "VAGRANT_CHECKPOINT_DISABLE": "1"},
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "vagrant-libvirt" in out


def libvirt_ready() -> str | None:
    """None when this host can run libvirt VMs now; else what is missing and the fix."""
    packages = "vagrant-libvirt libvirt-daemon-system qemu-system-x86 qemu-utils dnsmasq-base"
    missing = [t for t in ("virsh", "libvirtd", "qemu-system-x86_64", "qemu-img") if not _which(t)]
    if missing:
        return (
            f"the libvirt provider needs {', '.join(missing)}, which is not installed; "
            f"install it: apt-get install {packages}  ({SETUP_HINT})"
        )
    if not _vagrant_libvirt_installed():
        return (
            "Vagrant's libvirt plugin is not installed; install it: apt-get install "
            f"vagrant-libvirt (or `vagrant plugin install vagrant-libvirt`)  ({SETUP_HINT})"
        )
    virtlogd = _socket_answers(VIRTLOGD_SOCKET)
    if _has_systemd():
        start = "systemctl start virtlogd libvirtd"
    else:
        start = "libvirtd --daemon" if virtlogd else "virtlogd --daemon; libvirtd --daemon"
    try:
        answer = _virsh("uri", timeout=20)  # connects; `version` costs seconds
    except subprocess.TimeoutExpired:
        return f"libvirtd does not answer at {LIBVIRT_URI} within 20 s; restart it: {start}"
    if answer.returncode != 0:
        error = " ".join(answer.stderr.split())
        if "ermission denied" in error:
            return (
                f"libvirtd at {LIBVIRT_URI} refuses this user ({error}); "
                "join the libvirt group: sudo adduser $USER libvirt (then log in again)"
            )
        return (
            f"libvirtd is not running (virsh -c {LIBVIRT_URI} says: {error or 'nothing'}); "
            f"start it as root: {start}  ({SETUP_HINT})"
        )
    if not virtlogd and not _has_systemd():
        return (
            "virtlogd is not running, and libvirt cannot start a VM without it; "
            f"start it as root: virtlogd --daemon  ({SETUP_HINT})"
        )
    pool = _virsh("pool-info", STORAGE_POOL)
    if pool.returncode == 0 and not re.search(r"^State:\s+running", pool.stdout, re.M):
        return (
            f"libvirt's storage pool {STORAGE_POOL!r} is not active; start it: "
            f"virsh pool-start {STORAGE_POOL} && virsh pool-autostart {STORAGE_POOL}"
        )
    return None


def _socket_answers(path: Path) -> bool:
    """Someone accepts connections on this Unix socket (not just a stale file)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        try:
            sock.connect(str(path))
        except OSError:
            return False
    return True


def _which(tool: str) -> bool:
    return any(shutil.which(tool, path=p) for p in (None, "/usr/sbin:/sbin:/usr/local/sbin"))


# --- the accelerator --------------------------------------------------------------


def libvirt_driver(name: str | None = None) -> tuple[str, str]:
    """(driver, why): "kvm" or "qemu" (software emulation) for VMs from the box.

    LABGEN_LIBVIRT_DRIVER overrides the verdict `labgen box build` recorded.
    """
    forced = os.environ.get(DRIVER_ENV)
    if forced in ("kvm", "qemu"):
        return forced, f"{DRIVER_ENV}={forced}"
    recorded = boot_dir(name) / "driver"
    try:
        lines = recorded.read_text(encoding="utf-8").splitlines()
    except OSError:
        return "kvm", "no KVM probe recorded (the box is not built)"
    return (lines[0] if lines and lines[0] in ("kvm", "qemu") else "kvm"), " ".join(lines[1:])


def _probe_kvm(kernel: Path, progress: Progress) -> tuple[str, str]:
    """Does KVM run the box's stock kernel here? Boot it to its root-mount panic and see."""
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return "qemu", "no usable /dev/kvm"
    progress("testing whether KVM runs the box's kernel (up to 20 s)")
    cmd = [
        "qemu-system-x86_64",
        "-accel", "kvm",
        "-m", "256",
        "-nodefaults",
        "-display", "none",
        "-serial", "stdio",
        "-no-reboot",
        "-kernel", str(kernel),
        "-append", "console=ttyS0 panic=-1 root=/dev/labgen-probe",
    ]  # fmt: skip
    began = time.monotonic()
    try:
        proc = subprocess.run(
            cmd, capture_output=True, timeout=20, stdin=subprocess.DEVNULL, check=False
        )
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


# --- the build ------------------------------------------------------------------


def build_libvirt_box(progress: Progress, force: bool = False) -> str:
    """Build the libvirt box of the current recipe unless it is there; return its name.

    Idempotent: a box whose stored recipe matches is reused, and what the host lost
    since (the kernel files, libvirt's volume) is put back from Vagrant's copy.
    """
    name = box_name()
    reason = libvirt_ready()
    if reason:
        raise UsageError(reason)
    if not force and _current_box_installed(name):
        _restore_host_side(name, progress)
        progress(f"box {name} is already built")
        _say_driver(name, progress)
        return name
    _require_build_tools()
    _refuse_if_in_use(name, "rebuild")
    started = time.monotonic()
    cache = resources.labgen_home() / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    with box.scratch_dir(cache) as work:
        out = work / "box"
        out.mkdir()
        _make_disk(work, out, progress)
        driver, why = _probe_kvm(out / "vmlinuz", progress)
        (out / "labgen.json").write_text(
            json.dumps({"recipe": recipe_digest(), "driver": driver, "why": why}) + "\n",
            encoding="utf-8",
        )
        (out / "metadata.json").write_text(
            json.dumps(
                {"provider": "libvirt", "format": "qcow2", "virtual_size": vm_spec().disk_gb}
            )
            + "\n",
            encoding="utf-8",
        )
        _add_to_vagrant(name, work, out, progress)
    _remove_host_side(name)
    _restore_host_side(name, progress)
    progress(f"built {name} in {time.monotonic() - started:.0f} s")
    _say_driver(name, progress)
    return name


def _say_driver(name: str, progress: Progress) -> None:
    driver, why = libvirt_driver(name)
    if driver == "qemu":
        progress(f"VMs will run under software emulation (libvirt driver qemu): {why}")
    else:
        progress(f"VMs will run under KVM: {why}")
    kvm = Path("/dev/kvm")
    if kvm.exists() and kvm.group() != "kvm":
        progress(
            "warning: /dev/kvm is not in group kvm, so libvirt re-probes QEMU at every call "
            "(minutes per `vagrant up`); fix, as udev does: chgrp kvm /dev/kvm && "
            "chmod 0660 /dev/kvm"
        )


def _require_build_tools() -> None:
    if os.geteuid() != 0:
        raise UsageError(
            "building the libvirt box needs root (debootstrap, and files libvirt reads)",
            hint="run `sudo labgen box build --provider libvirt` once; `labgen up` reuses it",
        )
    missing = [t for t in ("debootstrap", "mkfs.ext4", "qemu-img", "tar") if not _which(t)]
    if missing:
        raise UsageError(
            f"building the libvirt box needs {', '.join(missing)}, which is not installed",
            hint="apt-get install debootstrap e2fsprogs qemu-utils tar",
        )


def _make_disk(work: Path, out: Path, progress: Progress) -> None:
    """debootstrap the shared recipe plus the VM's packages, configure, write the disk."""
    spec = box.box_spec()
    vm = vm_spec()
    merged = spec.model_copy(
        update={"packages": list(dict.fromkeys([*spec.packages, *vm.packages]))}
    )
    root = work / "rootfs"
    began = time.monotonic()
    box.debootstrap_rootfs(merged, root, progress)
    progress(f"root file system ready ({time.monotonic() - began:.0f} s)")
    images_dir = root / box.IMAGES_DIR_IN_MACHINE.lstrip("/")
    images_dir.mkdir(parents=True, exist_ok=True)
    for image, recipe in spec.images.items():
        progress(f"making the offline substitute for {image}")
        box.write_substitute(root, recipe, images_dir / box.substitute(image).file)
    progress("configuring users and sshd (as for every provider), then the VM's boot")
    box.configure_rootfs(root, spec)
    _chroot_script(root, configure_script(), spec.user, "configuring the VM")
    _hosts(root)
    box.unmount_below(root)

    kernels = sorted((root / "boot").glob("vmlinuz-*"))
    initrds = sorted((root / "boot").glob("initrd.img-*"))
    if not kernels or not initrds:
        raise UsageError("the box's root file system has no kernel or initrd in /boot")
    shutil.copyfile(kernels[-1], out / "vmlinuz")
    shutil.copyfile(initrds[-1], out / "initrd.img")

    raw = work / "disk.raw"
    progress(f"writing the root file system into a {vm.disk_gb} GB ext4 disk")
    began = time.monotonic()
    with open(raw, "wb") as disk:
        disk.truncate(vm.disk_gb * 1024**3)
    _run(["mkfs.ext4", "-q", "-F", "-L", "labgen-root", "-d", str(root), str(raw)], "mkfs.ext4")
    _run(["qemu-img", "convert", "-O", "qcow2", str(raw), str(out / "box.img")], "qemu-img")
    raw.unlink()
    size = (out / "box.img").stat().st_size / 1024**2
    progress(f"disk image ready: {size:.0f} MB ({time.monotonic() - began:.0f} s)")


def _chroot_script(root: Path, script: str, user: str, what: str) -> None:
    proc = subprocess.run(
        ["chroot", str(root), "/bin/sh", "-s", "--", user],
        input=script.encode(),
        capture_output=True,
    )
    if proc.returncode != 0:
        raise UsageError(f"{what} failed:\n" + proc.stderr.decode(errors="replace"))


def _hosts(root: Path) -> None:
    """debootstrap copied the build host's /etc/hosts; a VM starts from a clean one."""
    (root / "etc/hosts").write_text(
        "127.0.0.1\tlocalhost\n127.0.1.1\tlabgen\n::1\tlocalhost ip6-localhost ip6-loopback\n",
        encoding="utf-8",
    )


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise UsageError(f"{what} failed (exit {proc.returncode}): {proc.stderr.strip()}")


def _add_to_vagrant(name: str, work: Path, out: Path, progress: Progress) -> None:
    """Tar the box (uncompressed: it never leaves this host) and `vagrant box add` it."""
    version = vm_spec().box_version
    archive = work / "box.tar"
    progress("packing the box")
    _run(
        ["tar", "-C", str(out), "-cf", str(archive),
         "metadata.json", "labgen.json", "box.img", "vmlinuz", "initrd.img"],
        "tar",
    )  # fmt: skip
    # A local catalog, so that the box gets a version (vagrant-libvirt names its
    # volume after it) without any server.
    catalog = work / "catalog.json"
    catalog.write_text(
        json.dumps(
            {
                "name": name,
                "description": "labgen lab machine (Debian, Docker), built locally",
                "versions": [
                    {
                        "version": version,
                        "providers": [{"name": "libvirt", "url": archive.resolve().as_uri()}],
                    }
                ],
            }
        ),
        encoding="utf-8",
    )
    if _box_dir(name).parent.is_dir():
        progress(f"replacing the older build of {name} in Vagrant")
        _vagrant(["box", "remove", "--force", "--all", name], "vagrant box remove")
    progress(f"vagrant box add {name} (version {version})")
    _vagrant(["box", "add", "--provider", "libvirt", str(catalog)], "vagrant box add")


def _vagrant(args: list[str], what: str) -> None:
    env = {**os.environ, "VAGRANT_CHECKPOINT_DISABLE": "1", "VAGRANT_NO_COLOR": "1"}
    proc = subprocess.run(
        ["vagrant", *args], capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL
    )
    if proc.returncode != 0:
        raise UsageError(f"{what} failed (exit {proc.returncode}):\n{proc.stdout}{proc.stderr}")


def _stored_recipe(name: str) -> dict[str, str]:
    try:
        data = json.loads((_box_dir(name) / "labgen.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _current_box_installed(name: str) -> bool:
    return (_box_dir(name) / "box.img").is_file() and _stored_recipe(name).get(
        "recipe"
    ) == recipe_digest()


def _disks_on(name: str) -> list[str]:
    """The volumes (machines' disks) whose backing file is the box's volume."""
    base = _virsh("vol-path", "--pool", STORAGE_POOL, volume_name(name))
    if base.returncode != 0:
        return []
    path = f"<path>{base.stdout.strip()}</path>"
    users = []
    for line in _virsh("vol-list", STORAGE_POOL).stdout.splitlines():
        volume = line.split()[0] if line.split() else ""
        if not volume or volume == volume_name(name):
            continue
        xml = _virsh("vol-dumpxml", "--pool", STORAGE_POOL, volume).stdout
        if "<backingStore>" in xml and path in xml.split("<backingStore>", 1)[1]:
            users.append(volume)
    return users


def _refuse_if_in_use(name: str, what: str) -> None:
    users = _disks_on(name)
    if users:
        raise UsageError(
            f"cannot {what} the box {name}: the disks of libvirt machines are built on it "
            f"({', '.join(users)})",
            hint="destroy those machines first (`labgen destroy --all`, or `vagrant destroy` "
            "where they were brought up), then try again",
        )


@dataclass(frozen=True)
class LibvirtBox:
    """A libvirt box labgen built on this host, as Vagrant holds it."""

    name: str
    current: bool
    size_mb: int


def list_libvirt_boxes() -> list[LibvirtBox]:
    """labgen's libvirt boxes in Vagrant (the current recipe's, and older ones)."""
    pattern = providers()["libvirt"].box or "labgen/{recipe}"
    prefix = pattern.split("{recipe}", 1)[0].replace("/", "-VAGRANTSLASH-")
    current = box_name()
    boxes = []
    for directory in sorted((_vagrant_home() / "boxes").glob(f"{prefix}*")):
        for provider_dir in directory.glob("*/libvirt"):
            size = sum(f.stat().st_size for f in provider_dir.iterdir() if f.is_file())
            name = directory.name.replace("-VAGRANTSLASH-", "/")
            boxes.append(LibvirtBox(name, name == current, size // 1024**2))
    return boxes


def remove_libvirt_box(name: str) -> None:
    """Remove a labgen libvirt box: from Vagrant, libvirt's pool and the boot directory."""
    _refuse_if_in_use(name, "remove")
    if _box_dir(name).parent.parent.is_dir():
        _vagrant(["box", "remove", "--force", "--all", name], "vagrant box remove")
    _remove_host_side(name)


def _remove_host_side(name: str) -> None:
    """Drop the host-side copies of an older build under this name (kernel, volume)."""
    shutil.rmtree(boot_dir(name), ignore_errors=True)
    if _virsh("vol-info", "--pool", STORAGE_POOL, volume_name(name)).returncode == 0:
        _virsh("vol-delete", "--pool", STORAGE_POOL, volume_name(name))


def _restore_host_side(name: str, progress: Progress) -> None:
    """Kernel, initrd and verdict where QEMU reads them; the disk as libvirt's volume."""
    source = _box_dir(name)
    stored = _stored_recipe(name)
    target = boot_dir(name)
    if (target / "recipe").is_file() and (target / "recipe").read_text().strip() == stored.get(
        "recipe"
    ):
        pass
    else:
        progress(f"installing the box's kernel in {target}")
        target.mkdir(parents=True, exist_ok=True)
        target.chmod(0o755)
        for file in ("vmlinuz", "initrd.img"):
            shutil.copyfile(source / file, target / file)
            (target / file).chmod(0o644)
        (target / "driver").write_text(
            f"{stored.get('driver', 'kvm')}\n{stored.get('why', '')}\n", encoding="utf-8"
        )
        (target / "recipe").write_text(f"{stored.get('recipe', '')}\n", encoding="utf-8")
    _ensure_pool()
    volume = volume_name(name)
    if _virsh("vol-info", "--pool", STORAGE_POOL, volume).returncode == 0:
        return
    image = source / "box.img"
    progress(f"uploading the box's disk to libvirt's pool {STORAGE_POOL!r} as {volume}")
    began = time.monotonic()
    created = _virsh(
        "vol-create-as", STORAGE_POOL, volume, f"{vm_spec().disk_gb}G",
        "--allocation", str(image.stat().st_size), "--format", "qcow2",
    )  # fmt: skip
    if created.returncode != 0:
        raise UsageError(f"virsh vol-create-as failed: {created.stderr.strip()}")
    uploaded = _virsh("vol-upload", "--pool", STORAGE_POOL, volume, str(image), timeout=1800)
    if uploaded.returncode != 0:
        _virsh("vol-delete", "--pool", STORAGE_POOL, volume)
        raise UsageError(f"virsh vol-upload failed: {uploaded.stderr.strip()}")
    progress(f"disk uploaded ({time.monotonic() - began:.0f} s)")


def _ensure_pool() -> None:
    if _virsh("pool-info", STORAGE_POOL).returncode == 0:
        return
    path = "/var/lib/libvirt/images"
    for args in (
        ("pool-define-as", STORAGE_POOL, "dir", "--target", path),
        ("pool-build", STORAGE_POOL),
        ("pool-start", STORAGE_POOL),
        ("pool-autostart", STORAGE_POOL),
    ):
        _virsh(*args)
