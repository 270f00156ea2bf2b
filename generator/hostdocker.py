"""The few questions labgen asks the host's Docker engine, through its CLI."""

from __future__ import annotations

import ipaddress
import json
import shutil
import subprocess
from collections.abc import Iterable, Sequence

from .errors import UsageError


def docker(
    args: Sequence[str], *, check: bool = True, input: bytes | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """Run `docker ARGS`, capturing output; raise a readable error when `check` fails."""
    require_docker()
    proc = subprocess.run(
        ["docker", *args],
        capture_output=True,
        text=input is None,
        input=input,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        err = proc.stderr if isinstance(proc.stderr, str) else proc.stderr.decode(errors="replace")
        raise UsageError(f"`docker {' '.join(args[:3])} ...` failed: {err.strip()}")
    return proc


def require_docker() -> None:
    if shutil.which("docker") is None:
        raise UsageError(
            "the docker provider needs Docker, and `docker` is not on PATH",
            hint="install it: apt-get install docker.io",
        )


def daemon_ready() -> str | None:
    """None when the Docker daemon answers, else the reason it does not."""
    require_docker()
    proc = subprocess.run(
        ["docker", "version", "--format", "{{.Server.Version}}"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if proc.returncode == 0:
        return None
    return proc.stderr.strip() or "no answer from the Docker daemon"


def require_daemon() -> None:
    reason = daemon_ready()
    if reason:
        raise UsageError(
            f"the Docker daemon is not running or not reachable: {reason}",
            hint="start it (systemctl start docker, or `dockerd >/var/log/dockerd.log 2>&1 &` "
            "where there is no systemd) and make sure you may use /var/run/docker.sock",
        )


def image_exists(ref: str) -> bool:
    return docker(["image", "inspect", ref], check=False).returncode == 0


def used_subnets() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """Every subnet a Docker network on this host already uses."""
    names = docker(["network", "ls", "-q"]).stdout.split()
    if not names:
        return []
    data = json.loads(docker(["network", "inspect", *names]).stdout)
    subnets = []
    for net in data:
        for cfg in (net.get("IPAM") or {}).get("Config") or []:
            if cfg.get("Subnet"):
                subnets.append(ipaddress.ip_network(cfg["Subnet"], strict=False))
    return subnets


def create_network(name: str, candidates: Iterable[str], labels: dict[str, str]) -> str:
    """Create docker network `name` on the first free candidate subnet; return that subnet.

    Another labgen (a parallel test, another user) may take a subnet between our
    look and our claim; Docker then says the pool overlaps and we try the next one.
    """
    label_args = [arg for k, v in labels.items() for arg in ("--label", f"{k}={v}")]
    for subnet in candidates:
        proc = docker(["network", "create", "--subnet", subnet, *label_args, name], check=False)
        if proc.returncode == 0:
            return subnet
        if "already exists" in proc.stderr:
            raise UsageError(f"docker network {name} already exists; `docker network rm {name}`")
        if "overlaps" not in proc.stderr:
            raise UsageError(f"cannot create docker network {name}: {proc.stderr.strip()}")
    raise UsageError("no free /24 left for a lab machine's network in labgen's pool")


def remove_network(name: str) -> None:
    """Remove docker network `name` if it exists."""
    docker(["network", "rm", name], check=False)


def privileged_works(image: str) -> bool:
    """Whether `docker run --privileged` works here (it does not in some sandboxes)."""
    proc = docker(
        ["run", "--rm", "--privileged", "--network", "none", "--entrypoint", "true", image],
        check=False,
        timeout=120,
    )
    return proc.returncode == 0
