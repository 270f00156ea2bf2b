"""End-to-end fixtures: machines brought up with the CLI, always destroyed afterwards."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from helpers import labgen, show


@pytest.fixture
def bring_up(labgen_home: Path) -> Iterator[Callable[..., str]]:
    """`bring_up(lab, *options)` runs `labgen up LAB OPTIONS` (`--engine 28.5`,
    `--name N`); every machine is destroyed after the test, pass or fail."""
    brought: list[str] = []

    def up(lab: str, *options: str) -> str:
        brought.append(lab)
        proc = labgen("up", lab, *options)
        assert proc.returncode == 0, show(proc)
        return lab

    try:
        yield up
    finally:
        if brought:
            destroyed = labgen("destroy", "--all")
            assert destroyed.returncode == 0, show(destroyed)


@pytest.fixture
def machine(request: pytest.FixtureRequest, bring_up: Callable[[str], str]) -> str:
    """A fresh machine for the lab named by the test's parameter (indirect)."""
    return bring_up(request.param)
