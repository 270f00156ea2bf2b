"""What a host has: does it answer, its cores and memory, disk, which base images.

Asked over labgen's SSH settings (registry.py): one `ssh` for the machine's own
figures, one `docker` (Docker's SSH transport) or `virsh` call for the engine.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field

from labgen.hosts.registry import Host
from labgen.machine import providers, recipe

TIMEOUT = 30  # seconds for one call to a host; a host that takes longer does not answer
# One shell line, read by _figures: cores, then /proc/meminfo's two lines, then df's.
FIGURES = "nproc; grep -E '^Mem(Total|Available):' /proc/meminfo; df -Pk / | tail -1"


@dataclass(frozen=True)
class HostReport:
    """A host as `labgen hosts list` and `labgen doctor --host` show it."""

    name: str
    url: str
    kind: str
    answers: bool
    detail: str  # what was seen, or why it does not answer
    cores: int = 0
    memory_mib: int = 0
    free_memory_mib: int = 0
    free_disk_gb: float = 0.0
    engines: list[str] = field(default_factory=list)  # base images it has, by engine
    fixes: list[str] = field(default_factory=list)  # what it lacks, each with its fix


def _call(argv: list[str], host: Host) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        env={**os.environ, **host.env()},
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def _figures(text: str) -> tuple[int, int, int, float]:
    """(cores, memory MiB, available MiB, free disk GB) from FIGURES' output.

    >>> _figures("16\\nMemTotal: 65536000 kB\\nMemAvailable: 60000000 kB\\n"
    ...          "/dev/vda 100 50 52428800 50% /\\n")
    (16, 64000, 58593, 53.7)
    """
    lines = text.strip().splitlines()
    cores = int(lines[0])
    mem = {ln.split(":")[0]: int(ln.split()[1]) for ln in lines[1:3]}
    disk_kb = int(lines[3].split()[3])
    return (
        cores,
        mem["MemTotal"] // 1024,
        mem["MemAvailable"] // 1024,
        round(disk_kb * 1024 / 1e9, 1),
    )


def _docker_engines(host: Host) -> tuple[list[str], str]:
    """The engines whose current base image the host has, or ([], why Docker failed)."""
    done = _call(["docker", "image", "ls", "--format", "{{json .}}"], host)
    if done.returncode != 0:
        return [], done.stderr.strip().splitlines()[-1:][0] if done.stderr.strip() else "no answer"
    tags = {
        f"{row['Repository']}:{row['Tag']}"
        for row in (json.loads(line) for line in done.stdout.splitlines() if line.strip())
    }
    return [e for e in recipe.engines() if base_image(host, e) in tags], ""


def base_image(host: Host, engine: str) -> str:
    """The base image of `engine` that this host's kind of machine starts from.

    >>> base_image(Host("a", "ssh://h"), "20.10").startswith("labgen/base:20.10-")
    True
    """
    repo = providers.get(host.kind).row.extra.get("image_repo", "")
    return f"{repo}:{recipe.recipe_tag(engine)}"


def examine(host: Host) -> HostReport:
    """Ask `host` what it has; never raises for a host that does not answer."""
    try:
        done = _call([*host.ssh_command(), FIGURES], host)
    except subprocess.TimeoutExpired:
        return HostReport(
            host.name,
            host.url,
            host.kind,
            False,
            f"ssh took over {TIMEOUT} s",
            fixes=[f"is {host.ssh_hostname} up and its sshd answering?"],
        )
    if done.returncode != 0:
        why = (done.stderr.strip().splitlines() or ["ssh failed"])[-1]
        return HostReport(
            host.name,
            host.url,
            host.kind,
            False,
            why,
            fixes=[
                f"check `{' '.join(host.ssh_command())} true` works: a key-based login "
                "as a user allowed to use Docker (or libvirt)"
            ],
        )
    cores, memory, free, disk = _figures(done.stdout)
    fixes: list[str] = []
    engines: list[str] = []
    detail = f"{cores} cores, {memory} MiB ({free} MiB free), {disk} GB disk free"
    if host.kind == "docker":
        try:
            engines, why = _docker_engines(host)
        except subprocess.TimeoutExpired:
            why = f"docker took over {TIMEOUT} s"
        if why:
            fixes.append(
                f"Docker does not answer over SSH ({why}): start dockerd there, "
                "and make the SSH user a member of the docker group"
            )
        elif not engines:
            fixes.append(f"no labgen base image: `labgen hosts push {host.name}`")
    if disk < 5:
        fixes.append("less than 5 GB of disk free: images and machines need about 5 GB")
    answers = not any(f.startswith("Docker does not answer") for f in fixes)
    return HostReport(
        host.name, host.url, host.kind, answers, detail, cores, memory, free, disk, engines, fixes
    )
