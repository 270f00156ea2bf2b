"""`labgen destroy`: destroy machines and remove their instance directories."""

from __future__ import annotations

from collections.abc import Sequence

from labgen.core.context import Context
from labgen.machine import providers, registry
from labgen.machine.instance import all_instances
from labgen.machine.providers.base import Leftover


def destroy(ctx: Context, names: Sequence[str], every: bool) -> list[str]:
    """Destroy the named machines (or all), with whatever of them is left on the host
    (an orphan: its instance directory gone); returns the names destroyed."""
    leftovers = [x for p in providers.all_providers() for x in p.leftovers()]
    known = {i.name for i in all_instances()}
    if every:
        targets = sorted(known | {x.instance for x in leftovers})
    else:
        targets = [registry.instance_named(n).name for n in names]
        unknown = [n for n in targets if n not in known and not _of(n, leftovers)]
        if unknown:  # a usage error before anything is destroyed
            registry.instance_named(unknown[0]).load()
    if not targets:
        ctx.say("no lab machines to destroy")
    for name in targets:
        with registry.locked(name):
            instance = registry.instance_named(name)
            if instance.exists():
                ctx.say(f"destroying {name}")
                registry.teardown(instance)  # releases what the providers hold of it
                continue
            for leftover in _of(name, leftovers):
                ctx.say(f"removing {leftover.kind} {leftover.name} of orphaned machine {name}")
                providers.get(leftover.provider).remove(leftover)
    return targets


def _of(name: str, leftovers: list[Leftover]) -> list[Leftover]:
    # Containers before networks: a network with a container on it cannot go.
    return sorted((x for x in leftovers if x.instance == name), key=lambda x: x.kind == "network")
