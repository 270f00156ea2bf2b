"""The providers: a registry that imports a provider's module only when it is used.

    >>> names()
    ['docker', 'libvirt', 'virtualbox']

`choose` picks the provider for a machine: the one named (--provider,
$LABGEN_PROVIDER), checked ready, else the first ready one in the table's order.
"""

from __future__ import annotations

import functools
import importlib
from pathlib import Path

import yaml

from labgen.core.context import Say
from labgen.core.errors import PrerequisiteError, UsageError
from labgen.machine.providers.base import BoxInfo, Probe, Provider, ProviderHealth, ProviderRow

__all__ = ["BoxInfo", "Probe", "Provider", "ProviderHealth", "choose", "get", "names"]

PROVIDERS_FILE = Path(__file__).with_name("providers.yaml")


@functools.cache
def _rows() -> dict[str, ProviderRow]:
    raw = yaml.safe_load(PROVIDERS_FILE.read_text(encoding="utf-8"))
    return {name: ProviderRow.model_validate(row) for name, row in raw.items()}


def names() -> list[str]:
    """Every provider, in preference order."""
    return list(_rows())


@functools.cache
def get(name: str) -> Provider:
    """The provider called `name` (its module imported now), or a UsageError."""
    rows = _rows()
    if name not in rows:
        raise UsageError(f"unknown provider {name!r}; labgen knows: {', '.join(rows)}")
    module = importlib.import_module(f".{name}", __package__)
    provider: Provider = module.PROVIDER_CLASS(name, rows[name])
    return provider


def all_providers() -> list[Provider]:
    """Every provider, in preference order (each module imported)."""
    return [get(name) for name in names()]


def choose(name: str | None, say: Say) -> Provider:
    """The provider to use, checked ready (else a PrerequisiteError naming the fix).

    `name` comes from --provider or $LABGEN_PROVIDER (cli.py reads both); without it,
    the first ready provider in the table's order. Each probe runs once.
    """
    cache: dict[str, Probe] = {}
    if name:
        provider = get(name)
        for result in provider.examine(cache).probes:
            if not result.ok:
                raise PrerequisiteError(
                    f"the {provider.name} provider is not ready: {result.detail}",
                    hint=result.fix,
                )
        say(f"provider {provider.name}: chosen by name")
        return provider
    for provider in all_providers():
        if provider.examine(cache).ready:
            say(f"provider {provider.name}: the first ready one (labgen doctor tells why)")
            return provider
    raise PrerequisiteError(
        "no provider is ready on this host",
        hint="`labgen doctor` lists what each one lacks and how to fix it",
    )
