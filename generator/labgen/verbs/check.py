"""`labgen check`: is the machine in the state the steps run so far should leave it in?"""

from __future__ import annotations

from .. import machines
from ..checks import run_checks
from ..lab import Lab
from ..results import CheckRun
from ..steps import furthest_done


def check(machine: str, step: str | None = None, only: bool = False) -> tuple[CheckRun, Lab]:
    """Run the checks that must hold after `step`, else after the furthest step done
    (else the lab's last step: it tells what is not there yet)."""
    instance, state, lab = machines.running(machine)
    if step is None:
        done = furthest_done(lab, state)
        step = done.id if done else None
    return run_checks(lab, instance.ssh_config, target=step, only=only), lab
