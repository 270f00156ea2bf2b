"""`labgen draw`: a picture of the machine's namespaces, veth pairs, bridges and listeners."""

from __future__ import annotations

import io
import time
from pathlib import Path

from labgen.core.errors import MachineError, PrerequisiteError, UsageError
from labgen.machine import registry, ssh
from labgen.machine.steps import Session, furthest_done, run_step
from labgen.network import drawing, wiring
from labgen.network.wiring import Wiring

FORMATS = ("svg", "png")


def draw(machine: str, output: Path | None = None, step: str | None = None) -> wiring.Picture:
    """Draw `machine`'s network now, or after `step`: the lab's steps up to it that have
    not run yet run first (a machine already past it is refused: steps do not undo).

    The format follows `output`'s suffix (.svg, default; .png); without `output` the
    picture is MACHINE.svg (MACHINE-STEP.svg with a step) in the current directory.
    """
    instance, state, lab = registry.running(machine)
    target = lab.step(step) if step is not None else None
    name = f"{machine}-{step}.svg" if step else f"{machine}.svg"
    output = output or Path(name)
    fmt = output.suffix.lstrip(".").lower() or "svg"
    if fmt not in FORMATS:
        raise UsageError(f"cannot draw {output}: the picture is .svg or .png")
    began = time.monotonic()
    ran: list[str] = []
    with ssh.connect(instance.ssh_config) as client:
        if target is not None:
            ran = _run_up_to(Session(instance, state, lab, client), target.id)
        out, err = io.BytesIO(), io.BytesIO()
        code = ssh.run(client, wiring.GATHER_COMMAND, out, err)
    if code != 0:
        raise MachineError(
            f"reading the namespaces of {machine!r} failed (exit {code}): "
            f"{err.getvalue().decode(errors='replace').strip()}"
        )
    try:
        found = wiring.parse(out.getvalue().decode(errors="replace"))
    except wiring.WiringError as exc:
        raise MachineError(f"the namespaces of {machine!r} could not be read: {exc}") from None
    title = f"{lab.name} on machine {machine}" + (f", after step {step}" if step else "")
    try:
        data = render(found, fmt, title)
    except Exception as exc:  # graphviz.ExecutableNotFound, without importing graphviz here
        if type(exc).__name__ == "ExecutableNotFound":
            raise PrerequisiteError(
                "drawing needs Graphviz's `dot`", hint="apt-get install graphviz"
            ) from None
        raise
    output.write_bytes(data)
    return wiring.Picture(
        machine,
        str(output),
        fmt,
        len(data),
        round(time.monotonic() - began, 2),
        step,
        tuple(ran),
        found,
    )


def _run_up_to(session: Session, step_id: str) -> list[str]:
    """Run the lab's steps that lead to `step_id` and have not run; their ids."""
    ids = [s.id for s in session.lab.steps]
    last = furthest_done(session.lab, session.state)
    if last is not None and ids.index(last.id) > ids.index(step_id):
        raise UsageError(
            f"machine {session.instance.name!r} is past step {step_id!r} (at {last.id!r}); "
            "steps do not undo",
            hint=f"`labgen draw {session.instance.name}` draws it now",
        )
    ran = []
    start = ids.index(last.id) + 1 if last is not None else 0
    for step in session.lab.steps[start : ids.index(step_id) + 1]:
        outcome = run_step(session, step, capture=True)
        if not outcome.ok:
            raise MachineError(
                f"step {step.id!r} failed (exit {outcome.exit_code}) on the way to {step_id!r}",
                hint=outcome.output[-500:].strip() or None,
            )
        ran.append(step.id)
    return ran


def render(wiring: Wiring, fmt: str = "svg", title: str = "") -> bytes:
    """The picture as SVG or PNG bytes (Graphviz's `dot` lays it out).

    Raises FileNotFoundError-like `graphviz.ExecutableNotFound` when `dot` is missing.
    """
    graph = drawing.to_dot(wiring, title)
    data: bytes = graph.pipe(format=fmt, engine="dot")
    return data
