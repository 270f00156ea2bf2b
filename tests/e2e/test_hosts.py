"""`labgen hosts` and `labgen doctor --host` against two simulated hosts on this machine."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import simhost_lib
from helpers import labgen, labgen_json, show
from labgen.hosts import probe, registry
from labgen.hosts.transfer import push_image
from labgen.machine import recipe

from tests.e2e import simhosts

pytestmark = pytest.mark.e2e
# Fixtures by assignment, not `from ... import`: ruff reads a test parameter of an
# imported fixture's name as a redefinition (F811).
sim_host_pair = simhosts.sim_host_pair
sim_hosts = simhosts.sim_hosts


def test_list_shows_what_each_host_has(sim_hosts: list[registry.Host]) -> None:
    code, rows = labgen_json("hosts", "list")
    assert code == 0
    assert [r["name"] for r in rows] == ["sim-a", "sim-b"]
    default = recipe.engine(None)
    for row in rows:
        assert row["answers"], row
        assert row["cores"] >= 1 and row["memory_mib"] > row["free_memory_mib"] > 0
        assert row["disk_free_gib"] > 0
        assert default in row["engines"], row  # pushed by the fixture
    plain = labgen("hosts", "list")
    assert plain.returncode == 0 and "sim-b" in plain.stdout and "cores" in plain.stdout


def test_add_records_the_host_key_in_labgens_known_hosts_only(
    sim_hosts: list[registry.Host],
) -> None:
    url = sim_hosts[0].url
    added = labgen("hosts", "add", "again", url)
    assert added.returncode == 0, show(added)
    assert "recorded its SSH host key" in added.stdout
    entry = f"[127.0.0.1]:{sim_hosts[0].ssh_port}"
    assert entry in registry.known_hosts_path().read_text()
    assert (
        not (Path.home() / ".ssh" / "known_hosts").exists()
        or entry not in (Path.home() / ".ssh" / "known_hosts").read_text()
    )
    assert labgen("hosts", "remove", "again").returncode == 0
    assert "again" not in [h.name for h in registry.load()]


def test_bad_input_exits_2(sim_hosts: list[registry.Host]) -> None:
    for args, says in [
        (("doctor", "--host", "nowhere"), "unknown host 'nowhere'"),
        (("hosts", "remove", "nowhere"), "unknown host 'nowhere'"),
        (("hosts", "add", "x", "tcp://127.0.0.1:2375"), "argument URL"),
        (("hosts", "add", "sim-a", sim_hosts[1].url), "already registered"),
        (("hosts", "add", "Bad_Name", "ssh://a"), "invalid host name"),
    ]:
        proc = labgen(*args)
        assert proc.returncode == 2, show(proc)
        assert says in proc.stderr and "Traceback" not in proc.stderr, show(proc)
    assert [h.name for h in registry.load()] == ["sim-a", "sim-b"]


def test_push_image_measured(
    sim_hosts: list[registry.Host], sim_host_pair: list[simhost_lib.SimHost]
) -> None:
    # The fixture's push measured the default engine's base image going over SSH.
    first = sim_host_pair[0].push
    assert first is not None and first.bytes > 100e6 and first.seconds > 0
    # A second image, pushed now, shows up on the host.
    other = [e for e in recipe.engines() if e != recipe.engine(None)][0]
    result = push_image(sim_hosts[1], probe.base_images()[other], lambda _line: None)
    assert result.bytes > 100e6
    assert other in probe.examine(sim_hosts[1]).engines
    print(f"push {first.megabytes} MB in {first.seconds} s;", end=" ")
    print(f"{result.megabytes} MB in {result.seconds} s")


def test_doctor_host_says_what_a_host_lacks(
    sim_hosts: list[registry.Host], sim_host_pair: list[simhost_lib.SimHost]
) -> None:
    healthy = labgen("doctor", "--host", "sim-a")
    assert healthy.returncode == 0 and "ready for machines" in healthy.stdout, show(healthy)
    # Stop sim-b's dockerd (by its pid file): its sshd still answers, Docker does not.
    container = sim_host_pair[1].container
    subprocess.run(
        ["docker", "exec", container, "sh", "-c", "kill $(cat /var/run/docker.pid)"], check=True
    )
    code, report = labgen_json("doctor", "--host", "sim-b")
    assert code == 1 and report["answers"] is False, report
    plain = labgen("doctor", "--host", "sim-b")
    assert plain.returncode == 1 and "does not answer" in plain.stdout, show(plain)
    assert "fix:" in plain.stdout and "dockerd running" in plain.stdout
    code, rows = labgen_json("hosts", "list")
    assert [r["answers"] for r in rows] == [True, False]
