"""The machines labgen knows: find one that runs, tear one down, warn when it is stale.

Shared by the verbs that act on machines (up, run, check, ssh, guide, destroy, status).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from . import providers, resources
from .errors import UsageError
from .instance import Instance, InstanceState
from .lab import Lab, load_lab, load_lab_dir
from .machine import Machine


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


def teardown(instance: Instance) -> None:
    """Destroy the machine (if Vagrant knows one), release the host side, remove the dir."""
    state = instance.load()
    if (instance.path / ".vagrant").is_dir():
        Machine(instance.path).destroy()
    providers.get(state.provider).release(state)
    shutil.rmtree(instance.path, ignore_errors=True)


def keep_log(instance: Instance) -> Path | None:
    """A copy of Vagrant's log of a failed machine, under the labgen home's logs/."""
    log = instance.path / "vagrant.log"
    if not log.is_file():
        return None
    logs = resources.labgen_home() / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    kept = logs / f"{instance.name}-{time.strftime('%Y%m%d-%H%M%S')}.log"
    shutil.copyfile(log, kept)
    return kept
