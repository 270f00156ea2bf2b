"""`labgen verify --hosts`: lab runs spread over two simulated Docker hosts (containers of
labgen's base image running dockerd and sshd on 127.0.0.1), each run's host named in the
text and the JUnit; and the hosts verify refuses before any machine.

Only the default engine's base image is on the sim hosts (the fixture pushes it), so the
runs are two labs on it, one per host.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import junitparser as jp
import pytest
from helpers import labgen, show

from tests.e2e import simhosts

sim_hosts = simhosts.sim_hosts
sim_host_pair = simhosts.sim_host_pair

pytestmark = pytest.mark.e2e

LABS = ("netns", "bridge")  # the two quickest seed labs
HOSTS = ("sim-a", "sim-b")


def containers_on(host: str) -> str:
    """Every container on the host's own dockerd (labgen's machines and anything else)."""
    from labgen.hosts import registry

    env = {**os.environ, **registry.get(host).env()}
    return subprocess.run(
        ["docker", "ps", "-aq"], capture_output=True, text=True, env=env, timeout=60, check=True
    ).stdout.strip()


def test_verify_spreads_two_labs_over_two_hosts(
    labgen_home: Path, sim_hosts: Any, tmp_path: Path
) -> None:
    out = tmp_path / "verify.xml"
    done = labgen("verify", *LABS, "--hosts", ",".join(HOSTS), "-j", "1", "--junitxml", str(out))
    assert done.returncode == 0, show(done)
    for lab, host in zip(LABS, HOSTS, strict=True):
        assert f"{lab} on Docker 20.10 on host {host} PASSED" in done.stdout, show(done)
        assert f"{lab}@20.10 on {host}" in done.stderr, show(done)  # its progress lines
    assert "2 of 2 labs passed" in done.stdout
    suites = {s.name: s for s in jp.JUnitXml.fromfile(str(out))}
    assert set(suites) == {f"{lab}@20.10 on {host}" for lab, host in zip(LABS, HOSTS, strict=True)}
    for lab, host in zip(LABS, HOSTS, strict=True):
        suite = suites[f"{lab}@20.10 on {host}"]
        assert {p.name: p.value for p in suite.properties()}["host"] == host
        cases = list(suite)
        assert cases and all(c.classname.startswith(f"{host}:{lab}.") for c in cases)
        assert all(c.is_passed for c in cases), [c.name for c in cases if not c.is_passed]
        assert containers_on(host) == ""  # its machine was destroyed there


def test_verify_refuses_bad_hosts_before_any_machine(labgen_home: Path, sim_hosts: Any) -> None:
    unknown = labgen("verify", "netns", "--hosts", "sim-a,nowhere")
    assert unknown.returncode == 2, show(unknown)
    assert "unknown host 'nowhere'" in unknown.stderr and "labgen hosts add" in unknown.stderr
    lacking = labgen("verify", "netns", "--engine", "28.5", "--hosts", "sim-a")
    assert lacking.returncode == 2, show(lacking)
    assert "sim-a lacks the base image" in lacking.stderr, show(lacking)
    assert "labgen hosts push sim-a --engine 28.5" in lacking.stderr, show(lacking)
    for done in (unknown, lacking):
        assert "Traceback" not in done.stderr
    assert containers_on("sim-a") == ""
    assert not list((labgen_home / "instances").glob("*"))
