"""What every provider is: the small interface the rest of labgen talks to.

A provider knows its host-side needs (probes, each with its fix), its box (built
or not, listed, pruned), the settings its Vagrantfile partial
(templates/providers/NAME.rb.j2) is rendered with, and what to release on the host
when a machine goes. Everything else in labgen is provider-neutral.
"""

from __future__ import annotations

import ipaddress
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from labgen.core import resources
from labgen.core.context import Say
from labgen.machine.instance import InstanceState

MIN_FREE_GB = 5


class ProviderRow(BaseModel):
    """A provider's row in providers.yaml; its module reads the extra keys it knows."""

    model_config = ConfigDict(extra="allow")

    summary: str
    requires: list[str]
    # Keeps a warm pool (machine/pool.py): its machines do not depend on the lab until
    # the lab's files and settings go in, so one can be made ahead and claimed.
    pools: bool = False

    @property
    def extra(self) -> dict[str, Any]:
        """The keys only this provider's module knows."""
        return dict(self.model_extra or {})


@dataclass(frozen=True)
class Probe:
    """One probe's answer: ok or not, what it saw, and the fix when not ok."""

    name: str
    ok: bool
    detail: str
    fix: str = ""


@dataclass(frozen=True)
class ProviderHealth:
    """A provider's probes, as `labgen doctor` shows them."""

    provider: str
    summary: str
    probes: list[Probe]
    caution: str = ""  # what a user should know before choosing it

    @property
    def ready(self) -> bool:
        return all(p.ok for p in self.probes)


@dataclass(frozen=True)
class BoxInfo:
    """A box labgen built on this host (* in `labgen box list` when current)."""

    provider: str
    name: str
    engine: str  # the Docker engine inside ("?" when it cannot be told)
    current: bool  # built from the current recipe
    detail: str


@dataclass(frozen=True)
class Leftover:
    """Something of a labgen machine on the host (a container, a network, a domain),
    found by its labels or name under this labgen home."""

    provider: str
    instance: str  # the machine it belongs to
    kind: str  # "container", "network", "domain"
    name: str
    host: str = ""  # the registered host it is on ("": this one)


def probe_vagrant() -> Probe:
    """Vagrant on PATH (not asked for its version: every Vagrant call costs 1.5-2 s)."""
    path = shutil.which("vagrant")
    if path is None:
        return Probe("vagrant", False, "vagrant is not on PATH", "apt-get install vagrant")
    return Probe("vagrant", True, f"vagrant at {path}")


def probe_disk() -> Probe:
    """Room for images and boxes where labgen keeps its machines."""
    home = resources.labgen_home()
    existing = next((p for p in [home, *home.parents] if p.exists()), home.anchor)
    free_gb = shutil.disk_usage(existing).free / 1e9
    if free_gb < MIN_FREE_GB:
        return Probe(
            "disk",
            False,
            f"{free_gb:.1f} GB free at {existing}; images and boxes need about {MIN_FREE_GB} GB",
            "free some space, or point LABGEN_HOME at a larger disk",
        )
    return Probe("disk", True, f"{free_gb:.0f} GB free at {existing}")


class Provider:
    """The interface; each provider module subclasses it and sets `probes`."""

    # Probe name -> function; providers add their own to these shared ones.
    probes: dict[str, Callable[[], Probe]] = {"vagrant": probe_vagrant, "disk": probe_disk}

    def __init__(self, name: str, row: ProviderRow):
        self.name = name
        self.row = row
        unknown = [p for p in row.requires if p not in self.probes]
        if unknown:
            raise ValueError(f"providers.yaml: {name}: unknown probes {unknown}")

    @property
    def summary(self) -> str:
        return self.row.summary

    @property
    def partial(self) -> str:
        """The provider's block of the Vagrantfile, a template."""
        return f"providers/{self.name}.rb.j2"

    def machine_networks(self) -> list[ipaddress.IPv4Network]:
        """Where this provider's machines' own addresses come from: a lab's networks
        inside a machine must stay out of them (lint says so), or the machine's
        replies to the host go to the lab's bridge and its SSH hangs."""
        return []

    def examine(self, cache: dict[str, Probe] | None = None) -> ProviderHealth:
        """Run the provider's probes (each probe name once per `cache`)."""
        cache = {} if cache is None else cache
        for probe in self.row.requires:
            if probe not in cache:
                cache[probe] = self.probes[probe]()
        probes = [cache[p] for p in self.row.requires]
        return ProviderHealth(
            self.name, self.summary, probes, str(self.row.extra.get("caution", ""))
        )

    builds_box = False  # True: ensure_box builds one from the recipe

    def ensure_box(
        self, say: Say, force: bool = False, engine: str | None = None
    ) -> tuple[str, bool]:
        """Build this provider's box with Docker `engine` (None: the recipe's default)
        unless it is there: (its name, built now). A provider whose box is public
        builds nothing ("", False)."""
        return "", False

    def list_boxes(self) -> list[BoxInfo]:
        """The boxes labgen built for this provider on this host."""
        return []

    def prune_boxes(self) -> list[str]:
        """Remove boxes of older recipes (never one in use); returns their names."""
        return []

    def settings(
        self,
        instance: str,
        *,
        live: bool,
        others: Sequence[InstanceState],
        engine: str | None = None,
        host: str = "",
    ) -> Any:
        """What the partial needs to render `instance` with Docker `engine` (None: the
        recipe's default), a frozen dataclass.

        `live`: this provider brings the machine up now, so it may ask the host
        (free ports and subnets, `others` being the machines already there).
        `host`: the registered host it goes on ("": this one; machine/instance.py host_name).
        """
        return None

    @property
    def pools(self) -> bool:
        """Whether this provider keeps a warm pool (providers.yaml's `pools`)."""
        return self.row.pools

    def settings_from(self, state: InstanceState) -> object:
        """This provider's settings for a machine's block, as its state file keeps them
        (a claimed pooled machine keeps the settings it was made with)."""
        raise NotImplementedError(f"the {self.name} provider keeps no warm pool")

    def ssh_config(self, state: InstanceState, instance_dir: Path) -> str | None:
        """The machine's SSH settings in `vagrant ssh-config`'s form, where labgen
        rendered them itself; None: ask Vagrant."""
        return None

    def prepare(self, state: InstanceState, say: Say) -> None:
        """Before `vagrant up` of a new machine: create what it needs on the host."""

    def release(self, state: InstanceState) -> None:
        """After `vagrant destroy`: remove what `prepare` created on the host, and
        whatever of the machine Vagrant did not know of (see `leftovers`)."""
        for leftover in self.leftovers(state.made_as_name, state.on_host):
            self.remove(leftover)

    def leftovers(self, instance: str | None = None, host: str = "") -> list[Leftover]:
        """What of labgen's machines (of `instance`, or all) exists on `host` ("": this
        one) under this labgen home, whether or not an instance dir still knows it."""
        return []

    def remove(self, leftover: Leftover) -> None:
        """Remove one leftover from the host."""
