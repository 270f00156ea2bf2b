"""After every other test: no container, docker network, instance dir or libvirt domain
left behind, and no simulated host's container, network or volume.

A look that could not be made fails this check: a Docker daemon (or, where virsh is
installed, a running libvirtd) that does not answer may be hiding exactly what it looks for.
A system libvirtd that is not running at all (installed, never started since the machine
booted) keeps its domains in files, which are read instead.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
from pathlib import Path

import pytest
import simhost_lib
from helpers import HOMES, MACHINE_HOMES
from labgen.core import resources
from labgen.machine.providers.libvirt_box import LIBVIRT_URI, libvirt_uri

pytestmark = pytest.mark.leak_check

TIMEOUT = 60  # seconds a listing may take; longer, and the daemon is not answering


def listing(command: list[str]) -> list[str]:
    """The words `command` prints, or a failed test saying why it could not look."""
    shown = " ".join(command)
    if shutil.which(command[0]) is None:
        pytest.fail(f"the leak check cannot look: `{command[0]}` is not on PATH ({shown})")
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the leak check cannot look: `{shown}` did not answer in {TIMEOUT} s")
    if proc.returncode != 0:
        why = proc.stderr.strip() or f"exit status {proc.returncode}"
        pytest.fail(f"the leak check cannot look: `{shown}` failed: {why}")
    return proc.stdout.split()


def libvirtd_runs() -> bool:
    """Someone accepts connections on the system libvirtd's socket."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        try:
            sock.connect("/run/libvirt/libvirt-sock")
        except OSError:
            return False
    return True


def domain_names() -> list[str]:
    """libvirt's domains: virsh's listing, or a stopped system libvirtd's files."""
    if libvirt_uri() != LIBVIRT_URI or libvirtd_runs():
        return listing(["virsh", "-q", "-c", libvirt_uri(), "list", "--all", "--name"])
    folders = [Path("/etc/libvirt/qemu"), Path("/run/libvirt/qemu")]
    return [p.stem for f in folders if f.exists() for p in f.iterdir() if p.suffix == ".xml"]


def docker_names(kind: str, label: str) -> list[str]:
    every = ["-a"] if kind == "container" else []  # `docker volume ls` has no -a
    return listing(["docker", kind, "ls", *every, "-q", "--filter", f"label={label}"])


def test_no_machine_network_or_instance_dir_left_behind(monkeypatch: pytest.MonkeyPatch) -> None:
    assert HOMES, "the leak check must run after the tests it checks"
    left = []
    tags = set()
    for home in HOMES:
        monkeypatch.setenv("LABGEN_HOME", str(home))
        tag = resources.home_tag()
        tags.add(tag)
        instances = home / "instances"
        if home in MACHINE_HOMES and instances.is_dir():
            left += [f"instance dir {p}" for p in instances.iterdir()]
        for kind in ("container", "network"):
            left += [f"{kind} {n}" for n in docker_names(kind, f"org.labgen.home={tag}")]
        # Simulated hosts (tests/simhost_lib.py) made from this home: their containers,
        # networks and the volumes holding their inner Docker's storage.
        for kind in ("container", "network", "volume"):
            found = docker_names(kind, f"{simhost_lib.HOME_LABEL}={tag}")
            left += [f"sim host {kind} {n}" for n in found]
    # libvirt domains are named after the machine, which carries its home's tag. Without
    # virsh no labgen machine can have been a libvirt domain.
    if shutil.which("virsh"):
        domains = domain_names()
        left += [f"libvirt domain {d}" for d in domains if any(f"-{t}-" in d for t in tags)]
    assert not left, "left behind:\n" + "\n".join(left)
