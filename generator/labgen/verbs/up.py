"""`labgen up`: bring a lab's machine up, or reuse it when it already runs."""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from .. import machines, providers, render, resources
from ..context import Context
from ..errors import UsageError
from ..instance import Instance, InstanceState, all_instances
from ..lab import Lab, load_lab
from ..machine import Machine
from ..providers import Provider
from ..results import UpResult


def up(ctx: Context, lab_ref: str, name: str | None = None) -> UpResult:
    """Bring the lab's machine up (named after the lab, or `name`); reuse a running one.

    A machine that fails to come up is taken down whole: nothing half-made stays.
    """
    started = time.monotonic()
    say = ctx.say
    lab = load_lab(lab_ref, ctx.labs_path)
    instance = machines.instance_named(lab.name if name is None else name, "instance name")
    provider = providers.choose(ctx.provider, say)
    _, built = provider.ensure_box(say)

    def result(reused: bool) -> UpResult:
        seconds = round(time.monotonic() - started, 1)
        return UpResult(instance.name, lab.name, provider.name, reused, seconds, built)

    if instance.exists():
        state = instance.load()
        if state.lab != lab.name or state.provider != provider.name:
            raise UsageError(
                f"machine {instance.name!r} already exists for lab {state.lab!r} on "
                f"{state.provider}",
                hint=f"`labgen destroy {instance.name}` first, or pick another --name",
            )
        machine = Machine(instance.path)
        if machine.state() == "running":
            say(f"machine {instance.name} is already running; reusing it")
            return result(reused=True)
        say(f"starting the existing machine {instance.name}")
        machine.up(provider.name, say)
        instance.ssh_config.write_text(machine.ssh_config(), encoding="utf-8")
        return result(reused=False)

    state = _render_new(lab, instance, provider)
    say(f"rendered {instance.path}")
    try:
        provider.prepare(state, say)
        instance.save(state)
        machine = Machine(instance.path)
        say(f"vagrant up --provider={provider.name}")
        machine.up(provider.name, say)
        instance.ssh_config.write_text(machine.ssh_config(), encoding="utf-8")
    except BaseException:
        # No half-made machines: take it all down, keep the log for the user.
        kept = machines.keep_log(instance)
        say("bringing the machine up failed; removing what was created")
        machines.teardown(instance)
        if kept:
            say(f"Vagrant's log is kept in {kept}")
        raise
    return result(reused=False)


def _render_new(lab: Lab, instance: Instance, provider: Provider) -> InstanceState:
    """Render the instance directory beside its place, then move it in whole."""
    others = [i.load() for i in all_instances()]
    settings = {
        p.name: p.settings(instance.name, live=p is provider, others=others)
        for p in providers.all_providers()
    }
    resources.instances_dir().mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{instance.name}-", dir=resources.instances_dir()))
    try:
        public_key = render.write_keypair(tmp, comment=f"labgen-{instance.name}")
        digest = render.render_instance(lab, instance.name, settings, public_key, tmp)
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
        )
        Instance(tmp.name).save(state)
        render.copy_tree_atomic(tmp, instance.path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return state
