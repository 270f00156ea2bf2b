"""`examine(host)`: does a host answer, what it has (cores, memory, disk) and which
engines' base images are already on it; what it lacks, each with the fix."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from dataclasses import dataclass, field

from labgen.hosts.registry import Host
from labgen.machine import providers, recipe

TIMEOUT_S = 40
# Below this a host cannot take even one machine (base image + one machine's layers).
MIN_DISK_GIB = 5.0
# The shell line run over SSH for what `docker info` does not say: free memory and disk.
_FACTS = "grep -E '^(MemTotal|MemAvailable):' /proc/meminfo; df -Pk {path} | tail -n 1"


@dataclass
class HostReport:
    """What a probe of one host found. `problems` are (what, fix) pairs; `answers` is
    False when the host's Docker (or libvirtd) did not answer, and then the figures are 0."""

    name: str
    url: str
    kind: str
    answers: bool = False
    cores: int = 0
    memory_mib: int = 0
    free_memory_mib: int = 0
    disk_free_gib: float = 0.0
    engine_version: str = ""
    engines: list[str] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)


def base_images() -> dict[str, str]:
    """engine -> the base image a Docker host needs for it (labgen/base:TAG)."""
    repo = providers.get("docker").row.extra["image_repo"]
    return {e: f"{repo}:{recipe.recipe_tag(e)}" for e in recipe.engines()}


def _run(host: Host, argv: list[str]) -> subprocess.CompletedProcess[str] | None:
    env = {**os.environ, **host.env()}
    try:
        return subprocess.run(
            argv, env=env, capture_output=True, text=True, timeout=TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None


def _first_line(done: subprocess.CompletedProcess[str] | None) -> str:
    if done is None:
        return "no answer within the time limit"
    lines = (done.stderr or done.stdout).strip().splitlines()
    return lines[-1] if lines else f"exit status {done.returncode}"


def parse_facts(text: str) -> tuple[int, int, float]:
    """(memory MiB, free memory MiB, disk free GiB) from /proc/meminfo lines and a df -Pk row.

    >>> parse_facts("MemTotal: 2048000 kB\\nMemAvailable: 1024000 kB\\n/dev/x 100 50 10485760 1% /")
    (2000, 1000, 10.0)
    """
    mem = {}
    disk = 0.0
    for line in text.splitlines():
        parts = line.split()
        if parts and parts[0].rstrip(":") in ("MemTotal", "MemAvailable"):
            mem[parts[0].rstrip(":")] = int(parts[1]) // 1024
        elif len(parts) >= 6 and parts[3].isdigit():
            disk = round(int(parts[3]) / 1024 / 1024, 1)
    return mem.get("MemTotal", 0), mem.get("MemAvailable", 0), disk


def examine(host: Host) -> HostReport:
    """Ask the host (Docker over ssh://, libvirt over qemu+ssh://) what it has."""
    report = HostReport(host.name, host.url, host.kind)
    if host.kind == "libvirt":
        return _examine_libvirt(host, report)
    return _examine_docker(host, report)


def _examine_docker(host: Host, report: HostReport) -> HostReport:
    info = _run(host, ["docker", "info", "--format", "{{json .}}"])
    if info is None or info.returncode != 0:
        report.problems.append(
            (
                f"Docker on {host.name} does not answer over {host.url}: {_first_line(info)}",
                f"check `ssh {host.ssh_destination()} -p {host.ssh_port} docker info` works "
                "(sshd up, key-based login, the user in the docker group, dockerd running)",
            )
        )
        return report
    data = json.loads(info.stdout)
    report.answers = True
    report.cores = int(data.get("NCPU", 0))
    report.engine_version = str(data.get("ServerVersion", ""))
    root = str(data.get("DockerRootDir") or "/var/lib/docker")
    _add_facts(host, report, root)
    _add_images(host, report)
    return report


def _add_facts(host: Host, report: HostReport, path: str) -> None:

    done = _run(host, [*host.ssh_command(), _FACTS.format(path=shlex.quote(path))])
    if done is None or done.returncode != 0:
        report.problems.append(
            (f"could not read memory and disk over SSH: {_first_line(done)}", "check sshd")
        )
        return
    report.memory_mib, report.free_memory_mib, report.disk_free_gib = parse_facts(done.stdout)
    if report.disk_free_gib < MIN_DISK_GIB:
        report.problems.append(
            (
                f"only {report.disk_free_gib} GiB free under {path} on {host.name}",
                f"free at least {MIN_DISK_GIB:.0f} GiB there (`docker system prune` on the host)",
            )
        )


def _add_images(host: Host, report: HostReport) -> None:
    done = _run(host, ["docker", "image", "ls", "--format", "{{.Repository}}:{{.Tag}}"])
    present = set(done.stdout.split()) if done is not None and done.returncode == 0 else set()
    wanted = base_images()
    report.engines = [e for e, image in wanted.items() if image in present]
    default = recipe.engine(None)
    if default not in report.engines:
        report.problems.append(
            (
                f"{host.name} lacks the base image {wanted[default]} (engine {default})",
                f"`labgen hosts push {host.name}` copies it over SSH (no registry)",
            )
        )


def _examine_libvirt(host: Host, report: HostReport) -> HostReport:
    info = _run(host, ["virsh", "-c", host.url, "nodeinfo"])
    if info is None or info.returncode != 0:
        report.problems.append(
            (
                f"libvirtd on {host.name} does not answer over {host.url}: {_first_line(info)}",
                "check `virsh -c URL nodeinfo` works (libvirtd running, the user in the "
                "libvirt group, key-based SSH)",
            )
        )
        return report
    report.answers = True
    for line in info.stdout.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "CPU(s)":
            report.cores = int(value.split()[0])
        elif key.strip() == "Memory size":
            report.memory_mib = int(value.split()[0]) // 1024
    mem = _run(host, ["virsh", "-c", host.url, "nodememstats"])
    if mem is not None and mem.returncode == 0:
        fields = {
            k.strip(): v.split()
            for k, _, v in (ln.partition(":") for ln in mem.stdout.splitlines())
        }
        free = sum(int(fields[k][0]) for k in ("free", "buffers", "cached") if k in fields)
        report.free_memory_mib = free // 1024
    return report
