"""The `sim_hosts` fixture: two simulated Docker hosts ("sim-a", "sim-b") on this machine.

Each is a container of labgen's own base image running dockerd and sshd, its port 22
published on 127.0.0.1 only, logging in as `vagrant` (in the docker group) with a key made
under the test session's tmp dir; the default engine's base image is pushed into both.
The containers live for the module; each test gets them registered in its own
LABGEN_HOME. At teardown every container, network and volume goes, even on failure, and
it is asserted that no labgen machine was left on either host.

Use it with `from tests.e2e.simhosts import sim_hosts  # noqa: F401`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import simhost_lib
from helpers import HOMES
from labgen.hosts import registry

NAMES = ("sim-a", "sim-b")


@pytest.fixture(scope="module")
def sim_host_pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[simhost_lib.SimHost]]:
    """The two sim hosts' containers, made once per module (about 20 s each here)."""
    keys = tmp_path_factory.mktemp("simhost-keys")
    made: list[simhost_lib.SimHost] = []
    with pytest.MonkeyPatch.context() as patch:
        # The module's own home: made before any test's home exists.
        home = tmp_path_factory.mktemp("simhost-home")
        HOMES.append(home)  # the leak check looks for sim hosts made from this home
        patch.setenv("LABGEN_HOME", str(home))
        key = simhost_lib.make_key(keys)
        try:
            for name in NAMES:
                made.append(simhost_lib.make(name, key))
            yield made
        finally:
            left = {sim.name: simhost_lib.machines_on(sim) for sim in made}
            for sim in made:
                simhost_lib.remove(sim)
    assert not any(left.values()), f"labgen machines left on the sim hosts: {left}"


@pytest.fixture
def sim_hosts(
    sim_host_pair: list[simhost_lib.SimHost], labgen_home: Path
) -> Iterator[list[registry.Host]]:
    """The two sim hosts registered in this test's LABGEN_HOME (unregistered after)."""
    simhost_lib.use_key(sim_host_pair[0].key)
    hosts = [registry.add(sim.name, f"ssh://vagrant@127.0.0.1:{sim.port}") for sim in sim_host_pair]
    yield hosts
    for host in hosts:
        if host.name in {h.name for h in registry.load()}:
            registry.remove(host.name)
