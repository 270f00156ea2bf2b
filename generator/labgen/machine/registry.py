"""The machines labgen knows: find one that runs, tear one down, warn when it is stale.

Shared by the verbs that act on machines (up, run, check, ssh, guide, destroy, status).
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
import shlex
import shutil
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from labgen.core import resources
from labgen.core.errors import MachineError, UsageError
from labgen.core.lab import Lab, load_lab, load_lab_dir
from labgen.machine import providers, render, ssh
from labgen.machine.instance import Instance, InstanceState, all_instances
from labgen.machine.signals import uninterrupted
from labgen.machine.vagrant import Machine


def instance_named(name: str, what: str = "lab machine name") -> Instance:
    """The instance of machine `name` (validated; it need not exist)."""
    return Instance(resources.validate_name(name, what))


def lab_of(state: InstanceState) -> Lab:
    """The lab a machine was made from (its folder, else the lab of that name)."""
    path = Path(state.lab_path)
    return load_lab_dir(path) if path.is_dir() else load_lab(state.lab)


def running(name: str) -> tuple[Instance, InstanceState, Lab]:
    """A machine that was brought up: its instance, state and lab (else a UsageError)."""
    instance = instance_named(name)
    state = instance.load()
    if not instance.ssh_config.is_file():
        raise UsageError(
            f"machine {instance.name!r} was never brought up completely",
            hint=f"`labgen up {state.lab}` brings it up",
        )
    return instance, state, lab_of(state)


def hosts_in_use() -> list[str]:
    """This machine ("") and every registered host a machine of this home runs on:
    where leftovers are looked for (status, destroy)."""
    return sorted({"", *(i.load().on_host for i in all_instances())})


def stale_warning(state: InstanceState, lab: Lab) -> str | None:
    """A warning when the lab's files changed since the machine was made from them."""
    if state.lab_digest and state.lab_digest != lab.digest():
        return (
            f"lab {lab.name!r} changed since machine {state.instance!r} was made: its steps "
            f"are the old ones, its checks the new; `labgen destroy {state.instance}` and "
            f"`labgen up {lab.name}` to apply the change"
        )
    return None


def staleness(name: str) -> str | None:
    """stale_warning for a machine by name (None when it is current or does not exist)."""
    instance = instance_named(name)
    if not instance.exists():
        return None
    state = instance.load()
    return stale_warning(state, lab_of(state))


@contextlib.contextmanager
def locked(name: str) -> Iterator[None]:
    """Hold machine `name` for the duration: a second labgen that wants it (two `up`s of
    one lab at once, a `destroy` during an `up`) is told so at once, exit 2."""
    # Beside instances/, never removed: unlinking a lock file races with its next user.
    locks = resources.writable_dir(resources.labgen_home() / "locks")
    with open(locks / name, "a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "?"
            raise UsageError(
                f"machine {name!r} is busy: another labgen (pid {holder}) is working on it",
                hint="wait for it to finish, then try again",
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        try:
            yield
        finally:
            handle.truncate(0)


# health_script's exit statuses, apart from any a provisioning script uses.
UNHEALTHY = {
    73: "was restarted (or its dockerd was) since it was provisioned",
    74: "its dockerd does not answer",
    75: "one of its images is missing",
}


def health_script(images: Sequence[str] = ()) -> str:
    """A shell line that exits with one of UNHEALTHY's statuses when the machine is not
    as its provisioning left it: a dockerd that does not answer, a boot or a dockerd
    other than the ones it ran against (render.PROVISIONED_MARKER: a restarted container
    lost its images and containers), or one of `images` missing; else it goes on."""
    # A dead dockerd first: it also fails the marker, and is the plainer diagnosis.
    script = (
        "docker info >/dev/null 2>&1 || exit 74; "
        f'[ "$(cat {render.PROVISIONED_MARKER} 2>/dev/null)" = "$({render.PROVISIONED_NOW})" ]'
        " || exit 73"
    )
    if images:
        wanted = " ".join(shlex.quote(image) for image in images)
        script += f"; docker image inspect {wanted} >/dev/null 2>&1 || exit 75"
    return script + "\n"


def trouble(instance: Instance, images: Sequence[str] = ()) -> str | None:
    """What keeps a running machine from being used as it is (None: nothing): SSH that
    does not answer, or what health_script finds."""
    try:
        with ssh.connect(instance.ssh_config, timeout=10) as client:
            sink = io.BytesIO()
            code = ssh.run(client, health_script(images), sink, sink)
    except MachineError as exc:
        return exc.message
    if code == 0:
        return None
    return UNHEALTHY.get(code, f"its health check failed (exit {code})")


def teardown(instance: Instance) -> None:
    """Destroy the machine (if Vagrant knows one), release the host side, remove the dir.

    The host side is released whatever Vagrant says: what an interrupted or failed
    `vagrant up` made, Vagrant may not know of.
    """
    state = instance.load()
    with uninterrupted():
        try:
            if (instance.path / ".vagrant").is_dir():
                Machine(instance.path).destroy()
        finally:
            providers.get(state.provider).release(state)
            shutil.rmtree(instance.path, ignore_errors=True)


KEPT_LOGS = 10


def keep_log(instance: Instance) -> Path | None:
    """A copy of Vagrant's log of a failed machine under the labgen home's logs/; the
    newest KEPT_LOGS are kept, and an empty log is not."""
    log = instance.path / "vagrant.log"
    if not log.is_file() or log.stat().st_size == 0:
        return None
    logs = resources.writable_dir(resources.labgen_home() / "logs")
    kept = logs / f"{instance.name}-{time.strftime('%Y%m%d-%H%M%S')}.log"
    shutil.copyfile(log, kept)
    for old in sorted(logs.glob("*.log"), key=lambda p: p.stat().st_mtime)[:-KEPT_LOGS]:
        old.unlink(missing_ok=True)
    return kept
