"""What `labgen workshop serve` says when its web stack cannot be imported."""

from __future__ import annotations

import sys

import labgen.workshop
import pytest
from labgen.core.context import Context
from labgen.core.errors import PrerequisiteError
from labgen.verbs import workshop


def test_a_missing_web_stack_is_a_broken_install_not_a_missing_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Regression: the hint named `labgen[workshop]`, an extra that does not exist."""
    # `from labgen.workshop import server` takes the package's attribute when an earlier
    # test imported it; without it, the None in sys.modules makes the import fail.
    monkeypatch.delattr(labgen.workshop, "server", raising=False)
    monkeypatch.setitem(sys.modules, "labgen.workshop.server", None)
    with pytest.raises(PrerequisiteError) as raised:
        workshop.serve(Context(), "pf", "127.0.0.1:0", lambda room, url: None)
    hint = str(raised.value.hint)
    assert "[workshop]" not in hint
    assert "--force-reinstall labgen" in hint and "setup-workshop.sh" in hint
