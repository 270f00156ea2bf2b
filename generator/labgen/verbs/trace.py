"""`labgen trace`: run a command on the machine and show which rules its packets met.

The machine side is one shell script (labgen.inmachine.trace_run.script) whose output
labgen.inmachine.trace_run.read_run reads; labgen.inmachine.trace holds the logic on the dumps.
"""

from __future__ import annotations

import io
import shlex

from labgen.core.errors import MachineError, PrerequisiteError, UsageError
from labgen.inmachine import kernel_run
from labgen.inmachine.kernel import KernelWalk
from labgen.inmachine.trace import TraceError, TraceResult

# The script and its reader live in labgen.inmachine.trace_run, which the lab machine gets too
# (`labgen-lab trace`); named here as well, where the verb's callers look for them.
from labgen.inmachine.trace_run import (
    IDLE_SECONDS,
    TRACE_OFF,
    parse_monitor,
    read_run,
    script,
    split_run,
)
from labgen.machine import registry, ssh

__all__ = [
    "IDLE_SECONDS",
    "TRACE_OFF",
    "parse_monitor",
    "read_run",
    "script",
    "split_run",
    "trace_command",
    "trace_kernel",
]


def trace_command(
    machine: str, command: str, *, packets: bool = False, idle: float = IDLE_SECONDS
) -> TraceResult:
    """Run `command` (a shell command line) on `machine` as the lab user, with the rule
    counters read before and after it (never zeroed), and with `packets` each packet's
    walk from xtables-monitor. The TRACE rules `packets` adds are gone afterwards, even
    when the command or the connection fails."""
    if not command.strip():
        raise UsageError("which command? `labgen trace MACHINE -- CMD`")
    instance, _, _ = registry.running(machine)
    with ssh.connect(instance.ssh_config) as client:
        out, err = io.BytesIO(), io.BytesIO()
        try:
            code = ssh.run(client, script(command, idle, packets), out, err)
        finally:
            if packets:
                # The script's trap removes them too; this covers a script cut short
                # (a dropped connection, Ctrl-C here) before its trap could run.
                ssh.run(
                    client,
                    "sudo -n sh -c " + shlex.quote(TRACE_OFF),
                    io.BytesIO(),
                    io.BytesIO(),
                )
    if code != 0:
        raise MachineError(
            f"tracing on {machine!r} failed (exit {code}): "
            f"{err.getvalue().decode(errors='replace').strip()}",
            hint="the trace needs root through `sudo -n` and iptables-save on the machine",
        )
    try:
        return read_run(out.getvalue().decode(errors="replace"), machine, command, idle, packets)
    except TraceError as exc:
        raise MachineError(f"the trace's output on {machine!r} is unreadable: {exc}") from None


def trace_kernel(machine: str, command: str) -> KernelWalk:
    """Run `command` on `machine` as the lab user with bpftrace watching the kernel's
    packet tracepoints, and return the walk of the connections it opened, with the
    command's outcome and bpftrace's raw output. PrerequisiteError (exit 2) when the
    machine lacks BTF, bpftrace, a mountable tracefs, or bpftrace fails to attach."""
    if not command.strip():
        raise UsageError("which command? `labgen trace MACHINE --kernel -- CMD`")
    instance, _, _ = registry.running(machine)
    with ssh.connect(instance.ssh_config) as client:
        out, err = io.BytesIO(), io.BytesIO()
        code = ssh.run(client, kernel_run.script(command), out, err)
    message = err.getvalue().decode(errors="replace").strip()
    if code == kernel_run.MISSING:
        raise PrerequisiteError(
            f"trace --kernel cannot run on {machine!r}: {message}",
            hint="without --kernel, `labgen trace` reads iptables' counters instead",
        )
    if code != 0:
        raise MachineError(f"the kernel trace on {machine!r} failed (exit {code}): {message}")
    try:
        return kernel_run.read_run(out.getvalue().decode(errors="replace"), machine, command)
    except ValueError as exc:
        raise MachineError(
            f"the kernel trace's output on {machine!r} is unreadable: {exc}"
        ) from None
