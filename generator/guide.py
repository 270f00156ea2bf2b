"""`labgen guide`: walk a lab step by step in the terminal, with what each step changed.

For each step: its explanation and documented command; labgen runs it (or the
learner runs it in `labgen ssh` and comes back); the output; what changed in the
kernel's network state; and the step's checks as "done / not yet" with the
failing check's message as the hint. Progress is kept in the instance state, so
a guide that is quit resumes where it stopped.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass

import paramiko
from rich.markdown import Markdown
from rich.markup import escape
from rich.panel import Panel
from rich.rule import Rule

from . import snapshot, ssh
from .checks import CheckRun, run_checks
from .instance import Instance, InstanceState
from .lab import Lab, Step
from .ui import out

Ask = Callable[[str], str]


@dataclass
class GuideResult:
    lab: str
    completed: int
    total: int
    failed_step: str | None = None
    quit: bool = False


def guide(
    instance: Instance, state: InstanceState, lab: Lab, *, auto: bool, restart: bool, ask: Ask
) -> GuideResult:
    """Walk the lab from where the learner left it (or from the start with `restart`)."""
    total = len(lab.steps)
    index = 0 if restart else min(state.guide_step, total)
    if index == total:
        out.print(f"You finished lab {lab.name} already; `--restart` walks it again.")
        return GuideResult(lab.name, total, total)
    if index and not auto:
        out.print(f"[dim]Resuming lab {escape(lab.name)} at step {index + 1} of {total}.[/]")
    with ssh.connect(instance.ssh_config) as client:
        while index < total:
            step = lab.steps[index]
            _show_step(lab, index, step)
            choice = "" if auto else _ask_before(ask)
            if choice == "q":
                return GuideResult(lab.name, index, total, quit=True)
            if choice == "b":
                index = max(0, index - 1)
                continue
            if choice == "s":
                index += 1
                _save(instance, state, index)
                continue
            if choice != "c":
                ok = _run_step(client, instance, lab, step)
                if not ok:
                    out.print("[red]The step's command failed.[/]")
                    if auto:
                        return GuideResult(lab.name, index, total, failed_step=step.id)
            verdict = _checks(lab, instance, step)
            if auto:
                if verdict is not None and not verdict.ok:
                    return GuideResult(lab.name, index, total, failed_step=step.id)
                index += 1
                _save(instance, state, index)
                continue
            after = _ask_after(ask, verdict)
            if after == "q":
                return GuideResult(lab.name, index, total, quit=True)
            if after == "r":
                continue
            if after == "b":
                index = max(0, index - 1)
                continue
            index += 1
            _save(instance, state, index)
    out.print(Rule())
    out.print(f"[green]Lab {escape(lab.name)} done: {total} of {total} steps.[/]")
    return GuideResult(lab.name, total, total)


def _save(instance: Instance, state: InstanceState, index: int) -> None:
    state.guide_step = index
    instance.save(state)


def _show_step(lab: Lab, index: int, step: Step) -> None:
    out.print(Rule(f"Step {index + 1} of {len(lab.steps)}: {step.id}"))
    out.print(f"[bold]{escape(step.title)}[/]\n")
    out.print(Markdown(step.explain), soft_wrap=False)  # wrapped to the terminal
    commands = "\n".join(f"$ {line}" for line in step.command.strip().splitlines())
    out.print(Panel(escape(commands), title="the command", title_align="left", expand=False))


def _ask_before(ask: Ask) -> str:
    prompt = (
        "[Enter] run it   [c] I ran it myself (in `labgen ssh`), check   [s] skip   "
        "[b] back   [q] quit"
    )
    while True:
        answer = ask(prompt).strip().lower()[:1]
        if answer in ("", "c", "s", "b", "q"):
            return answer


def _ask_after(ask: Ask, verdict: CheckRun | None) -> str:
    retry = "   [r] retry" if verdict is not None and not verdict.ok else ""
    prompt = f"[Enter] next step{retry}   [b] back   [q] quit"
    while True:
        answer = ask(prompt).strip().lower()[:1]
        if answer in ("", "b", "q") or (retry and answer == "r"):
            return answer


def _run_step(client: paramiko.SSHClient, instance: Instance, lab: Lab, step: Step) -> bool:
    before = snapshot.take_snapshot(client)
    out.print("[dim]running it on the machine:[/]")
    code = ssh.run(client, f"labgen-lab run {shlex.quote(step.id)}")
    after = snapshot.take_snapshot(client)
    show_diff(snapshot.diff(before, after))
    return code == 0


def show_diff(changes: snapshot.Diff) -> None:
    """'What this step changed', in green and red, or a line saying nothing did."""
    out.print("\n[bold]What this step changed in the network state:[/]")
    if changes.is_empty:
        out.print("  [dim]nothing (rules, interfaces, addresses, namespaces and listeners)[/]")
        return
    for line in snapshot.render_diff(changes):
        color = "green" if line.startswith("+") else "red"
        out.print(f"  [{color}]{escape(line)}[/]")


def _checks(lab: Lab, instance: Instance, step: Step) -> CheckRun | None:
    verdict = run_checks(lab, instance.ssh_config, target=step.id, only=True)
    if not verdict.results:
        out.print("[dim]This step only shows something; it has no checks.[/]")
        return None
    if verdict.ok:
        out.print(f"[green]✓ done[/] ({len(verdict.results)} checks pass)")
    else:
        failing = next(r for r in verdict.results if not r.ok)
        out.print(f"[yellow]✗ not yet[/]: {escape(failing.title)}")
        hint = failing.message.strip().splitlines()[0] if failing.message.strip() else ""
        if hint:
            out.print(f"  [dim]hint: {escape(hint[:300])}[/]")
    return verdict
