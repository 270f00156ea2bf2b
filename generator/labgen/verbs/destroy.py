"""`labgen destroy`: destroy machines and remove their instance directories."""

from __future__ import annotations

from collections.abc import Sequence

from .. import machines
from ..context import Context
from ..instance import all_instances


def destroy(ctx: Context, names: Sequence[str], every: bool) -> list[str]:
    """Destroy the named machines (or all); returns the names destroyed."""
    if every:
        targets = all_instances()
    else:
        targets = [machines.instance_named(n) for n in names]
        for target in targets:
            target.load()  # an unknown name is a usage error before anything is destroyed
    if not targets:
        ctx.say("no lab machines to destroy")
    done = []
    for target in targets:
        ctx.say(f"destroying {target.name}")
        machines.teardown(target)
        done.append(target.name)
    return done
