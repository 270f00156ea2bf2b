"""`labgen box build|list|prune`: the boxes providers build from the recipe."""

from __future__ import annotations

from labgen.core.context import Context
from labgen.core.errors import UsageError
from labgen.machine import providers, recipe
from labgen.machine.providers import BoxInfo


def engines_named(engines: str) -> list[str]:
    """'all', or a comma-separated list of the recipe's engines (else a UsageError).

    >>> engines_named("28.5,20.10")
    ['28.5', '20.10']
    """
    if engines == "all":
        return recipe.engines()
    return [recipe.engine(e.strip()) for e in engines.split(",") if e.strip()]


def build(ctx: Context, provider: str, engine: str, force: bool = False) -> str:
    """Build `provider`'s box with Docker `engine` unless it is there (or always, with
    `force`); returns its name."""
    chosen = providers.get(provider)
    if not chosen.builds_box:
        builders = [p.name for p in providers.all_providers() if p.builds_box]
        raise UsageError(
            f"labgen builds no box for the {provider} provider (it uses a public box); "
            f"it builds boxes for: {', '.join(builders)}"
        )
    name, _ = chosen.ensure_box(ctx.say, force, engine=engine)
    return name


def list_boxes() -> list[BoxInfo]:
    """The boxes labgen built on this host, for every provider that builds any."""
    return [box for p in providers.all_providers() for box in p.list_boxes()]


def prune() -> list[str]:
    """Remove boxes of older recipes (never one a machine still uses)."""
    return [name for p in providers.all_providers() for name in p.prune_boxes()]
