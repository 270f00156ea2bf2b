"""Fixtures of the fast unit tests: no lab machine is ever started.

Every unit test runs with fake `vagrant`, `docker`, `VBoxManage`, `virsh` and `ssh`
first on PATH. They record their arguments and fail; a test that reaches one of
them fails at teardown. So a regression that lets a bad command line get as far
as Vagrant or Docker shows up as a failing test, never as a machine.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from labgen.core.lab import Lab
from labgen.machine import render
from unit_helpers import GUARDED_TOOLS, ORIGINAL_PATH, RenderFn, docker_settings, fake_tool


@pytest.fixture(autouse=True)
def machine_tools_guard(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """Fake Vagrant/Docker/VirtualBox/libvirt/ssh first on PATH; fail if any ran."""
    bin_dir = tmp_path_factory.mktemp("guard-bin")
    log = bin_dir / "calls.log"
    for tool in GUARDED_TOOLS:
        fake_tool(bin_dir / tool, log, exit_code=97, listing=LISTINGS.get(tool, ""))
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{ORIGINAL_PATH}")
    yield log
    calls = log.read_text(encoding="utf-8").splitlines() if log.exists() else []
    # Listing what exists starts nothing: `destroy NAME` and `status` look for orphans.
    acting = [c for c in calls if not LISTING.match(c)]
    assert not acting, "a unit test ran a machine tool (nothing may start a machine):\n" + (
        "\n".join(acting)
    )


# The same listings, as the fake tools' shell case patterns: they answer "none there"
# (a listing that failed is an error to `status` and `destroy`, not an empty one).
LISTINGS = {
    "docker": '"ps -a --filter label="*|"network ls --filter label="*',
    "virsh": '*" list --all --name"',
}
LISTING = re.compile(r"^(docker (ps -a|network ls) --filter label=|virsh .* list --all --name$)")


@pytest.fixture
def render_lab(tmp_path: Path) -> RenderFn:
    """Render a lab into a fresh directory the way `labgen up` does: keys, then files."""
    counter = iter(range(1000))

    def _render(lab: Lab, instance: str = "unit", docker: dict[str, object] | None = None) -> Path:
        target = tmp_path / f"instance-{next(counter)}"
        target.mkdir()
        public_key = render.write_keypair(target, comment=f"labgen-{instance}")
        render.render_instance(lab, instance, docker or docker_settings(), public_key, target)
        return target

    return _render
