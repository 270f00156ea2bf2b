"""Which checks apply to the state after a given step (pure logic, no pytest)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class StepMarker:
    """A check's `@pytest.mark.step(step, until=...)`."""

    step: str
    until: str | None = None


def is_selected(
    order: Sequence[str], marker: StepMarker, target: str, only: bool, ending: bool = False
) -> bool:
    """Does the check hold in the state right after step `target`?

    With `only`, just the target step's own checks. Otherwise every check whose
    step has run by then and whose `until` step has not; with `ending`, also those
    whose `until` is `target` (verify runs them to see them fail: until's promise).

    >>> is_selected(["a", "b", "c"], StepMarker("a", until="c"), "b", only=False)
    True
    >>> is_selected(["a", "b", "c"], StepMarker("a", until="c"), "c", only=False)
    False
    >>> is_selected(["a", "b", "c"], StepMarker("a", until="c"), "c", False, ending=True)
    True
    """
    if only:
        return marker.step == target
    if ending and marker.until == target:
        return True
    here = order.index(target)
    if order.index(marker.step) > here:
        return False
    return marker.until is None or order.index(marker.until) > here
