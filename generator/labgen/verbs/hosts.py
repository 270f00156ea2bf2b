"""`labgen hosts add|list|remove|push`: the hosts machines may go on, each probed."""

from __future__ import annotations

import subprocess

from labgen.core.context import Say
from labgen.core.errors import UsageError
from labgen.hosts import probe, registry, transfer
from labgen.hosts.probe import HostReport
from labgen.hosts.results import HostAdded
from labgen.machine import recipe


def add(name: str, url: str) -> HostAdded:
    """Register the host, then contact it once: its SSH host key goes into labgen's own
    known_hosts (accept-new, never ~/.ssh), and the probe says what it has."""
    host = registry.add(name, url)
    report = probe.examine(host)
    return HostAdded(host, report, recorded_key(host))


def recorded_key(host: registry.Host) -> str:
    """The fingerprint line labgen's known_hosts holds for the host ("" if none yet)."""
    known = registry.known_hosts_path()
    if not known.is_file():
        return ""
    entry = host.ssh_hostname if host.ssh_port == 22 else f"[{host.ssh_hostname}]:{host.ssh_port}"
    done = subprocess.run(
        ["ssh-keygen", "-l", "-F", entry, "-f", str(known)],
        capture_output=True,
        text=True,
        check=False,
    )
    lines = [ln for ln in done.stdout.splitlines() if ln and not ln.startswith("#")]
    return lines[0] if lines else ""


def list_hosts() -> list[HostReport]:
    """Every registered host, each probed (those that do not answer say so)."""
    return [probe.examine(host) for host in registry.load()]


def remove(name: str) -> registry.Host:
    """Unregister a host; machines on it are not touched."""
    return registry.remove(name)


def examine(name: str) -> HostReport:
    """One host's probe, for `labgen doctor --host NAME`."""
    host = registry.get(name)
    if host.is_local:
        raise UsageError("`--host local` is this machine: run `labgen doctor` without --host")
    return probe.examine(host)


def push(name: str, engine: str | None, say: Say) -> transfer.PushResult:
    """Copy the base image of `engine` (None: the default) onto host `name`."""
    host = registry.get(name)
    image = probe.base_images()[recipe.engine(engine)]
    return transfer.push_image(host, image, say)
