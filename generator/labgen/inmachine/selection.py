"""Which checks apply to the state after a given step (pure logic, no pytest)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class StepMarker:
    """A check's `@pytest.mark.step(step, until=...)`."""

    step: str
    until: str | None = None


def is_selected(order: Sequence[str], marker: StepMarker, target: str, only: bool) -> bool:
    """Does the check hold in the state right after step `target`?

    With `only`, just the target step's own checks. Otherwise every check whose
    step has run by then and whose `until` step has not:

    >>> is_selected(["a", "b", "c"], StepMarker("a", until="c"), "b", only=False)
    True
    >>> is_selected(["a", "b", "c"], StepMarker("a", until="c"), "c", only=False)
    False
    """
    if only:
        return marker.step == target
    here = order.index(target)
    if order.index(marker.step) > here:
        return False
    return marker.until is None or order.index(marker.until) > here
