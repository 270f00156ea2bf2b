"""The warm pool: machines made ahead, per provider and Docker engine, each claimed once.

A pooled machine is made by the same path as a lab's (machine/create.py), with Docker
running and every offline image loaded, and no lab. Claiming it for a lab is that lab's
own provision.sh, run over SSH instead of through Vagrant (whose Ruby start-up is most of
an `up`), after the lab's files are rendered into the pooled machine's instance
directory, which is renamed to the lab machine's name. Its container and network keep
the pooled name (Docker's labels cannot change): `InstanceState.made_as` says which.

Pooled machines live among the instances (so status, destroy --all and the leak check
see them), named with PREFIX. A machine restarted since it was provisioned, or whose
dockerd died, is never handed out: registry.trouble compares render.PROVISIONED_MARKER
first, and such a machine is destroyed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import os
import secrets
import shutil
import tempfile
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

from labgen.core.context import Say
from labgen.core.errors import LabgenError, MachineError, UsageError
from labgen.core.lab import Lab
from labgen.core.results import Pooled
from labgen.machine import create, providers, recipe, registry, render, ssh
from labgen.machine.instance import Instance, InstanceState, all_instances, host_name
from labgen.machine.providers import Provider

PREFIX = "pool-"
# What claiming copies from a freshly rendered lab instance into the pooled machine's
# directory; its keys, Vagrant's state and log stay.
RENDERED = ("Vagrantfile", "provision.sh", "lab.tar", "lab")
MACHINE_LAB_TAR = "/tmp/labgen-lab.tar"


def new_name(engine: str) -> str:
    """A pooled machine's name: the pool's prefix, the engine and a random tag.

    >>> new_name("28.5").startswith("pool-28-5-")
    True
    """
    return f"{PREFIX}{recipe.engine_slug(engine)}-{secrets.token_hex(3)}"


def members(
    engine: str | None = None, provider: str | None = None, host: str | None = None
) -> list[Instance]:
    """The pooled machines of this labgen home (of `engine`, `provider` and `host`, as
    a state keeps it: "" this machine), oldest first: a pool per host and engine."""
    found = []
    for instance in all_instances():
        if not instance.name.startswith(PREFIX):
            continue
        state = instance.load()
        if not state.pooled:
            continue
        if engine not in (None, state.engine) or provider not in (None, state.provider):
            continue
        if host not in (None, state.on_host):
            continue
        found.append((state.created, instance))
    return [instance for _, instance in sorted(found, key=lambda pair: pair[0])]


def make(provider: Provider, engine: str, say: Say, host: str | None = None) -> str:
    """Make one pooled machine of Docker `engine` on `host` (Context.host); its name."""
    if not provider.pools:
        raise UsageError(
            f"the {provider.name} provider keeps no warm pool (its machines depend on the "
            "lab from their first boot)",
            hint="use the docker provider for a pool",
        )
    return make_named(provider, engine, new_name(engine), say, host)


def make_named(
    provider: Provider, engine: str, name: str, say: Say, host: str | None = None
) -> str:
    """Make pooled machine `name` (from new_name) of Docker `engine` on `host`; its name."""
    provider.ensure_box(say, engine=engine)
    instance = Instance(name)

    def render_files(target: Path, settings: Mapping[str, object]) -> InstanceState:
        public_key = render.write_keypair(target, comment=f"labgen-{instance.name}")
        digest = render.render_pooled(instance.name, settings, public_key, target, engine)
        return InstanceState(
            instance=instance.name,
            lab="",
            lab_path="",
            provider=provider.name,
            render_digest=digest,
            created=_now(),
            host=create.host_settings(settings.get(provider.name)),
            engine=engine,
            pooled=True,
        )

    with registry.locked(instance.name):
        create.create(instance, provider, engine, render_files, say, host)
    return instance.name


def claim(
    lab: Lab,
    instance: Instance,
    provider: Provider,
    engine: str,
    say: Say,
    host: str | None = None,
) -> bool:
    """Make `instance` (whose lock the caller holds) from a pooled machine of `engine`
    on `host` (Context.host): True when one was claimed, False when that host's pool
    has none ready.

    The claim itself is one rename of the pooled machine's directory: from then on the
    machine is the lab's, and any failure destroys it (it never goes back to the pool).
    Its health is checked in the same SSH call that provisions it for the lab.
    """
    if not provider.pools:
        return False
    for candidate in members(engine, provider.name, host_name(host)):
        try:
            with registry.locked(candidate.name):
                if not candidate.exists():  # claimed by another labgen meanwhile
                    continue
                pooled = candidate.load()
                os.rename(candidate.path, instance.path)
        except UsageError:  # busy: another labgen is claiming or destroying it
            continue
        try:
            trouble = _make_lab_machine(lab, instance, pooled, provider, engine, say)
        except BaseException:
            say("claiming the pooled machine failed; destroying it")
            registry.teardown(instance)
            raise
        if trouble is None:
            say(f"claimed pooled machine {candidate.name} (Docker {engine})")
            return True
        say(f"pooled machine {candidate.name} {trouble}: destroying it")
        registry.teardown(instance)
    return False


def status() -> list[Pooled]:
    """Every pooled machine, with what (if anything) keeps it from being claimed."""
    rows = []
    for instance in members():
        state = instance.load()
        trouble = registry.trouble(instance, _all_images())
        rows.append(Pooled(instance.name, state.provider, state.engine, state.created, trouble))
    return rows


def drain(say: Say) -> list[str]:
    """Destroy every pooled machine; their names."""
    gone = []
    for instance in members():
        with registry.locked(instance.name):
            if instance.exists():
                say(f"destroying pooled machine {instance.name}")
                registry.teardown(instance)
                gone.append(instance.name)
    return gone


class Ahead:
    """Pooled machines made in a thread for work about to start (verify's runs), so
    that a run claims one instead of waiting for Vagrant. At most `ready` of them wait
    unclaimed at a time; `stop` destroys those still unclaimed: only its own, never a
    pool the user filled.

    One engine per machine to make, in the order they will be asked for. Use it as a
    context manager: leaving it (Ctrl-C included) stops it and cleans up.
    """

    POLL = 0.5  # seconds between looks at how many of its machines are still unclaimed

    def __init__(self, provider: Provider, engines: Sequence[str], ready: int, say: Say):
        self.provider, self.engines, self.ready, self.say = provider, list(engines), ready, say
        self.made: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._fill, name="pool-ahead", daemon=True)

    def __enter__(self) -> Ahead:
        if self.provider.pools and self.engines:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def unclaimed(self) -> list[Instance]:
        """Its machines still in the pool (a claimed one was renamed away)."""
        found = []
        for instance in map(Instance, self.made):
            with contextlib.suppress(UsageError):  # claimed between the look and the load
                if instance.exists() and instance.load().pooled:
                    found.append(instance)
        return found

    def _fill(self) -> None:
        for engine in self.engines:
            while len(self.unclaimed()) >= self.ready:
                if self._stop.wait(self.POLL):
                    return
            if self._stop.is_set():
                return
            name = new_name(engine)
            self.made.append(name)
            try:
                make_named(self.provider, engine, name, lambda line: None)
            except LabgenError as exc:  # the runs make their own machines, as without it
                self.say(f"making a pooled machine ahead failed ({exc.message}); stopping")
                return
            self.say(f"{name} (Docker {engine}) is ready for a run to come")

    def stop(self) -> None:
        """Make no more; wait for the one being made; destroy its unclaimed machines."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        for instance in self.unclaimed():
            with registry.locked(instance.name):
                if instance.exists():
                    registry.teardown(instance)


def _make_lab_machine(
    lab: Lab, instance: Instance, pooled: InstanceState, provider: Provider, engine: str, say: Say
) -> str | None:
    """The lab's files rendered into the claimed directory, and its provision.sh run
    after the pooled machine's health check; what was wrong with it (None: nothing)."""
    settings = {
        p.name: p.settings(instance.name, live=False, others=(), engine=engine)
        for p in providers.all_providers()
    }
    settings[provider.name] = provider.settings_from(pooled)
    public_key = (instance.path / "keys" / f"{render.KEY_NAME}.pub").read_text().strip()
    scratch = Path(tempfile.mkdtemp(prefix=f".{instance.name}-", dir=instance.path.parent))
    try:
        digest = render.render_instance(
            lab, instance.name, settings, public_key, scratch, engine, made_as=pooled.made_as_name
        )
        for name in RENDERED:
            target = instance.path / name
            if target.is_dir():
                shutil.rmtree(target)
            os.replace(scratch / name, target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    state = InstanceState(
        instance=instance.name,
        lab=lab.name,
        lab_path=str(lab.path),
        provider=provider.name,
        render_digest=digest,
        created=_now(),
        host=pooled.host,
        engine=engine,
        lab_digest=lab.digest(),
        made_as=pooled.made_as_name,
        on_host=pooled.on_host,
    )
    instance.save(state)
    create.write_ssh_config(instance, state, provider)
    return _provision_over_ssh(instance, say)


def _provision_over_ssh(instance: Instance, say: Say) -> str | None:
    """What Vagrant's two provisioners do (lab.tar uploaded, provision.sh run as root),
    over one SSH connection, after the health check; what was wrong (None: nothing)."""
    with contextlib.ExitStack() as stack:
        try:
            client = stack.enter_context(ssh.connect(instance.ssh_config, timeout=10))
        except MachineError as exc:  # a pooled machine that does not answer
            return exc.message
        sftp = client.open_sftp()
        try:
            sftp.put(str(instance.path / "lab.tar"), MACHINE_LAB_TAR)
        finally:
            sftp.close()
        out = io.BytesIO()
        provision = (instance.path / "provision.sh").read_text(encoding="utf-8")
        code = ssh.run_script(client, registry.health_script(_all_images()) + provision, out, out)
    if code in registry.UNHEALTHY:
        return registry.UNHEALTHY[code]
    for line in out.getvalue().decode(errors="replace").splitlines():
        say(line)
    if code != 0:
        raise MachineError(
            f"provisioning the claimed machine {instance.name} failed (exit {code})",
            hint="`labgen up` again makes a fresh machine (or claims another pooled one)",
        )
    return None


def _all_images() -> list[str]:
    return sorted(recipe.recipe_spec().images)


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
