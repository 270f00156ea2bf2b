"""How results look to people: progress on stderr, tables and verdicts on stdout."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markdown import Markdown
from rich.markup import escape
from rich.panel import Panel
from rich.rule import Rule
from rich.table import Table

from labgen.core.context import Say
from labgen.core.errors import LabgenError
from labgen.core.lab import Lab, Step
from labgen.core.results import CheckRun, LabReport, StatusRow, StepOutcome, UpResult
from labgen.machine.providers.base import BoxInfo, ProviderHealth
from labgen.network.diff import Diff, render_diff


def _console(stderr: bool = False) -> Console:
    console = Console(stderr=stderr, highlight=False, soft_wrap=True)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        # In a pipe rich would cut tables at 80 columns; a pipe wants whole lines.
        console.width = 1000
    return console


out = _console()
err = _console(stderr=True)

MARKS = {
    "passed": "[green]✓[/]",
    "failed": "[red]✗[/]",
    "error": "[red]![/]",
    "skipped": "[yellow]-[/]",
}


@contextlib.contextmanager
def progress(title: str, verbose: bool = False) -> Iterator[Say]:
    """A spinner showing the latest line of long work; every line with --verbose."""
    if verbose or not err.is_terminal:

        def say(line: str) -> None:
            if line.strip():
                err.print(f"  {escape(line.strip())}")

        err.print(f"[bold]{escape(title)}[/]")
        yield say
        return
    with err.status(f"[bold]{escape(title)}[/]") as status:

        def say_live(line: str) -> None:
            if line.strip():
                status.update(f"[bold]{escape(title)}[/] [dim]{escape(line.strip()[:100])}[/]")

        yield say_live


def error(exc: LabgenError) -> None:
    """An error a user caused or can fix, with its hint."""
    err.print(f"[red]labgen: error:[/] {escape(exc.message)}")
    if exc.hint:
        err.print(f"[dim]hint: {escape(exc.hint)}[/]")


def warning(message: str) -> None:
    err.print(f"[yellow]labgen: warning:[/] {escape(message)}")


def note(message: str) -> None:
    """A dim aside on stdout."""
    out.print(f"[dim]{escape(message)}[/]")


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


def print_labs(labs: list[Lab]) -> None:
    table = Table(box=None, show_header=True, header_style="bold")
    table.add_column("LAB")
    table.add_column("STEPS", justify="right")
    table.add_column("TITLE")
    for lab in labs:
        table.add_row(escape(lab.name), str(len(lab.steps)), escape(lab.title))
    out.print(table)


def print_status(rows: list[StatusRow], as_json: bool) -> None:
    if as_json:
        print_json([asdict(r) for r in rows])
        return
    if not rows:
        out.print("no lab machines; `labgen up LAB` brings one up (`labgen list` shows the labs)")
        return
    table = Table(box=None, header_style="bold")
    for col in ("MACHINE", "LAB", "PROVIDER", "ENGINE", "STATE", "STEPS RUN", "CREATED"):
        table.add_column(col)
    for r in rows:
        color = "green" if r.state == "running" else "yellow"
        table.add_row(
            r.instance,
            r.lab,
            r.provider,
            r.engine,
            f"[{color}]{r.state}[/]",
            str(len(r.steps_run)),
            r.created,
        )
    out.print(table)


def print_up(result: UpResult) -> None:
    verb = "is already up" if result.reused else "is up"
    out.print(
        f"[green]Machine {result.instance} {verb}[/] (lab {result.lab}, provider "
        f"{result.provider}, Docker {result.engine}, {result.seconds:.1f} s)."
    )
    name = result.instance
    out.print("Next:")
    out.print(f"  labgen run {name} --all     run every step of the lab")
    out.print(f"  labgen check {name}         is the machine where the steps lead?")
    out.print(f"  labgen ssh {name}           a shell on the machine (labgen-lab list)")
    out.print(f"  labgen destroy {name}       remove it when done")


def print_run(machine: str, outcomes: list[StepOutcome]) -> None:
    failed = [o for o in outcomes if not o.ok]
    if failed:
        out.print(f"[red]step {failed[0].step} failed with exit status {failed[0].exit_code}[/]")
    else:
        out.print(
            f"\n[green]{len(outcomes)} step(s) ran[/]; `labgen check {machine}` checks the result"
        )


def print_boxes(boxes: list[BoxInfo]) -> None:
    for box in boxes:
        mark = "*" if box.current else " "
        out.print(f"{mark} {box.provider:<8} Docker {box.engine:<6} {box.name}  {box.detail}")


def announce_step(lab: Lab, step: Step, engine: str) -> None:
    """What `labgen run` shows before a step: its number, title, commands, and the note
    of the machine's engine."""
    index, total = lab.step_index(step.id) + 1, len(lab.steps)
    out.print(f"\n[bold]Step {index}/{total} {escape(step.id)}[/]: {escape(step.title)}")
    if engine in step.notes:
        out.print(f"[yellow]On Docker {engine}:[/] {escape(' '.join(step.notes[engine].split()))}")
    for line in step.command.strip().splitlines():
        out.print(f"[cyan]$ {escape(line)}[/]")
    if step.run is not None:
        out.print("[dim]labgen runs its non-interactive form:[/]")
        for line in step.run.strip().splitlines():
            out.print(f"[dim]  {escape(line)}[/]")
    sys.stdout.flush()


def print_check_run(run: CheckRun, lab: Lab, as_json: bool) -> None:
    if as_json:
        print_json(run.to_json())
        return
    target = lab.step(run.target)
    scope = "the checks of step" if run.only else "the state after step"
    out.print(
        f"Checking {scope} {lab.step_index(run.target) + 1}/{len(lab.steps)} "
        f"[bold]{escape(target.id)}[/] of lab {escape(lab.name)}"
    )
    for problem in run.problems:
        out.print(f"  [red]! {escape(problem)}[/]")
    current: object = object()
    for r in run.results:
        if r.step != current:
            current = r.step
            if r.step is not None:
                step = lab.step(r.step)
                number = lab.step_index(step.id) + 1
                out.print(f"  [bold]{number}. {escape(step.id)}[/]: {escape(step.title)}")
            else:
                out.print("  [bold]checks tied to no step[/]")
        out.print(f"    {MARKS.get(r.outcome, '?')} {escape(r.title)}")
        if not r.ok and r.message:
            first = r.message.strip().splitlines()[0] if r.message.strip() else ""
            out.print(f"        [red]{escape(first[:300])}[/]")
    passed = sum(r.ok for r in run.results)
    total = len(run.results)
    if run.problems:
        out.print("[red]the checks did not run: nothing is known about this state[/]")
    elif total == 0:
        out.print("[yellow]no checks apply to this step[/]")
    elif run.ok:
        out.print(f"[green]{'the check passes' if total == 1 else f'all {total} checks pass'}[/]")
    else:
        failing = sorted({r.step or "?" for r in run.results if not r.ok}, key=lambda s: s)
        out.print(
            f"[red]{total - passed} of {total} checks fail[/] (steps: {', '.join(failing)}); "
            "not there yet"
        )


VERIFY_MARKS = {
    "pass": "[green]pass[/]",
    "ran": "[green]ran[/]",
    "fail": "[red]FAIL[/]",
    "vacuous": "[red]VACUOUS[/]",
    "skipped": "[yellow]skipped[/]",
    "n/a": "[dim]n/a[/]",
}


def verify_event(lab: str, message: str) -> None:
    """Progress of `labgen verify`: one line per event, prefixed by its lab (readable with -j)."""
    err.print(f"[dim]{escape(lab):>16}[/] {escape(message)}")


def print_verify(reports: list[LabReport], as_json: bool) -> None:
    if as_json:
        print_json([r.to_json() for r in reports])
        return
    for rep in reports:
        verdict = "[green]PASSED[/]" if rep.ok else "[red]FAILED[/]"
        on = f" on Docker {rep.engine}" if rep.engine else ""
        out.print(f"\n[bold]{escape(rep.lab)}[/]{on} {verdict} ({rep.seconds:.1f} s)")
        if rep.error:
            out.print(f"  [red]{escape(rep.error)}[/]")
        table = Table(box=None, show_header=True, header_style="bold", pad_edge=False)
        for col in ("#", "STEP", "RESULT", "CHECKS", "TIME"):
            table.add_column(col, justify="right" if col in ("#", "CHECKS", "TIME") else "left")
        for i, step in enumerate(rep.steps, start=1):
            table.add_row(
                str(i),
                escape(step.step),
                VERIFY_MARKS.get(step.status, step.status),
                str(len(step.checks)),
                f"{step.seconds:.1f} s",
            )
        out.print(table)
        for step in rep.steps:
            if step.status in ("fail", "vacuous"):
                out.print(f"  [red]{escape(step.step)}: {escape(step.reason)}[/]")
                if step.output.strip():
                    out.print("  [dim]output:[/]")
                    for line in step.output.strip().splitlines()[-20:]:
                        out.print(f"  [dim]| {escape(line)}[/]")
    engines = sorted({r.engine for r in reports}, key=lambda e: [int(p) for p in e.split(".")])
    if len(engines) > 1:
        matrix = Table(box=None, header_style="bold", title="lab × engine", title_justify="left")
        matrix.add_column("LAB")
        for engine in engines:
            matrix.add_column(engine)
        for lab in dict.fromkeys(r.lab for r in reports):
            cells = {
                r.engine: "[green]PASSED[/]" if r.ok else "[red]FAILED[/]"
                for r in reports
                if r.lab == lab
            }
            matrix.add_row(escape(lab), *(cells.get(e, "[dim]-[/]") for e in engines))
        out.print()
        out.print(matrix)
    passed = sum(r.ok for r in reports)
    color = "green" if passed == len(reports) else "red"
    what = "labs" if len(engines) <= 1 else "lab × engine runs"
    out.print(f"\n[{color}]{passed} of {len(reports)} {what} passed[/]")


def print_doctor(health: list[ProviderHealth], as_json: bool) -> None:
    if as_json:
        print_json(
            [
                {
                    "provider": h.provider,
                    "ready": h.ready,
                    "caution": h.caution,
                    "probes": [asdict(p) for p in h.probes],
                }
                for h in health
            ]
        )
        return
    for h in health:
        state = "[green]ready[/]" if h.ready else "[red]not ready[/]"
        out.print(f"[bold]{h.provider:<11}[/] {state}  [dim]{escape(h.summary)}[/]")
        for p in h.probes:
            mark = "[green]✓[/]" if p.ok else "[red]✗[/]"
            out.print(f"  {mark} {p.name:<16} {escape(p.detail)}")
            if not p.ok and p.fix:
                out.print(f"      [yellow]fix:[/] {escape(p.fix)}")
        if h.caution:
            out.print(f"  [yellow]![/] {escape(' '.join(h.caution.split()))}")
    ready = [h.provider for h in health if h.ready]
    if ready:
        out.print(f"\nWithout --provider, labgen uses [bold]{ready[0]}[/] (the first ready one).")
    else:
        out.print("\n[red]No provider is ready[/]: apply one of the fixes above.")


def show_diff(changes: Diff) -> None:
    """'What this step changed', in green and red, or a line saying nothing did."""
    out.print("\n[bold]What this step changed in the network state:[/]")
    if changes.is_empty:
        out.print("  [dim]nothing (rules, interfaces, addresses, namespaces and listeners)[/]")
        return
    for line in render_diff(changes):
        color = "green" if line.startswith("+") else "red"
        out.print(f"  [{color}]{escape(line)}[/]")


GUIDE_BEFORE = (
    "[Enter] run it   [c] I ran it myself (in `labgen ssh`), check   [s] skip   [b] back   [q] quit"
)


def guide_after_prompt(retry: bool) -> str:
    return f"[Enter] next step{'   [r] retry' if retry else ''}   [b] back   [q] quit"


def show_guide_step(number: int, total: int, step: Step, engine: str) -> None:
    out.print(Rule(f"Step {number} of {total}: {step.id}"))
    out.print(f"[bold]{escape(step.title)}[/]\n")
    out.print(Markdown(step.explain), soft_wrap=False)  # wrapped to the terminal
    if engine in step.notes:
        note = Markdown(f"**On Docker {engine}:** {step.notes[engine].strip()}")
        out.print(Panel(note, border_style="yellow", expand=False))
    commands = "\n".join(f"$ {line}" for line in step.command.strip().splitlines())
    out.print(Panel(escape(commands), title="the command", title_align="left", expand=False))


def show_guide_verdict(verdict: CheckRun) -> None:
    if verdict.problems:
        out.print("[red]✗ the checks did not run:[/]")
        for problem in verdict.problems:
            out.print(f"  [dim]{escape(problem[:500])}[/]")
    elif not verdict.results:
        out.print("[dim]This step only shows something; it has no checks.[/]")
    elif verdict.ok:
        out.print(f"[green]✓ done[/] ({len(verdict.results)} checks pass)")
    else:
        failing = next(r for r in verdict.results if not r.ok)
        out.print(f"[yellow]✗ not yet[/]: {escape(failing.title)}")
        hint = failing.message.strip().splitlines()[0] if failing.message.strip() else ""
        if hint:
            out.print(f"  [dim]hint: {escape(hint[:300])}[/]")


def guide_finished(lab: str, total: int) -> None:
    out.print(Rule())
    out.print(f"[green]Lab {escape(lab)} done: {total} of {total} steps.[/]")


def print_guide_end(machine: str, failed: str | None, quit: bool, done: int, total: int) -> None:
    if failed:
        out.print(f"[red]step {escape(failed)} is not done[/]")
    elif quit:
        out.print(f"stopped after {done} of {total} steps; `labgen guide {machine}` resumes here")


def print_lint(reports: list[Any]) -> None:
    """`labgen lint`: ok or fail per lab folder, with each problem."""
    for report in reports:
        if report.ok:
            out.print(f"[green]ok[/]   {escape(str(report.path))}")
        else:
            out.print(f"[red]fail[/] {escape(str(report.path))}")
            for problem in report.problems:
                out.print(f"       {escape(problem)}")


def print_docs(paths: list[Path], check_only: bool) -> None:
    if not check_only:
        for path in paths:
            out.print(f"wrote {path}")
        return
    for path in paths:
        out.print(f"out of date: {path}")
    if paths:
        err.print("run `labgen docs` to regenerate them")


def ask(prompt: str) -> str:
    """One answer from the terminal (Enter gives "")."""
    import click

    return str(click.prompt(prompt, default="", show_default=False, prompt_suffix="\n> "))


def print_new(folder: Path) -> None:
    out.print(f"created {folder}/lab.yaml and {folder}/checks.py")
    out.print(f"next: edit them, then `labgen lint {folder}` and `labgen verify {folder}`")
