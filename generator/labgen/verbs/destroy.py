"""`labgen destroy`: destroy machines and remove their instance directories."""

from __future__ import annotations

from collections.abc import Sequence

from labgen.core.context import Context
from labgen.core.errors import LabgenError
from labgen.machine import providers, registry
from labgen.machine.instance import all_instances
from labgen.machine.providers.base import Leftover


def destroy(ctx: Context, names: Sequence[str], every: bool) -> list[str]:
    """Destroy the named machines (or all), with whatever of them is left on the host
    (an orphan: its instance directory gone); returns the names destroyed."""
    instances = all_instances()
    known = {i.name for i in instances}
    # What the host's labels call a machine: a claimed one keeps its pooled name there.
    made_as = {i.load().made_as_name for i in instances}
    found, could_not_look = _scan()
    leftovers = [x for x in found if x.instance not in made_as]
    if every:
        if could_not_look:  # --all cannot promise all without every provider's answer
            raise could_not_look[0]
        targets = sorted(known | {x.instance for x in leftovers})
    else:
        targets = [registry.instance_named(n).name for n in names]
        unknown = [n for n in targets if n not in known and not _of(n, leftovers)]
        if unknown and could_not_look:  # it may be an orphan where labgen cannot look
            raise could_not_look[0]
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
                providers.get(leftover.provider).remove(leftover)  # on its own host
    return targets


def _scan() -> tuple[list[Leftover], list[LabgenError]]:
    """What every provider holds of this home's machines, and the providers that could
    not look (destroying a known machine needs only its own provider's answer)."""
    found: list[Leftover] = []
    errors: list[LabgenError] = []
    for provider in providers.all_providers():
        for host in registry.hosts_in_use():
            try:
                found += provider.leftovers(host=host)
            except LabgenError as exc:
                errors.append(exc)
    return found, errors


def _of(name: str, leftovers: list[Leftover]) -> list[Leftover]:
    # Containers before networks: a network with a container on it cannot go.
    return sorted((x for x in leftovers if x.instance == name), key=lambda x: x.kind == "network")
