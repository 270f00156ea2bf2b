"""What a step changed: the difference of two network-state snapshots (snapshot.py).

Plain set arithmetic on the snapshots' items, so what an item leaves out (counters,
pids, timers) can never show up as a change.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from labgen.network.snapshot import KINDS, Snapshot


@dataclass(frozen=True)
class Change:
    """What appeared and what went away, for one kind of item (both sorted)."""

    kind: str
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()


@dataclass(frozen=True)
class Diff:
    """What changed between two snapshots: one Change a kind that changed, in `KINDS` order."""

    changes: tuple[Change, ...] = field(default_factory=tuple)

    @property
    def is_empty(self) -> bool:
        return not self.changes

    def added(self, kind: str | None = None) -> list[str]:
        """The items that appeared (of one kind, or of all)."""
        return [item for c in self.changes if kind in (None, c.kind) for item in c.added]

    def removed(self, kind: str | None = None) -> list[str]:
        """The items that went away (of one kind, or of all)."""
        return [item for c in self.changes if kind in (None, c.kind) for item in c.removed]

    def to_dict(self) -> dict[str, dict[str, list[str]]]:
        """For `--json`: {kind: {"added": [...], "removed": [...]}} for the kinds that changed."""
        return {c.kind: {"added": list(c.added), "removed": list(c.removed)} for c in self.changes}


def diff(before: Snapshot, after: Snapshot) -> Diff:
    """The items added and removed between `before` and `after`, grouped by kind."""
    changes = []
    for kind in KINDS:
        old, new = before.of(kind), after.of(kind)
        if old != new:
            key = _rule_order if kind == "rules" else None
            changes.append(
                Change(kind, tuple(sorted(new - old, key=key)), tuple(sorted(old - new, key=key)))
            )
    return Diff(tuple(changes))


def _rule_order(item: str) -> tuple[str, int, str]:
    """Table by table, and in a table a chain before the rules: "nat chain DOCKER" comes
    before "nat DOCKER: -A DOCKER ...", where plain sorting would put it after."""
    head, sep, _ = item.partition(" chain ")
    if sep and ": " not in head:
        return (head, 0, item)
    return (item.partition(": ")[0].rsplit(" ", 1)[0], 1, item)


def render_diff(d: Diff) -> list[str]:
    """The diff as lines: "- item" for what went away, then "+ item" for what appeared,
    kind by kind in `KINDS` order, each sorted. No lines for an empty diff."""
    return list(_lines(d))


def _lines(d: Diff) -> Iterator[str]:
    for change in d.changes:
        for item in change.removed:
            yield f"- {item}"
        for item in change.added:
            yield f"+ {item}"
