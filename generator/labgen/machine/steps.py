"""The one step runner: `labgen run`, `verify` and `guide` all run steps through here.

A step runs as `labgen-lab run STEP` on the machine (its robot form), optionally
with the network state snapshotted around it, and a step that succeeds is recorded
in the instance state, the one record of progress that `status`, `check` and the
guide read.
"""

from __future__ import annotations

import io
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

import paramiko

from labgen.core.lab import Lab, Step
from labgen.core.results import StepOutcome
from labgen.machine import ssh
from labgen.machine.instance import Instance, InstanceState
from labgen.network import snapshot
from labgen.network.diff import Diff, diff


@dataclass
class Session:
    """A machine open for running steps: one SSH connection for all of them."""

    instance: Instance
    state: InstanceState
    lab: Lab
    client: paramiko.SSHClient


def run_step(
    session: Session,
    step: Step,
    *,
    capture: bool = False,
    on_diff: Callable[[Diff], None] | None = None,
    stdout: BinaryIO | None = None,
) -> StepOutcome:
    """Run `step` on the machine; record it when it succeeds.

    `capture` keeps its output (the last 64 KiB) in the outcome instead of showing
    it; `on_diff` gets what the step changed in the network state.
    """
    began = time.monotonic()
    before = snapshot.take_snapshot(session.client) if on_diff else None
    # Captured, stdout and stderr are kept apart and joined in that order: interleaved,
    # a progress meter on stderr (curl's) lands inside stdout's lines differently each run.
    sink, errors = (io.BytesIO(), io.BytesIO()) if capture else (None, None)
    command = f"labgen-lab run {shlex.quote(step.id)}"
    code = ssh.run(session.client, command, sink or stdout, errors or sink or stdout)
    if on_diff is not None and before is not None:
        on_diff(diff(before, snapshot.take_snapshot(session.client)))
    if code == 0:
        record_done(session, step)
    both = sink.getvalue() + errors.getvalue() if sink and errors else b""
    output = both[-65536:].decode(errors="replace")
    return StepOutcome(step.id, code, round(time.monotonic() - began, 1), output)


def record_done(session: Session, step: Step) -> None:
    """Record that `step` is done on the machine (ran, or checked done in the guide)."""
    if step.id not in session.state.steps_run:
        session.state.steps_run.append(step.id)
        session.instance.save(session.state)


def furthest_done(lab: Lab, state: InstanceState) -> Step | None:
    """The latest step of the lab that is recorded as done, if any.

    >>> from types import SimpleNamespace as NS
    >>> lab = NS(steps=[NS(id="a"), NS(id="b"), NS(id="c")])
    >>> furthest_done(lab, NS(steps_run=["b", "a"])).id
    'b'
    """
    done = [s for s in lab.steps if s.id in state.steps_run]
    return done[-1] if done else None
