"""Shared test setup: every test runs against its own labgen home, never the user's.

The leak check (tests/test_no_leaks.py) runs last and looks at every home made here.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import HOMES, MACHINE_HOMES

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def labgen_home(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("labgen-home")
    HOMES.append(home)
    if request.node.get_closest_marker("e2e") is not None:
        MACHINE_HOMES.append(home)
    monkeypatch.setenv("LABGEN_HOME", str(home))
    monkeypatch.setenv("VAGRANT_CHECKPOINT_DISABLE", "1")
    monkeypatch.delenv("LABGEN_LABS_PATH", raising=False)
    monkeypatch.delenv("LABGEN_PROVIDER", raising=False)
    monkeypatch.delenv("LABGEN_ENGINE", raising=False)
    yield home


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The leak check goes last, whatever order the files were collected in."""
    items.sort(key=lambda item: item.get_closest_marker("leak_check") is not None)
