"""`labgen doctor`: what each provider needs on this host, probed, with the fix for each gap."""

from __future__ import annotations

from labgen.machine import providers
from labgen.machine.providers import Probe, ProviderHealth


def doctor() -> list[ProviderHealth]:
    """Every provider's probes, each probe run once."""
    cache: dict[str, Probe] = {}
    return [p.examine(cache) for p in providers.all_providers()]
