"""`labgen up`: bring a lab's machine up, or reuse it when it already runs."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Mapping
from dataclasses import replace
from functools import partial
from pathlib import Path

from labgen.core import resources
from labgen.core.context import Context, Say
from labgen.core.errors import UsageError
from labgen.core.lab import Lab, load_lab
from labgen.core.results import UpResult
from labgen.machine import create, pool, providers, recipe, registry, render
from labgen.machine.instance import Instance, InstanceState, host_label, host_name
from labgen.machine.providers import Provider
from labgen.machine.vagrant import Machine


def up(ctx: Context, lab_ref: str, name: str | None = None) -> UpResult:
    """Bring the lab's machine up (named after the lab, or `name`): reuse a running one,
    else claim a pooled machine of the lab's engine, else make one.

    A machine that fails to come up, or whose `up` is interrupted, is taken down
    whole: nothing half-made stays. Two `up`s of one machine at once: the second is
    refused (exit 2).
    """
    started = time.monotonic()
    say = ctx.say
    lab = load_lab(lab_ref, ctx.labs_path)
    instance = registry.instance_named(lab.name if name is None else name, "instance name")
    if instance.name.startswith(pool.PREFIX):
        raise UsageError(
            f"machine names starting with {pool.PREFIX!r} are the warm pool's",
            hint="pick another --name",
        )
    engine = recipe.engine(ctx.engine or lab.spec.engine)
    if engine not in lab.engines:
        say(
            f"warning: lab {lab.name} is verified on Docker {', '.join(lab.engines)}, "
            f"not {engine}: its checks may not hold there"
        )
    resources.writable_dir(resources.instances_dir())  # before any probe: fail fast
    host_name(ctx.host)  # an unknown host, too
    provider = providers.choose(ctx.provider, say)
    _, built = provider.ensure_box(say, engine=engine)

    def result(reused: bool) -> UpResult:
        seconds = round(time.monotonic() - started, 1)
        return UpResult(instance.name, lab.name, provider.name, engine, reused, seconds, built)

    with registry.locked(instance.name):
        if instance.exists():
            reused = _start_existing(instance, lab, provider, engine, say, ctx.host)
            return result(reused)
        if pool.claim(lab, instance, provider, engine, say, ctx.host):
            return replace(result(reused=False), claimed=True)
        render_files = partial(_render, lab, instance, provider, engine)
        create.create(instance, provider, engine, render_files, say, ctx.host)
    return result(reused=False)


def _start_existing(
    instance: Instance, lab: Lab, provider: Provider, engine: str, say: Say, host: str | None
) -> bool:
    """Reuse a running, healthy machine (True); else start it and provision it again."""
    state = instance.load()
    wanted = (lab.name, provider.name, engine, host_name(host))
    if (state.lab, state.provider, state.engine, state.on_host) != wanted:
        raise UsageError(
            f"machine {instance.name!r} already exists for lab {state.lab!r} on "
            f"{state.provider} with Docker {state.engine or '?'} "
            f"on host {host_label(state.on_host)}",
            hint=f"`labgen destroy {instance.name}` first, or pick another --name",
        )
    vagrant_state = Machine(instance.path).state() if instance.ssh_config.is_file() else ""
    if vagrant_state == "running":
        trouble = registry.trouble(instance, lab.spec.images)
        if trouble is None:
            say(f"machine {instance.name} is already running; reusing it")
            return True
        say(f"machine {instance.name} runs, but {trouble}: provisioning it again")
    elif vagrant_state:
        say(f"machine {instance.name} is {vagrant_state}: starting it and provisioning again")
    else:
        raise UsageError(
            f"machine {instance.name!r} was never brought up completely",
            hint=f"`labgen destroy {instance.name}`, then `labgen up {lab.name}`",
        )
    # A restarted machine lost what lived in its /var/lib/docker (the lab's images,
    # its containers): the steps run so far are undone.
    state.steps_run = []
    instance.save(state)
    create.vagrant_up(instance, state, provider, say, provision=True)
    return False


def _render(
    lab: Lab,
    instance: Instance,
    provider: Provider,
    engine: str,
    target: Path,
    settings: Mapping[str, object],
) -> InstanceState:
    """The lab's instance directory, written into `target`; the machine's state."""
    public_key = render.write_keypair(target, comment=f"labgen-{instance.name}")
    digest = render.render_instance(lab, instance.name, settings, public_key, target, engine)
    return InstanceState(
        instance=instance.name,
        lab=lab.name,
        lab_path=str(lab.path),
        provider=provider.name,
        render_digest=digest,
        lab_digest=lab.digest(),
        created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        host=create.host_settings(settings[provider.name]),
        engine=engine,
    )
