"""`labgen status`: the lab machines that exist and Vagrant's word for their state."""

from __future__ import annotations

from ..instance import all_instances
from ..machine import Machine
from ..results import StatusRow


def status() -> list[StatusRow]:
    """Every lab machine under the labgen home, with its state."""
    rows = []
    for inst in all_instances():
        state = inst.load()
        known = (inst.path / ".vagrant").is_dir()
        rows.append(
            StatusRow(
                instance=inst.name,
                lab=state.lab,
                provider=state.provider,
                state=Machine(inst.path).state() if known else "not_created",
                steps_run=state.steps_run,
                created=state.created,
                path=str(inst.path),
            )
        )
    return rows
