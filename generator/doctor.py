"""`labgen doctor`: what each provider needs on this host, probed, with the fix for each gap.

Probes are small functions in one registry; providers.yaml names the ones each
provider requires. `labgen up` runs the same probes before it creates anything.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass

from . import resources
from .errors import UsageError
from .providers import Provider, providers

MIN_FREE_GB = 5


@dataclass(frozen=True)
class Probe:
    """One probe's answer: ok or not, what it saw, and the fix when not ok."""

    name: str
    ok: bool
    detail: str
    fix: str = ""


def _run(cmd: list[str], timeout: float = 20) -> subprocess.CompletedProcess[str] | None:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return None


def probe_vagrant() -> Probe:
    # Only PATH is asked: every Vagrant call costs 1.5-2 s, and `labgen up` runs this.
    path = shutil.which("vagrant")
    if path is None:
        return Probe("vagrant", False, "vagrant is not on PATH", "apt-get install vagrant")
    return Probe("vagrant", True, f"vagrant at {path}")


def probe_docker() -> Probe:
    if shutil.which("docker") is None:
        return Probe("docker", False, "docker is not on PATH", "apt-get install docker.io")
    proc = _run(["docker", "version", "--format", "{{.Server.Version}}"])
    if proc is None or proc.returncode != 0:
        reason = (proc.stderr.strip().splitlines() or ["no answer"])[-1] if proc else "no answer"
        return Probe(
            "docker",
            False,
            f"the Docker daemon does not answer: {reason}",
            "start it: systemctl start docker (or, without systemd, "
            "`dockerd >/var/log/dockerd.log 2>&1 &`), and use an account that may "
            "reach its socket (root, or the docker group)",
        )
    return Probe("docker", True, f"Docker Engine {proc.stdout.strip()} answers")


def probe_vagrant_libvirt() -> Probe:
    proc = _run(["vagrant", "plugin", "list"], timeout=60) if shutil.which("vagrant") else None
    if proc is not None and "vagrant-libvirt" in proc.stdout:
        line = next(x for x in proc.stdout.splitlines() if "vagrant-libvirt" in x)
        return Probe("vagrant-libvirt", True, line.strip())
    return Probe(
        "vagrant-libvirt",
        False,
        "the vagrant-libvirt plugin is not installed",
        "apt-get install vagrant-libvirt (Debian), or `vagrant plugin install vagrant-libvirt`",
    )


def probe_libvirtd() -> Probe:
    if shutil.which("virsh") is None:
        return Probe(
            "libvirtd",
            False,
            "libvirt's client (virsh) is not installed",
            "apt-get install libvirt-daemon-system libvirt-clients qemu-system-x86",
        )
    uri = os.environ.get("LIBVIRT_DEFAULT_URI", "qemu:///system")
    proc = _run(["virsh", "-c", uri, "version"])
    if proc is None or proc.returncode != 0:
        reason = (proc.stderr.strip().splitlines() or ["no answer"])[0] if proc else "no answer"
        return Probe(
            "libvirtd",
            False,
            f"libvirtd does not answer at {uri}: {reason}",
            "start it: systemctl start libvirtd (or, without systemd, `virtlogd -d; "
            "libvirtd -d`), and use an account in the libvirt group",
        )
    return Probe("libvirtd", True, f"libvirtd answers at {uri}")


def kvm_usable() -> bool:
    """/dev/kvm is open to us and the CPU we see offers hardware virtualisation.

    Some hosts (nested sandboxes) expose /dev/kvm without vmx/svm: a stock kernel
    then hangs under KVM, and libvirt must emulate.
    """
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            flags = {word for line in cpuinfo if line.startswith("flags") for word in line.split()}
    except OSError:
        return False
    return bool(flags & {"vmx", "svm"})


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


def probe_virtualbox() -> Probe:
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


def probe_disk() -> Probe:
    home = resources.labgen_home()
    existing = next((p for p in [home, *home.parents] if p.exists()), home.anchor)
    free_gb = shutil.disk_usage(existing).free / 1e9
    if free_gb < MIN_FREE_GB:
        return Probe(
            "disk",
            False,
            f"{free_gb:.1f} GB free at {existing}; images and boxes need about {MIN_FREE_GB} GB",
            "free some space, or point LABGEN_HOME at a larger disk",
        )
    return Probe("disk", True, f"{free_gb:.0f} GB free at {existing}")


PROBES: dict[str, Callable[[], Probe]] = {
    "vagrant": probe_vagrant,
    "docker": probe_docker,
    "vagrant-libvirt": probe_vagrant_libvirt,
    "libvirtd": probe_libvirtd,
    "kvm": probe_kvm,
    "VBoxManage": probe_virtualbox,
    "disk": probe_disk,
}


def probe(name: str) -> Probe:
    try:
        return PROBES[name]()
    except KeyError:
        raise KeyError(f"unknown probe {name!r}; probes: {', '.join(PROBES)}") from None


@dataclass(frozen=True)
class ProviderHealth:
    provider: str
    summary: str
    probes: list[Probe]

    @property
    def ready(self) -> bool:
        return all(p.ok for p in self.probes)


def examine(provider: Provider, cache: dict[str, Probe] | None = None) -> ProviderHealth:
    """Run the provider's probes (each probe once per `cache`)."""
    cache = {} if cache is None else cache
    results = []
    for name in provider.requires:
        if name not in cache:
            cache[name] = probe(name)
        results.append(cache[name])
    return ProviderHealth(provider.name, provider.summary, results)


def examine_all() -> list[ProviderHealth]:
    cache: dict[str, Probe] = {}
    return [examine(p, cache) for p in providers().values()]


def require_ready(provider: Provider, cache: dict[str, Probe] | None = None) -> None:
    """Stop with the first gap's message and fix (exit 2) before anything is created."""
    for result in examine(provider, cache).probes:
        if not result.ok:
            raise UsageError(
                f"the {provider.name} provider is not ready: {result.detail}", hint=result.fix
            )


def ready_provider(name: str | None) -> tuple[Provider, str]:
    """The provider to use, checked ready, and why it was chosen.

    --provider, else $LABGEN_PROVIDER, else the first ready provider in the table's
    order. Each probe runs once.
    """
    table = providers()
    cache: dict[str, Probe] = {}
    chosen = name or os.environ.get("LABGEN_PROVIDER")
    if chosen:
        why = "chosen by --provider" if name else "chosen by $LABGEN_PROVIDER"
        if chosen not in table:
            raise UsageError(
                f"unknown provider {chosen!r} ({why}); labgen knows: {', '.join(table)}"
            )
        require_ready(table[chosen], cache)
        return table[chosen], why
    for provider in table.values():
        if examine(provider, cache).ready:
            return provider, "the first ready provider (labgen doctor tells why)"
    raise UsageError(
        "no provider is ready on this host",
        hint="`labgen doctor` lists what each one lacks and how to fix it",
    )
