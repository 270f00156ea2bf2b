"""Making a new machine, for a lab (`labgen up`) or for the warm pool (`labgen pool fill`):
the instance directory rendered beside its place and moved in whole, the provider's host
side prepared, one `vagrant up`; anything half-made taken down.

Both kinds are made by this one path, so that a pooled machine is made exactly as `up`
makes one: only what is rendered differs (machine/render.py).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import asdict, is_dataclass
from pathlib import Path

from labgen.core import resources
from labgen.core.context import Say
from labgen.machine import providers, registry, render
from labgen.machine.instance import Instance, InstanceState, all_instances, host_name
from labgen.machine.providers import Provider
from labgen.machine.vagrant import Machine

# Writes an instance's files into a scratch folder, given every provider's settings; returns
# the machine's state (saved into that folder by create()).
Render = Callable[[Path, Mapping[str, object]], InstanceState]


def settings_for(
    instance: str, provider: Provider, engine: str, host: str = ""
) -> dict[str, object]:
    """Every provider's settings for its block of the Vagrantfile, the chosen one live
    (a free subnet and port among this home's other machines on `host`: "" this one)."""
    others = [i.load() for i in all_instances()]
    return {
        p.name: p.settings(
            instance,
            live=p is provider,
            others=others,
            engine=engine,
            host=host if p is provider else "",
        )
        for p in providers.all_providers()
    }


def host_settings(settings: object) -> dict[str, object]:
    """A provider's settings for one machine as its state file keeps them ({}: none)."""
    if is_dataclass(settings) and not isinstance(settings, type):
        return asdict(settings)
    return {}


def create(
    instance: Instance,
    provider: Provider,
    engine: str,
    render_files: Render,
    say: Say,
    host: str | None = None,
) -> InstanceState:
    """Make machine `instance` (the caller holds its lock) on `host` (Context.host:
    None or "local" is this machine, else a registered host): rendered, prepared, up.

    A machine that fails to come up, or whose making is interrupted, is taken down
    whole: nothing half-made stays, and Vagrant's log is kept.
    """
    on_host = host_name(host)
    for leftover in provider.leftovers(instance.name, on_host):
        say(f"removing {leftover.kind} {leftover.name}, left by an earlier {instance.name}")
        provider.remove(leftover)
    try:
        state = _render_into_place(instance, provider, engine, render_files, on_host)
        say(f"rendered {instance.path}")
        provider.prepare(state, say)
        instance.save(state)
        vagrant_up(instance, state, provider, say, provision=False)
    except BaseException:
        # An interrupted render leaves no instance dir: _render_into_place removes its own.
        if not instance.exists():
            raise
        kept = registry.keep_log(instance)
        say("bringing the machine up failed; removing what was created")
        registry.teardown(instance)
        if kept:
            say(f"Vagrant's log is kept in {kept}")
        raise
    return state


def vagrant_up(
    instance: Instance, state: InstanceState, provider: Provider, say: Say, provision: bool
) -> None:
    """One `vagrant up`, then the SSH settings written beside it."""
    machine = Machine(instance.path)
    say(f"vagrant up --provider={provider.name}")
    machine.up(provider.name, say, provision=provision)
    write_ssh_config(instance, state, provider)


def write_ssh_config(instance: Instance, state: InstanceState, provider: Provider) -> None:
    """The SSH settings labgen rendered, where the provider knows them: else one Vagrant
    call (`vagrant ssh-config` costs 1.5-2 s of Ruby start-up)."""
    config = provider.ssh_config(state, instance.path) or Machine(instance.path).ssh_config()
    instance.ssh_config.write_text(config, encoding="utf-8")


def _render_into_place(
    instance: Instance, provider: Provider, engine: str, render_files: Render, on_host: str
) -> InstanceState:
    """Render the instance directory beside its place, then move it in whole."""
    settings = settings_for(instance.name, provider, engine, on_host)
    resources.instances_dir().mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{instance.name}-", dir=resources.instances_dir()))
    try:
        state = render_files(tmp, settings)
        state.on_host = on_host
        Instance(tmp.name).save(state)
        render.copy_tree_atomic(tmp, instance.path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return state
