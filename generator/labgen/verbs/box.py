"""`labgen box build|list|prune`: the boxes providers build from the recipe."""

from __future__ import annotations

from .. import providers
from ..context import Context
from ..providers import BoxInfo


def build(ctx: Context, provider: str, force: bool = False) -> str:
    """Build `provider`'s box unless it is there (or always, with `force`); its name."""
    name, _ = providers.get(provider).ensure_box(ctx.say, force)
    return name


def list_boxes() -> list[BoxInfo]:
    """The boxes labgen built on this host, for every provider that builds any."""
    return [box for p in providers.all_providers() for box in p.list_boxes()]


def prune() -> list[str]:
    """Remove boxes of older recipes (never one a machine still uses)."""
    return [name for p in providers.all_providers() for name in p.prune_boxes()]
