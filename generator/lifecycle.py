"""The verbs that act on lab machines: up, run, check, ssh, destroy, status.

Each reads like the procedure it performs and returns data; cli.py prints it.
Data flows one way: lab file -> Lab -> rendered instance dir -> machine -> results.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import shlex
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from . import box, doctor, hostdocker, render, resources, snapshot, ssh
from .checks import CheckRun, run_checks
from .errors import UsageError
from .instance import Instance, InstanceState, all_instances
from .lab import Lab, load_lab, load_lab_dir
from .machine import Machine, vagrant_env
from .providers import Provider

Say = Callable[[str], None]


@dataclass(frozen=True)
class UpResult:
    instance: str
    lab: str
    provider: str
    reused: bool
    seconds: float
    box_built: bool


def _docker_base_image(say: Say, force: bool) -> tuple[str, bool]:
    return box.ensure_base_image(say, force=force)


def _libvirt_box(say: Say, force: bool) -> tuple[str, bool]:
    from . import vmbox

    existed = any(b.current for b in vmbox.list_libvirt_boxes())
    name = vmbox.build_libvirt_box(say, force=force)
    driver, why = vmbox.libvirt_driver()
    if driver == "qemu":
        say(f"libvirt runs this VM under software emulation (driver qemu): {why}")
    return name, force or not existed


# What a provider needs built on the host, from box.yaml, before its first machine
# (built on first use): returns the box's name and whether it was built now.
BOX_BUILDERS: dict[str, Callable[[Say, bool], tuple[str, bool]]] = {
    "docker": _docker_base_image,
    "libvirt": _libvirt_box,
}


def prepare_provider(provider_name: str | None, say: Say) -> tuple[Provider, bool]:
    """Choose and probe the provider, and build its box unless it is there.

    Returns the provider and whether its box was built now.
    """
    provider, why = doctor.ready_provider(provider_name)
    say(f"provider {provider.name}: {why}")
    builder = BOX_BUILDERS.get(provider.name)
    return provider, builder(say, False)[1] if builder else False


def up(lab_ref: str, provider_name: str | None, name: str | None, say: Say) -> UpResult:
    """Bring the lab's machine up, or reuse it when it already runs."""
    started = time.monotonic()
    lab = load_lab(lab_ref)
    instance = Instance(
        resources.validate_name(lab.name if name is None else name, "instance name")
    )
    provider, built = prepare_provider(provider_name, say)

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
            return UpResult(instance.name, lab.name, provider.name, True, _since(started), built)
        say(f"starting the existing machine {instance.name}")
        machine.up(provider.name, say)
        _save_ssh_config(instance, machine)
        return UpResult(instance.name, lab.name, provider.name, False, _since(started), built)

    _render_new(lab, instance, provider, say)
    machine = Machine(instance.path)
    try:
        say(f"vagrant up --provider={provider.name}")
        machine.up(provider.name, say)
        _save_ssh_config(instance, machine)
    except BaseException:
        # No half-made machines: take it all down, keep the log for the user.
        kept = _keep_log(instance)
        say("bringing the machine up failed; removing what was created")
        _teardown(instance)
        if kept:
            say(f"Vagrant's log is kept in {kept}")
        raise
    return UpResult(instance.name, lab.name, provider.name, False, _since(started), built)


def _render_new(lab: Lab, instance: Instance, provider: Provider, say: Say) -> None:
    others = [i.load() for i in all_instances()]
    own_network = provider.docker_network
    docker = render.docker_settings(
        instance.name,
        probe=own_network,
        taken_subnets=[s.subnet for s in others if s.subnet],
        taken_ports=[s.ssh_port for s in others if s.ssh_port],
    )
    resources.instances_dir().mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{instance.name}-", dir=resources.instances_dir()))
    try:
        public_key = render.write_keypair(tmp, comment=f"labgen-{instance.name}")
        digest = render.render_instance(lab, instance.name, docker, public_key, tmp)
        Instance(tmp.name).save(
            InstanceState(
                instance=instance.name,
                lab=lab.name,
                lab_path=str(lab.path),
                provider=provider.name,
                render_digest=digest,
                lab_digest=lab.digest(),
                created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                container=docker.container if own_network else "",
                network=docker.network if own_network else "",
                subnet=docker.subnet if own_network else "",
                ssh_port=docker.ssh_port if own_network else 0,
            )
        )
        render.copy_tree_atomic(tmp, instance.path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if own_network:
            hostdocker.remove_network(docker.network)
        raise
    say(f"rendered {instance.path}")


def _save_ssh_config(instance: Instance, machine: Machine) -> None:
    instance.ssh_config.write_text(machine.ssh_config(), encoding="utf-8")


def _keep_log(instance: Instance) -> Path | None:
    log = instance.path / "vagrant.log"
    if not log.is_file():
        return None
    logs = resources.labgen_home() / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    kept = logs / f"{instance.name}-{time.strftime('%Y%m%d-%H%M%S')}.log"
    shutil.copyfile(log, kept)
    return kept


def _teardown(instance: Instance) -> None:
    """Destroy the machine (if Vagrant knows one) and remove the instance directory."""
    state = instance.load()
    if (instance.path / ".vagrant").is_dir():
        Machine(instance.path).destroy()
    if state.network:
        # Vagrant's after-destroy trigger removes it; this covers an up that failed
        # before Vagrant ever ran.
        hostdocker.remove_network(state.network)
    shutil.rmtree(instance.path, ignore_errors=True)


def destroy(names: Sequence[str], every: bool, say: Say) -> list[str]:
    """Destroy the named machines (or all) and remove their instance directories."""
    if every:
        targets = all_instances()
    else:
        targets = [Instance(resources.validate_name(n, "instance name")) for n in names]
        for target in targets:
            target.load()  # an unknown name is a usage error before anything is destroyed
    if not targets:
        say("no lab machines to destroy")
    done = []
    for target in targets:
        say(f"destroying {target.name}")
        _teardown(target)
        done.append(target.name)
    return done


@dataclass(frozen=True)
class StatusRow:
    instance: str
    lab: str
    provider: str
    state: str
    steps_run: list[str]
    created: str
    path: str


def status() -> list[StatusRow]:
    """Every lab machine labgen knows of, with Vagrant's word for its state."""
    rows = []
    for inst in all_instances():
        state = inst.load()
        machine_state = (
            Machine(inst.path).state() if (inst.path / ".vagrant").is_dir() else "not_created"
        )
        rows.append(
            StatusRow(
                instance=inst.name,
                lab=state.lab,
                provider=state.provider,
                state=machine_state,
                steps_run=state.steps_run,
                created=state.created,
                path=str(inst.path),
            )
        )
    return rows


def _lab_of(state: InstanceState) -> Lab:
    path = Path(state.lab_path)
    return load_lab_dir(path) if path.is_dir() else load_lab(state.lab)


def stale_warning(state: InstanceState, lab: Lab) -> str | None:
    """A warning when the lab's files changed since the machine was made from them."""
    if state.lab_digest and state.lab_digest != lab.digest():
        return (
            f"lab {lab.name!r} changed since machine {state.instance!r} was made: its steps "
            f"are the old ones, its checks the new; `labgen destroy {state.instance}` and "
            f"`labgen up {lab.name}` to apply the change"
        )
    return None


def staleness(instance_name: str) -> str | None:
    """stale_warning for a machine by name (None when it is current or does not exist)."""
    instance = Instance(resources.validate_name(instance_name, "lab machine name"))
    if not instance.exists():
        return None
    state = instance.load()
    return stale_warning(state, _lab_of(state))


def running(instance_name: str) -> tuple[Instance, InstanceState, Lab]:
    """A machine that was brought up: its instance, state and lab (else a UsageError)."""
    instance = Instance(resources.validate_name(instance_name, "lab machine name"))
    state = instance.load()
    if not instance.ssh_config.is_file():
        raise UsageError(
            f"machine {instance.name!r} was never brought up completely",
            hint=f"`labgen up {state.lab}` brings it up",
        )
    return instance, state, _lab_of(state)


@dataclass(frozen=True)
class StepOutcome:
    step: str
    exit_code: int
    seconds: float


def run_steps(
    instance_name: str,
    step_ids: Sequence[str],
    every: bool,
    announce: Callable[[int, int, object], None],
    on_diff: Callable[[snapshot.Diff], None] | None = None,
) -> list[StepOutcome]:
    """Run steps' robot commands on the machine in order; stop at the first failure.

    With `on_diff`, the machine's network state is snapshotted around each step and
    what changed is handed over.
    """
    instance, state, lab = running(instance_name)
    if every and step_ids:
        raise UsageError("give step names or --all, not both")
    if not every and not step_ids:
        raise UsageError(
            "which steps? name them, or pass --all",
            hint=f"lab {lab.name!r} has: {', '.join(s.id for s in lab.steps)}",
        )
    steps = lab.steps if every else [lab.step(s) for s in step_ids]
    outcomes = []
    with ssh.connect(instance.ssh_config) as client:
        for step in steps:
            announce(lab.step_index(step.id) + 1, len(lab.steps), step)
            began = time.monotonic()
            before = snapshot.take_snapshot(client) if on_diff else None
            code = ssh.run(client, f"labgen-lab run {shlex.quote(step.id)}")
            if on_diff and before is not None:
                on_diff(snapshot.diff(before, snapshot.take_snapshot(client)))
            outcomes.append(StepOutcome(step.id, code, _since(began)))
            if code != 0:
                break
            state.steps_run.append(step.id)
            instance.save(state)
    return outcomes


def check(instance_name: str, step: str | None, only: bool) -> tuple[CheckRun, Lab]:
    """Run the checks that must hold now: after `step`, or after the furthest step run."""
    instance, state, lab = running(instance_name)
    if step is None and state.steps_run:
        step = max(state.steps_run, key=lab.step_index)
    return run_checks(lab, instance.ssh_config, target=step, only=only), lab


def ssh_into(instance_name: str, command: Sequence[str]) -> int:
    """A shell on the machine, or one command; returns its exit status."""
    instance, _, _ = running(instance_name)
    if command:
        with ssh.connect(instance.ssh_config) as client:
            return ssh.run(client, shlex.join(command))
    if shutil.which("ssh"):
        return subprocess.call(["ssh", "-F", str(instance.ssh_config), ssh.HOST_ALIAS])
    return subprocess.call(["vagrant", "ssh"], cwd=instance.path, env=vagrant_env())


def _since(started: float) -> float:
    return round(time.monotonic() - started, 1)


def ensure_box(provider: str, force: bool, say: Say) -> str:
    """`labgen box build`: the provider's box (the docker base image, the libvirt box)."""
    if provider not in BOX_BUILDERS:
        raise UsageError(
            f"labgen builds no box for {provider!r}; it builds: {', '.join(BOX_BUILDERS)}",
            hint="the virtualbox provider uses a public box",
        )
    return BOX_BUILDERS[provider](say, force)[0]


@dataclass(frozen=True)
class Bundle:
    path: Path
    lab: str
    with_images: bool


def render_bundle(lab_ref: str, out: Path, with_images: bool, say: Say) -> Bundle:
    """A standalone folder an attendee brings up with plain `vagrant up`."""
    from . import docs

    lab = load_lab(lab_ref)
    if out.exists() and any(out.iterdir()):
        raise UsageError(f"{out} is not empty; choose a new folder for the bundle")
    probe = hostdocker.daemon_ready() is None and box.image_present()
    docker = render.docker_settings(f"{lab.name}-bundle", probe=False)
    if probe:
        docker = dataclasses.replace(docker, privileged=hostdocker.privileged_works(docker.image))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        public_key = render.write_keypair(tmp, comment=f"labgen-bundle-{lab.name}")
        render.render_instance(lab, f"{lab.name}-bundle", docker, public_key, tmp)
        if with_images:
            tag, _ = box.ensure_base_image(say)
            say(f"saving {tag} into images/labgen-base.tar")
            (tmp / "images").mkdir()
            box.save_image(tag, tmp / "images" / "labgen-base.tar")
        readme = (
            render.jinja_env()
            .get_template("bundle/README.md.j2")
            .render(
                lab=lab,
                lab_page=docs.render_lab_page(lab),
                image=docker.image,
                has_images=with_images,
                privileged=docker.privileged,
            )
        )
        (tmp / "README.md").write_text(readme, encoding="utf-8")
        if out.exists():
            out.rmdir()
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Bundle(out, lab.name, with_images)
