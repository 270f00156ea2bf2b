"""The libvirt provider: a real VM (KVM, or software emulation) from a box labgen builds.

The box comes from the same recipe as the docker provider's base image
(rootfs.build_rootfs), plus recipe.yaml's vm: packages and templates/box/configure-vm.sh;
libvirt_box.py builds it. What the build leaves on the host, all named after the box:
the Vagrant box NAME; libvirt's copy of its disk (the volume vagrant-libvirt would
otherwise upload at the first `vagrant up`); and <boot_dir>/<name, / as -> holding
vmlinuz, initrd.img and `driver`, the verdict of the KVM probe, where QEMU can read them.

The box holds no key: each VM boots with `labgen.authorized_key=BASE64` on its kernel
command line (rendered into the Vagrantfile), so it accepts only its own instance's key.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from labgen.core import resources
from labgen.core.context import Say
from labgen.core.errors import MachineError, PrerequisiteError, UsageError
from labgen.machine import recipe
from labgen.machine.instance import InstanceState
from labgen.machine.providers import libvirt_box
from labgen.machine.providers.base import BoxInfo, Leftover, Probe, Provider
from labgen.machine.providers.libvirt_box import (
    LIBVIRT_URI,
    STORAGE_POOL,
    BoxPlace,
    libvirt_uri,
    vagrant_home,
    virsh,
)

SETUP_HINT = "or run scripts/setup-libvirt.sh from labgen's source"
VIRTLOGD_SOCKET = Path("/run/libvirt/virtlogd-sock")
LIBVIRTD_SOCKET = Path("/run/libvirt/libvirt-sock")
# Where the system libvirtd keeps its defined domains, and the running ones' state.
DOMAIN_FOLDERS = (Path("/etc/libvirt/qemu"), Path("/run/libvirt/qemu"))
# A listing of domains (leftovers) that takes longer has no libvirtd behind it.
SCAN_TIMEOUT = 20.0
PLUGIN_FILE = Path("/usr/share/vagrant-plugins/plugins.d/vagrant-libvirt.json")


# --- probes -----------------------------------------------------------------------


def probe_plugin() -> Probe:
    """vagrant-libvirt is registered: Debian's package, or `vagrant plugin install`."""
    # Asking `vagrant plugin list` costs 1-2 s; both registrations are files.
    plugins = vagrant_home() / "plugins.json"
    installed = PLUGIN_FILE.is_file()
    if not installed and plugins.is_file():
        try:
            data = json.loads(plugins.read_text(encoding="utf-8"))
        except ValueError:
            data = {}
        installed = "vagrant-libvirt" in (data.get("installed") or {})
    if installed:
        return Probe("vagrant-libvirt", True, "Vagrant's libvirt plugin is installed")
    return Probe(
        "vagrant-libvirt",
        False,
        "the vagrant-libvirt plugin is not installed",
        "apt-get install vagrant-libvirt (Debian), or `vagrant plugin install vagrant-libvirt`",
    )


def probe_libvirtd() -> Probe:
    """libvirtd answers at qemu:///system, virtlogd runs, the storage pool is active."""
    missing = [
        t for t in ("virsh", "libvirtd", "qemu-system-x86_64", "qemu-img") if not recipe.which(t)
    ]
    if missing:
        return Probe(
            "libvirtd",
            False,
            f"{', '.join(missing)} not installed",
            "apt-get install libvirt-daemon-system libvirt-clients qemu-system-x86 qemu-utils "
            f"dnsmasq-base ({SETUP_HINT})",
        )
    virtlogd = _socket_answers(VIRTLOGD_SOCKET)
    systemd = Path("/run/systemd/system").is_dir()
    if systemd:
        start = "systemctl start virtlogd libvirtd"
    else:
        start = "libvirtd --daemon" if virtlogd else "virtlogd --daemon; libvirtd --daemon"
    try:
        answer = virsh("uri", timeout=20)  # connects; `version` costs seconds
    except subprocess.TimeoutExpired:
        return Probe("libvirtd", False, f"libvirtd does not answer at {libvirt_uri()}", start)
    if answer.returncode != 0:
        error = " ".join(answer.stderr.split()) or "no answer"
        if "ermission denied" in error:
            return Probe(
                "libvirtd",
                False,
                f"libvirtd at {libvirt_uri()} refuses this user ({error})",
                "join the libvirt group: sudo adduser $USER libvirt (then log in again)",
            )
        return Probe(
            "libvirtd",
            False,
            f"libvirtd does not answer at {libvirt_uri()}: {error}",
            f"start it: {start} ({SETUP_HINT})",
        )
    if not virtlogd and not systemd:
        return Probe(
            "libvirtd",
            False,
            "virtlogd is not running; libvirt cannot start a VM without it",
            f"virtlogd --daemon ({SETUP_HINT})",
        )
    pool = virsh("pool-info", STORAGE_POOL)
    if pool.returncode == 0 and not re.search(r"^State:\s+running", pool.stdout, re.M):
        return Probe(
            "libvirtd",
            False,
            f"libvirt's storage pool {STORAGE_POOL!r} is not active",
            f"virsh pool-start {STORAGE_POOL} && virsh pool-autostart {STORAGE_POOL}",
        )
    return Probe("libvirtd", True, f"libvirtd answers at {libvirt_uri()}")


def probe_kvm() -> Probe:
    """KVM is a speed-up, not a requirement: without it libvirt emulates (slowly)."""
    if kvm_usable():
        return Probe("kvm", True, "KVM is usable: libvirt machines run at native speed")
    return Probe(
        "kvm",
        True,
        "no usable KVM (no /dev/kvm, or a CPU without vmx/svm): libvirt machines run "
        "under software emulation (driver qemu; minutes, not seconds)",
    )


def kvm_usable() -> bool:
    """/dev/kvm is open to us and the CPU we see offers hardware virtualisation."""
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            flags = {word for line in cpuinfo if line.startswith("flags") for word in line.split()}
    except OSError:
        return False
    return bool(flags & {"vmx", "svm"})


def _socket_answers(path: Path) -> bool:
    """Someone accepts connections on this Unix socket (not just a stale file)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        try:
            sock.connect(str(path))
        except OSError:
            return False
    return True


def domain_names() -> list[str]:
    """Every domain libvirt knows of, running or not; none where virsh is not installed
    (vagrant-libvirt cannot have made one). Where the system's libvirtd is not running
    (its socket refuses), its files say (domain_files); a libvirtd that runs but does not
    answer is a MachineError: an unanswered look must not pass for "none there"."""
    if not recipe.which("virsh"):
        return []
    if libvirt_uri() == LIBVIRT_URI and not _socket_answers(LIBVIRTD_SOCKET):
        return domain_files(DOMAIN_FOLDERS)
    command = f"virsh -c {libvirt_uri()} list --all --name"
    try:
        answer = virsh("list", "--all", "--name", timeout=SCAN_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise MachineError(
            f"could not look for labgen's libvirt domains: `{command}` did not answer in "
            f"{SCAN_TIMEOUT:g} s",
            hint=f"is libvirtd stuck? restart it (systemctl restart libvirtd, or "
            f"libvirtd --daemon; {SETUP_HINT}), then run this again",
        ) from None
    except OSError as exc:  # found in an sbin folder, not on PATH
        answer = subprocess.CompletedProcess(command, 127, "", str(exc))
    if answer.returncode != 0:
        why = " ".join(answer.stderr.split()) or f"exit status {answer.returncode}"
        raise MachineError(
            f"could not look for labgen's libvirt domains: `{command}` failed: {why}",
            hint="libvirtd must answer: `labgen doctor` says what it lacks; then run this again",
        )
    return answer.stdout.split()


def domain_files(folders: Sequence[Path]) -> list[str]:
    """The domains a stopped system libvirtd holds: each defined one is NAME.xml in its
    configuration folder, each still running (a QEMU outlives its libvirtd) NAME.xml in
    its run folder (DOMAIN_FOLDERS). Packages installed and no daemon started is a
    machine's state after a reboot without systemd.

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "labgen-bridge-ab12-default.xml").write_text("<domain/>")
    >>> domain_files([folder, folder / "absent"])
    ['labgen-bridge-ab12-default']
    """
    names: set[str] = set()
    for folder in folders:
        if not folder.exists():  # libvirt never defined or ran a domain here
            continue
        try:
            names.update(p.stem for p in folder.iterdir() if p.suffix == ".xml")
        except OSError as exc:
            raise MachineError(
                f"could not look for labgen's libvirt domains: libvirtd is not running and "
                f"{folder} cannot be read ({exc.strerror})",
                hint="run labgen as root, or start libvirtd (scripts/setup-libvirt.sh)",
            ) from None
    return sorted(names)


# --- the provider -----------------------------------------------------------------


@dataclass(frozen=True)
class LibvirtSettings:
    """What the libvirt block needs."""

    box: str
    boot_dir: str
    cmd_line: str
    memory: int
    cpus: int


class LibvirtProvider(Provider):
    builds_box = True
    probes = {
        **Provider.probes,
        "vagrant-libvirt": probe_plugin,
        "libvirtd": probe_libvirtd,
        "kvm": probe_kvm,
    }

    def box_name(self, engine: str | None = None) -> str:
        """The box with Docker `engine` (None: the default) of the current recipe:
        labgen/20.10-bookworm-<digest>."""
        return self.box_pattern().replace("{recipe}", recipe.recipe_tag(recipe.engine(engine)))

    def box_pattern(self) -> str:
        return str(self.row.extra["box"])

    def boot_dir(self, name: str) -> Path:
        """Where QEMU reads a box's kernel and initrd (the Vagrantfile knows it too)."""
        return Path(self.row.extra["boot_dir"]) / name.replace("/", "-")

    def box_dir(self, name: str) -> Path:
        """Vagrant's unpacked copy of a box (its documented layout)."""
        slug = name.replace("/", "-VAGRANTSLASH-")
        return vagrant_home() / "boxes" / slug / recipe.recipe_spec().vm.box_version / "libvirt"

    def volume_name(self, name: str) -> str:
        """The storage volume vagrant-libvirt makes from a box's disk (its naming rule)."""
        slug = name.replace("/", "-VAGRANTSLASH-")
        return f"{slug}_vagrant_box_image_{recipe.recipe_spec().vm.box_version}_box.img"

    def place(self, name: str) -> BoxPlace:
        """Where box `name` lives on this host."""
        return BoxPlace(name, self.boot_dir(name), self.box_dir(name), self.volume_name(name))

    def ensure_box(
        self, say: Say, force: bool = False, engine: str | None = None
    ) -> tuple[str, bool]:
        for probe in ("vagrant-libvirt", "libvirtd"):
            answer = self.probes[probe]()
            if not answer.ok:
                raise PrerequisiteError(answer.detail, hint=answer.fix)
        engine = recipe.engine(engine)
        return libvirt_box.ensure(self.place(self.box_name(engine)), engine, say, force)

    def list_boxes(self) -> list[BoxInfo]:
        prefix = self.box_pattern().split("{recipe}")[0].replace("/", "-VAGRANTSLASH-")
        current = {self.box_name(e): e for e in recipe.engines()}
        boxes = []
        for directory in sorted((vagrant_home() / "boxes").glob(f"{prefix}*")):
            for provider_dir in directory.glob("*/libvirt"):
                size = sum(f.stat().st_size for f in provider_dir.iterdir() if f.is_file())
                name = directory.name.replace("-VAGRANTSLASH-", "/")
                engine = current.get(name, "?")
                detail = f"{size // 1024**2} MB"
                boxes.append(BoxInfo(self.name, name, engine, name in current, detail))
        return boxes

    def prune_boxes(self) -> list[str]:
        removed = []
        for box in self.list_boxes():
            if not box.current and not libvirt_box.disks_on(self.place(box.name)):
                libvirt_box.remove(self.place(box.name))
                removed.append(box.name)
        return removed

    def leftovers(self, instance: str | None = None, host: str = "") -> list[Leftover]:
        if host:  # machines go on another host through the docker provider only
            return []
        # vagrant-libvirt names a domain <default_prefix><machine>: the Vagrantfile's
        # prefix is the machine id, labgen-INSTANCE-HOMETAG-.
        tag = f"-{resources.home_tag()}-"
        found = []
        for name in domain_names():
            if name.startswith("labgen-") and tag in name:
                owner = name[len("labgen-") : name.index(tag)]
                if instance in (None, owner):
                    found.append(Leftover(self.name, owner, "domain", name))
        return found

    def remove(self, leftover: Leftover) -> None:
        # `destroy` (power off) fails on a domain already off: only undefine must work.
        virsh("destroy", leftover.name)
        args = ("undefine", leftover.name, "--remove-all-storage", "--nvram")
        answer = virsh(*args)
        why = " ".join(answer.stderr.split())
        if answer.returncode != 0 and "failed to get domain" not in why:  # gone is fine
            raise MachineError(
                f"`virsh {' '.join(args)}` failed: {why or answer.returncode}: the domain of "
                f"machine {leftover.instance} is still there",
                hint=f"remove it with that command, or run `labgen destroy {leftover.instance}` "
                "again",
            )

    def settings(
        self,
        instance: str,
        *,
        live: bool,
        others: Sequence[InstanceState],
        engine: str | None = None,
        host: str = "",
    ) -> LibvirtSettings:
        if host and live:
            raise UsageError(
                f"the {self.name} provider brings machines up on this host only, not on {host}",
                hint="--provider docker puts a machine on another Docker host",
            )
        extra = self.row.extra
        box = self.box_name(engine)
        return LibvirtSettings(
            box=box,
            boot_dir=str(self.boot_dir(box)),
            cmd_line=str(extra["cmd_line"]),
            memory=int(extra["memory"]),
            cpus=int(extra["cpus"]),
        )


PROVIDER_CLASS = LibvirtProvider
