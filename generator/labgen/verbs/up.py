"""`labgen up`: bring a lab's machine up, or reuse it when it already runs."""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from labgen.core import resources
from labgen.core.context import Context, Say
from labgen.core.errors import UsageError
from labgen.core.lab import Lab, load_lab
from labgen.core.results import UpResult
from labgen.machine import providers, recipe, registry, render
from labgen.machine.instance import Instance, InstanceState, all_instances
from labgen.machine.providers import Provider
from labgen.machine.vagrant import Machine


def up(ctx: Context, lab_ref: str, name: str | None = None) -> UpResult:
    """Bring the lab's machine up (named after the lab, or `name`); reuse a running one.

    A machine that fails to come up, or whose `up` is interrupted, is taken down
    whole: nothing half-made stays. Two `up`s of one machine at once: the second is
    refused (exit 2).
    """
    started = time.monotonic()
    say = ctx.say
    lab = load_lab(lab_ref, ctx.labs_path)
    instance = registry.instance_named(lab.name if name is None else name, "instance name")
    engine = recipe.engine(ctx.engine or lab.spec.engine)
    if engine not in lab.engines:
        say(
            f"warning: lab {lab.name} is verified on Docker {', '.join(lab.engines)}, "
            f"not {engine}: its checks may not hold there"
        )
    resources.writable_dir(resources.instances_dir())  # before any probe: fail fast
    provider = providers.choose(ctx.provider, say)
    _, built = provider.ensure_box(say, engine=engine)

    def result(reused: bool) -> UpResult:
        seconds = round(time.monotonic() - started, 1)
        return UpResult(instance.name, lab.name, provider.name, engine, reused, seconds, built)

    with registry.locked(instance.name):
        if instance.exists():
            reused = _start_existing(instance, lab, provider, engine, say)
            return result(reused)
        for leftover in provider.leftovers(instance.name):
            say(f"removing {leftover.kind} {leftover.name}, left by an earlier {instance.name}")
            provider.remove(leftover)
        try:
            state = _render_new(lab, instance, provider, engine)
            say(f"rendered {instance.path}")
            provider.prepare(state, say)
            instance.save(state)
            _vagrant_up(instance, state, provider, say, provision=False)
        except BaseException:
            # No half-made machines: take it all down, keep the log for the user. (An
            # interrupted render leaves no instance dir: _render_new removes its own.)
            if not instance.exists():
                raise
            kept = registry.keep_log(instance)
            say("bringing the machine up failed; removing what was created")
            registry.teardown(instance)
            if kept:
                say(f"Vagrant's log is kept in {kept}")
            raise
    return result(reused=False)


def _start_existing(
    instance: Instance, lab: Lab, provider: Provider, engine: str, say: Say
) -> bool:
    """Reuse a running, healthy machine (True); else start it and provision it again."""
    state = instance.load()
    if (state.lab, state.provider, state.engine) != (lab.name, provider.name, engine):
        raise UsageError(
            f"machine {instance.name!r} already exists for lab {state.lab!r} on "
            f"{state.provider} with Docker {state.engine or '?'}",
            hint=f"`labgen destroy {instance.name}` first, or pick another --name",
        )
    vagrant_state = Machine(instance.path).state() if instance.ssh_config.is_file() else ""
    if vagrant_state == "running":
        trouble = registry.trouble(instance)
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
    _vagrant_up(instance, state, provider, say, provision=True)
    return False


def _vagrant_up(
    instance: Instance, state: InstanceState, provider: Provider, say: Say, provision: bool
) -> None:
    machine = Machine(instance.path)
    say(f"vagrant up --provider={provider.name}")
    machine.up(provider.name, say, provision=provision)
    # The SSH settings labgen rendered, where the provider knows them: one Vagrant call
    # (`vagrant ssh-config` costs 1.5-2 s of Ruby start-up).
    config = provider.ssh_config(state, instance.path) or machine.ssh_config()
    instance.ssh_config.write_text(config, encoding="utf-8")


def _render_new(lab: Lab, instance: Instance, provider: Provider, engine: str) -> InstanceState:
    """Render the instance directory beside its place, then move it in whole."""
    others = [i.load() for i in all_instances()]
    settings = {
        p.name: p.settings(instance.name, live=p is provider, others=others, engine=engine)
        for p in providers.all_providers()
    }
    resources.instances_dir().mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{instance.name}-", dir=resources.instances_dir()))
    try:
        public_key = render.write_keypair(tmp, comment=f"labgen-{instance.name}")
        digest = render.render_instance(lab, instance.name, settings, public_key, tmp, engine)
        mine = settings[provider.name]
        state = InstanceState(
            instance=instance.name,
            lab=lab.name,
            lab_path=str(lab.path),
            provider=provider.name,
            render_digest=digest,
            lab_digest=lab.digest(),
            created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            host=asdict(mine) if mine is not None else {},
            engine=engine,
        )
        Instance(tmp.name).save(state)
        render.copy_tree_atomic(tmp, instance.path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return state
