"""After every other test: no container, docker network or instance dir left behind."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from helpers import HOMES, MACHINE_HOMES
from labgen.core import resources

pytestmark = pytest.mark.leak_check


def _docker_names(kind: str, label: str) -> list[str]:
    out = subprocess.run(
        [
            "docker",
            kind,
            "ls",
            *(["-a"] if kind == "container" else []),
            "-q",
            "--filter",
            f"label={label}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return out.split()


def test_no_machine_network_or_instance_dir_left_behind(monkeypatch: pytest.MonkeyPatch) -> None:
    assert HOMES, "the leak check must run after the tests it checks"
    left = []
    # Where no Docker daemon answers, nothing can have been left in it.
    docker = (
        shutil.which("docker") is not None
        and subprocess.run(["docker", "version"], capture_output=True).returncode == 0
    )
    for home in HOMES:
        monkeypatch.setenv("LABGEN_HOME", str(home))
        tag = resources.home_tag()
        instances = home / "instances"
        if home in MACHINE_HOMES and instances.is_dir():
            left += [f"instance dir {p}" for p in instances.iterdir()]
        if docker:
            for kind in ("container", "network"):
                left += [f"{kind} {n}" for n in _docker_names(kind, f"org.labgen.home={tag}")]
    # libvirt domains are named after the machine, which carries its home's tag.
    if shutil.which("virsh"):
        domains = subprocess.run(
            ["virsh", "-q", "-c", "qemu:///system", "list", "--all", "--name"],
            capture_output=True,
            text=True,
        ).stdout.split()
        tags = set()
        for home in HOMES:
            monkeypatch.setenv("LABGEN_HOME", str(home))
            tags.add(resources.home_tag())
        left += [f"libvirt domain {d}" for d in domains if any(f"-{t}-" in d for t in tags)]
    assert not left, "left behind:\n" + "\n".join(left)
