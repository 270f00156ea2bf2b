"""A lab machine on another Docker host (a simulated one: a container of labgen's base
image running dockerd and sshd, reached over ssh:// on 127.0.0.1), driven like a local
one by every verb that talks to a machine.

One machine for the whole file (CI time): it is made into sim-b's warm pool and claimed
by `labgen up --host sim-b`, then checked, run, entered, traced, listed and destroyed,
and sim-b is asked directly (its own `docker ps -a`) what is left there.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from helpers import labgen, labgen_json, show

from tests.e2e.simhosts import sim_host_pair, sim_hosts  # noqa: F401

pytestmark = pytest.mark.e2e

HOST = "sim-b"
MACHINE = "port-forwarding"


def on_host(*args: str) -> str:
    """`docker ARGS` against sim-b's own daemon, with the environment labgen gives it."""
    from labgen.hosts import registry

    env = {**os.environ, **registry.get(HOST).env()}
    proc = subprocess.run(
        ["docker", *args], capture_output=True, text=True, env=env, timeout=60, check=True
    )
    return proc.stdout


def _here() -> str:
    """This machine's containers of this labgen home (the machine must not be here)."""
    from labgen.core import resources

    return subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label=org.labgen.home={resources.home_tag()}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def test_a_machine_on_another_host_works_with_every_verb(
    labgen_home: Path,
    sim_hosts: Any,  # noqa: F811
) -> None:
    try:
        filled = labgen("pool", "fill", "--host", HOST)
        assert filled.returncode == 0, show(filled)
        up = labgen("up", MACHINE, "--host", HOST)
        assert up.returncode == 0, show(up)
        assert "from the warm pool" in up.stdout, show(up)  # claimed from sim-b's pool
        assert _here() == "", "the machine was made on this host, not on sim-b"
        assert "labgen-" in on_host("ps", "--format", "{{.Names}}")

        docker = labgen("ssh", MACHINE, "--", "docker", "info", "--format", "'{{.ServerVersion}}'")
        assert docker.returncode == 0 and docker.stdout.strip(), show(docker)

        ran = labgen("run", MACHINE, "nat-baseline", "publish-port")
        assert ran.returncode == 0, show(ran)
        rules = labgen("ssh", MACHINE, "--", "sudo", "iptables", "-t", "nat", "-S")
        assert rules.returncode == 0, show(rules)
        assert "--dport 5000 -j DNAT --to-destination 172.17.0.2:5000" in rules.stdout

        traced = labgen("trace", MACHINE, "--", "curl", "-s", "-o", "/dev/null", "localhost:5000")
        assert traced.returncode == 0, show(traced)

        # The rest of the lab's steps, so that every step of --all has run once.
        rest = "curl logs docker-proxy count-localhost count-eth0 count-hairpin stop-server"
        ran = labgen("run", MACHINE, *rest.split())
        assert ran.returncode == 0, show(ran)
        code, result = labgen_json("check", MACHINE)
        assert code == 0, result

        code, rows = labgen_json("status")
        assert code == 0
        (row,) = [r for r in rows if r["instance"] == MACHINE]
        assert row["state"] == "running", row
        assert row["host"] == "sim-b", row
    finally:
        gone = labgen("destroy", "--all")
        assert gone.returncode == 0, show(gone)
    left = on_host("ps", "-a", "--format", "{{.Names}}").split()
    networks = on_host("network", "ls", "--format", "{{.Name}}").split()
    assert [n for n in left if n.startswith("labgen-")] == [], left
    assert [n for n in networks if n.startswith("labgen-")] == [], networks
