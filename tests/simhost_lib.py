"""Simulated hosts: containers of labgen's own base image (dockerd + sshd) on this
machine, reached over ssh:// on 127.0.0.1, registered in the current LABGEN_HOME.

Shared by tests/e2e/simhosts.py (the `sim_hosts` fixture) and bench/hosts.py. Everything
made here carries the label LABEL, which tests/test_no_leaks.py looks for.
"""

from __future__ import annotations

import contextlib
import secrets
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from labgen.core import resources
from labgen.hosts import probe, registry, transfer
from labgen.machine import recipe

LABEL = "labgen.simhost"
# Which labgen home made it: the leak check looks for the homes its tests used, so another
# session's sim hosts on the same dockerd are none of its business.
HOME_LABEL = "labgen.simhost.home"
# The inner dockerd of a sim host starts in a few seconds; sshd sooner.
READY_TIMEOUT_S = 90.0
# As templates/providers/docker.rb.j2 starts a machine where --privileged is refused.
RUN_FLAGS = [
    "--cap-add=ALL",
    "--cap-drop=SYS_RESOURCE",
    "--security-opt",
    "seccomp=unconfined",
    "--security-opt",
    "apparmor=unconfined",
    "--security-opt",
    "systempaths=unconfined",
    "-v",
    "/sys/fs/cgroup:/sys/fs/cgroup:rw",
]


@dataclass
class SimHost:
    """One simulated host: its container, network, volume, key and registered Host."""

    name: str
    container: str
    network: str
    volume: str
    key: Path
    port: int = 0
    host: registry.Host | None = None
    setup_seconds: float = 0.0
    push: transfer.PushResult | None = None


def _docker(*args: str, check: bool = True) -> str:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout.strip()


def make_key(directory: Path) -> Path:
    """An ed25519 key pair for the sim hosts, under `directory` (a test's tmp dir)."""
    directory.mkdir(parents=True, exist_ok=True)
    key = directory / "simhost_ed25519"
    if not key.exists():
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "labgen-simhost", "-f", str(key)],
            check=True,
        )
    return key


def use_key(key: Path) -> None:
    """Make labgen's ssh settings (in the current LABGEN_HOME only) log in with `key`."""
    registry.ensure_ssh_settings()
    snippet = registry.extra_config_dir() / "simhosts.conf"
    snippet.write_text(f"Host 127.0.0.1\n  IdentityFile {key}\n  IdentitiesOnly yes\n")


def make(name: str, key: Path, engine: str | None = None, push: bool = True) -> SimHost:
    """Start a sim host called `name`, register it, and (push=True) load the base image
    of `engine` into it. On any failure what was made is removed before raising."""
    tag = secrets.token_hex(3)
    base = f"labgen-simhost-{name}-{tag}"
    sim = SimHost(name, base, base, base, key)
    started = time.monotonic()
    try:
        _start(sim, key)
        use_key(key)
        sim.host = registry.add(name, f"ssh://vagrant@127.0.0.1:{sim.port}")
        _wait_ready(sim.host)
        if push:
            image = probe.base_images()[recipe.engine(engine)]
            sim.push = transfer.push_image(sim.host, image, lambda _line: None)
    except BaseException:
        remove(sim)
        raise
    sim.setup_seconds = round(time.monotonic() - started, 1)
    return sim


def _start(sim: SimHost, key: Path) -> None:
    image = probe.base_images()[recipe.engine("28.5")]
    label = f"{LABEL}={sim.name}"
    home = f"{HOME_LABEL}={resources.home_tag()}"
    _docker("network", "create", "--label", label, "--label", home, sim.network)
    _docker("volume", "create", "--label", label, "--label", home, sim.volume)
    public = key.with_suffix(".pub").read_text().strip()
    _docker(
        "run", "-d", "--name", sim.container, "--label", label, "--label", home,
        "--network", sim.network,
        "--hostname", sim.name, *RUN_FLAGS, "-v", f"{sim.volume}:/var/lib/docker",
        "-e", f"LABGEN_AUTHORIZED_KEY={public}", "-p", "127.0.0.1::22", image,
    )  # fmt: skip
    sim.port = int(_docker("port", sim.container, "22/tcp").splitlines()[0].rsplit(":", 1)[1])


def _wait_ready(host: registry.Host) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        done = subprocess.run(
            [*host.ssh_command(), "docker", "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"sim host {host.name} not ready: {done.stderr.strip()}")
        time.sleep(1)


def machines_on(sim: SimHost) -> list[str]:
    """The labgen machines (containers named labgen-*) running in the sim host."""
    if sim.host is None:
        return []
    done = subprocess.run(
        [*sim.host.ssh_command(), "docker", "ps", "-a", "--format", "{{.Names}}"],
        capture_output=True,
        text=True,
        check=False,
    )
    return [n for n in done.stdout.split() if n.startswith("labgen-")]


def remove(sim: SimHost) -> None:
    """Remove the sim host's container, volume and network, and unregister it (each step
    tried even when an earlier one failed)."""
    _docker("rm", "-f", "-v", sim.container, check=False)
    _docker("volume", "rm", "-f", sim.volume, check=False)
    _docker("network", "rm", sim.network, check=False)
    if sim.host is not None:
        with contextlib.suppress(Exception):  # already gone is fine at teardown
            registry.remove(sim.name)


def leftovers() -> list[str]:
    """Every sim-host container, network and volume on this machine (any home)."""
    label = ["--filter", f"label={LABEL}"]
    listings = {
        "container": ["ps", "-a", *label, "--format", "{{.Names}}"],
        "network": ["network", "ls", *label, "--format", "{{.Name}}"],
        "volume": ["volume", "ls", *label, "--format", "{{.Name}}"],
    }
    return [f"{kind} {n}" for kind, args in listings.items() for n in _docker(*args).split()]
