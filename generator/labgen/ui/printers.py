"""How results look to people: progress on stderr, tables and verdicts on stdout.

Every string that comes from a lab, Vagrant, Docker or a user is passed through
escape_text before rich reads the markup around it.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rich.panel import Panel
from rich.rule import Rule
from rich.table import Table

from labgen.core.context import Say
from labgen.core.errors import LabgenError
from labgen.core.lab import Lab, Step
from labgen.core.results import (
    MISSING,
    NO_RECORDINGS,
    RECORDED,
    CheckRun,
    LabReport,
    LintReport,
    Pooled,
    PoolFill,
    StatusRow,
    StepOutcome,
    UpResult,
)
from labgen.machine.providers.base import BoxInfo, ProviderHealth
from labgen.network.diff import Diff, render_diff
from labgen.ui.console import err, escape_text, out

MARKS = {
    "passed": "[green]✓[/]",
    "failed": "[red]✗[/]",
    "error": "[red]![/]",
    "skipped": "[yellow]-[/]",
}


@contextlib.contextmanager
def progress(title: str, verbose: bool = False) -> Iterator[Say]:
    """A spinner showing the latest line of long work; every line with --verbose."""
    heading = f"[bold]{escape_text(title)}[/]"
    if verbose or not err.is_terminal:

        def say(line: str) -> None:
            if line.strip():
                err.print(f"  {escape_text(line.strip())}")

        err.print(heading)
        yield say
        return
    with err.status(heading) as status:

        def say_live(line: str) -> None:
            if line.strip():
                status.update(f"{heading} [dim]{escape_text(line.strip()[:100])}[/]")

        yield say_live


def error(exc: LabgenError) -> None:
    """An error a user caused or can fix, with its hint."""
    err.print(f"[red]labgen: error:[/] {escape_text(exc.message)}")
    if exc.hint:
        err.print(f"[dim]hint: {escape_text(exc.hint)}[/]")


def warning(message: str) -> None:
    """Something the user should know that does not stop the verb (a stale machine)."""
    err.print(f"[yellow]labgen: warning:[/] {escape_text(message)}")


def note(message: str) -> None:
    """A dim aside on stdout."""
    out.print(f"[dim]{escape_text(message)}[/]")


def interrupted() -> None:
    """What Ctrl-C or SIGTERM leaves on stderr once the cleanup ran."""
    err.print("labgen: interrupted")


def print_json(data: Any) -> None:
    """`data` as indented JSON on stdout, for tools (never through rich)."""
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


def print_labs(labs: list[Lab]) -> None:
    """`labgen list`: each lab's name, number of steps and title."""
    table = Table(box=None, show_header=True, header_style="bold")
    table.add_column("LAB")
    table.add_column("STEPS", justify="right")
    table.add_column("TITLE")
    for lab in labs:
        table.add_row(escape_text(lab.name), str(len(lab.steps)), escape_text(lab.title))
    out.print(table)


def print_status(rows: list[StatusRow], as_json: bool) -> None:
    """`labgen status`: the machines, their lab, provider, engine and state."""
    if as_json:
        print_json([asdict(r) for r in rows])
        return
    if not rows:
        out.print("no lab machines; `labgen up LAB` brings one up (`labgen list` shows the labs)")
        return
    table = Table(box=None, header_style="bold")
    for col in ("MACHINE", "LAB", "PROVIDER", "HOST", "ENGINE", "STATE", "STEPS RUN", "CREATED"):
        table.add_column(col)
    for r in rows:
        color = "green" if r.state == "running" else "yellow"
        table.add_row(
            escape_text(r.instance),
            escape_text(r.lab),
            escape_text(r.provider),
            escape_text(r.host),
            escape_text(r.engine),
            f"[{color}]{escape_text(r.state)}[/]",
            str(len(r.steps_run)),
            escape_text(r.created),
        )
    out.print(table)


def print_up(result: UpResult) -> None:
    """`labgen up`: the machine that is up, and the verbs that come next."""
    verb = "is already up" if result.reused else "is up"
    source = ", from the warm pool" if result.claimed else ""
    out.print(
        f"[green]Machine {escape_text(result.instance)} {verb}[/] (lab "
        f"{escape_text(result.lab)}, provider {escape_text(result.provider)}, Docker "
        f"{escape_text(result.engine)}{source}, {result.seconds:.1f} s)."
    )
    name = escape_text(result.instance)
    out.print("Next:")
    out.print(f"  labgen run {name} --all     run every step of the lab")
    out.print(f"  labgen check {name}         is the machine where the steps lead?")
    out.print(f"  labgen ssh {name}           a shell on the machine (labgen-lab list)")
    out.print(f"  labgen destroy {name}       remove it when done")


def print_pool_fill(result: PoolFill) -> None:
    """`labgen pool fill`: each machine made and its time, and how many were ready."""
    for made in result.made:
        out.print(
            f"made pooled machine {escape_text(made.name)} (Docker "
            f"{escape_text(made.engine)}, {made.seconds:.1f} s)"
        )
    ready = result.already_ready + len(result.made)
    out.print(
        f"[green]{ready} pooled machine{'s' if ready != 1 else ''} ready[/] "
        f"({len(result.made)} made now); `labgen up LAB` claims one of the lab's engine"
    )


def print_pool_status(rows: list[Pooled], as_json: bool) -> None:
    """`labgen pool status`: each pooled machine, its engine, and whether it is ready."""
    if as_json:
        print_json([row.to_json() for row in rows])
        return
    if not rows:
        out.print("the warm pool is empty; `labgen pool fill` makes machines ahead")
        return
    table = Table(box=None, header_style="bold")
    for col in ("MACHINE", "PROVIDER", "ENGINE", "STATE", "CREATED"):
        table.add_column(col)
    for row in rows:
        state = "[green]ready[/]" if row.ready else f"[yellow]{escape_text(row.trouble)}[/]"
        table.add_row(
            escape_text(row.name),
            escape_text(row.provider),
            escape_text(row.engine),
            state,
            escape_text(row.created),
        )
    out.print(table)


def print_pool_drain(names: list[str]) -> None:
    """`labgen pool drain`: the pooled machines destroyed."""
    if not names:
        out.print("the warm pool was empty")
    for name in names:
        out.print(f"destroyed pooled machine {escape_text(name)}")


def print_run(machine: str, outcomes: list[StepOutcome]) -> None:
    """`labgen run`'s last line: the step that failed, or how many ran."""
    failed = [o for o in outcomes if not o.ok]
    if failed:
        out.print(
            f"[red]step {escape_text(failed[0].step)} failed with exit status "
            f"{failed[0].exit_code}[/]"
        )
    else:
        out.print(
            f"\n[green]{len(outcomes)} step(s) ran[/]; `labgen check {escape_text(machine)}` "
            "checks the result"
        )


def print_destroyed(machines: Iterable[str]) -> None:
    """`labgen destroy`: a line per machine destroyed."""
    out.print("\n".join(f"destroyed {escape_text(name)}" for name in machines))


def print_boxes(boxes: list[BoxInfo]) -> None:
    """`labgen box list`: each box built here, * for the current recipe's."""
    for box in boxes:
        mark = "*" if box.current else " "
        # Padded before escaping: a backslash rich drops must not count as a column.
        line = f"{mark} {box.provider:<8} Docker {box.engine:<6} {box.name}  {box.detail}"
        out.print(escape_text(line))


def print_box_ready(name: str) -> None:
    """`labgen box build`: a box that is built (or was already)."""
    out.print(f"{escape_text(name)} is ready")


def print_pruned(names: list[str]) -> None:
    """`labgen box prune`: the boxes removed, or that there was nothing to remove."""
    out.print("\n".join(f"removed {escape_text(name)}" for name in names) or "nothing to remove")


def announce_step(lab: Lab, step: Step, engine: str) -> None:
    """What `labgen run` shows before a step: its number, title, commands, and the note
    of the machine's engine."""
    index, total = lab.step_index(step.id) + 1, len(lab.steps)
    out.print(f"\n[bold]Step {index}/{total} {escape_text(step.id)}[/]: {escape_text(step.title)}")
    if engine in step.notes:
        out.print(
            f"[yellow]On Docker {escape_text(engine)}:[/] "
            f"{escape_text(' '.join(step.notes[engine].split()))}"
        )
    for line in step.command.strip().splitlines():
        out.print(f"[cyan]$ {escape_text(line)}[/]")
    if step.run is not None:
        out.print("[dim]labgen runs its non-interactive form:[/]")
        for line in step.run.strip().splitlines():
            out.print(f"[dim]  {escape_text(line)}[/]")
    sys.stdout.flush()


def print_check_run(run: CheckRun, lab: Lab, as_json: bool) -> None:
    """`labgen check`: each check's mark under its step, then the verdict."""
    if as_json:
        print_json(run.to_json())
        return
    target = lab.step(run.target)
    scope = "the checks of step" if run.only else "the state after step"
    out.print(
        f"Checking {scope} {lab.step_index(run.target) + 1}/{len(lab.steps)} "
        f"[bold]{escape_text(target.id)}[/] of lab {escape_text(lab.name)}"
    )
    for problem in run.problems:
        out.print(f"  [red]! {escape_text(problem)}[/]")
    current: object = object()
    for r in run.results:
        if r.step != current:
            current = r.step
            _print_check_step(lab, r.step)
        out.print(f"    {MARKS.get(r.outcome, '?')} {escape_text(r.title)}")
        if not r.ok and r.message:
            first = r.message.strip().splitlines()[0] if r.message.strip() else ""
            out.print(f"        [red]{escape_text(first[:300])}[/]")
    _print_check_verdict(run)


def _print_check_step(lab: Lab, step_id: str | None) -> None:
    if step_id is None:
        out.print("  [bold]checks tied to no step[/]")
        return
    step = lab.step(step_id)
    number = lab.step_index(step.id) + 1
    out.print(f"  [bold]{number}. {escape_text(step.id)}[/]: {escape_text(step.title)}")


def _print_check_verdict(run: CheckRun) -> None:
    passed = sum(r.ok for r in run.results)
    total = len(run.results)
    if run.problems:
        out.print("[red]the checks did not run: nothing is known about this state[/]")
    elif total == 0:
        out.print("[yellow]nothing was checked: no check applies to this step[/]")
    elif run.ok:
        out.print(f"[green]{'the check passes' if total == 1 else f'all {total} checks pass'}[/]")
    else:
        failing = sorted({r.step or "?" for r in run.results if not r.ok}, key=lambda s: s)
        out.print(
            f"[red]{total - passed} of {total} checks fail[/] "
            f"(steps: {escape_text(', '.join(failing))}); not there yet"
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
    # Padded before escaping: a backslash rich drops must not count as a column.
    err.print(f"[dim]{escape_text(f'{lab:>16}')}[/] {escape_text(message)}")


def print_verify(
    reports: list[LabReport], as_json: bool, kept: Sequence[str] = (), destroy: str = ""
) -> None:
    """`labgen verify`: per lab and engine a table of steps, the failures' output, a
    lab × engine matrix when there are several engines, the count that passed, and the
    machines `kept` standing (--destroy `destroy`) with how to get in and remove them."""
    if as_json:
        print_json([r.to_json() for r in reports])
        return
    for rep in reports:
        _print_lab_report(rep)
    engines = sorted({r.engine for r in reports}, key=lambda e: [int(p) for p in e.split(".")])
    if len(engines) > 1:
        _print_engine_matrix(reports, engines)
    passed = sum(r.ok for r in reports)
    color = "green" if passed == len(reports) else "red"
    what = "labs" if len(engines) <= 1 else "lab × engine runs"
    out.print(f"\n[{color}]{passed} of {len(reports)} {what} passed[/]")
    _print_kept(kept, destroy)


def _print_lab_report(rep: LabReport) -> None:
    verdict = "[green]PASSED[/]" if rep.ok else "[red]FAILED[/]"
    on = f" on Docker {escape_text(rep.engine)}" if rep.engine else ""
    on += f" on host {escape_text(rep.host)}" if rep.host else ""
    out.print(f"\n[bold]{escape_text(rep.lab)}[/]{on} {verdict} ({rep.seconds:.1f} s)")
    if rep.error:
        out.print(f"  [red]{escape_text(rep.error)}[/]")
    table = Table(box=None, show_header=True, header_style="bold", pad_edge=False)
    for col in ("#", "STEP", "RESULT", "CHECKS", "TIME"):
        table.add_column(col, justify="right" if col in ("#", "CHECKS", "TIME") else "left")
    for i, step in enumerate(rep.steps, start=1):
        table.add_row(
            str(i),
            escape_text(step.step),
            VERIFY_MARKS.get(step.status, escape_text(step.status)),
            str(len(step.checks)),
            f"{step.seconds:.1f} s",
        )
    out.print(table)
    for step in rep.steps:
        if step.status in ("fail", "vacuous"):
            out.print(f"  [red]{escape_text(step.step)}: {escape_text(step.reason)}[/]")
            if step.output.strip():
                out.print("  [dim]output:[/]")
                for line in step.output.strip().splitlines()[-20:]:
                    out.print(f"  [dim]| {escape_text(line)}[/]")


def _print_engine_matrix(reports: list[LabReport], engines: list[str]) -> None:
    matrix = Table(box=None, header_style="bold", title="lab × engine", title_justify="left")
    matrix.add_column("LAB")
    for engine in engines:
        matrix.add_column(escape_text(engine))
    for lab in dict.fromkeys(r.lab for r in reports):
        cells = {
            r.engine: "[green]PASSED[/]" if r.ok else "[red]FAILED[/]"
            for r in reports
            if r.lab == lab
        }
        matrix.add_row(escape_text(lab), *(cells.get(e, "[dim]-[/]") for e in engines))
    out.print()
    out.print(matrix)


def print_recordings(reports: list[LabReport]) -> None:
    """Drift for people: a diff per drifted step, naming lab, engine and step; a line per
    run without recordings."""
    for rep in reports:
        where = escape_text(f"{rep.lab} on Docker {rep.engine}")
        if rep.recordings == NO_RECORDINGS:
            out.print(f"[yellow]{where}: no recorded outputs, nothing compared[/]")
        elif rep.recordings == RECORDED:
            out.print(f"{where}: outputs recorded (Docker {escape_text(rep.docker)})")
        for step in rep.drifted:
            kind = "a failure with --strict" if rep.strict else "a warning; --strict fails it"
            if step.recording == MISSING:
                out.print(
                    f"[red]{where}, step {escape_text(step.step)}: no recording "
                    f"of this step ({kind})[/]"
                )
                continue
            out.print(
                f"[red]{where}, step {escape_text(step.step)}: output drifted "
                f"from its recording ({kind})[/]"
            )
            for line in step.drift.splitlines():
                color = {"+": "green", "-": "red", "@": "cyan"}.get(line[:1], "dim")
                out.print(f"  [{color}]{escape_text(line)}[/]")


def _print_kept(machines: Sequence[str], when: str) -> None:
    """The machines `labgen verify` kept (its --destroy `when`), and how to get into one
    and remove it: a failed run's machine is where its failure can be looked at."""
    for name in machines:
        machine = escape_text(name)
        out.print(
            f"[yellow]kept machine {machine}[/] (--destroy {escape_text(when)}): "
            f"`labgen ssh {machine}` to look inside, `labgen check {machine}` for its checks, "
            f"`labgen destroy {machine}` when done"
        )


def print_doctor(health: list[ProviderHealth], as_json: bool) -> None:
    """`labgen doctor`: each provider ready or not, each probe with its fix, and the
    provider labgen takes without --provider."""
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
        out.print(
            f"[bold]{escape_text(f'{h.provider:<11}')}[/] {state}  [dim]{escape_text(h.summary)}[/]"
        )
        for p in h.probes:
            mark = "[green]✓[/]" if p.ok else "[red]✗[/]"
            out.print(f"  {mark} {escape_text(f'{p.name:<16}')} {escape_text(p.detail)}")
            if not p.ok and p.fix:
                out.print(f"      [yellow]fix:[/] {escape_text(p.fix)}")
        if h.caution:
            out.print(f"  [yellow]![/] {escape_text(' '.join(h.caution.split()))}")
    ready = [h.provider for h in health if h.ready]
    if ready:
        out.print(
            f"\nWithout --provider, labgen uses [bold]{escape_text(ready[0])}[/] "
            "(the first ready one)."
        )
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
        out.print(f"  [{color}]{escape_text(line)}[/]")


# The guide's prompts go to click, not rich: their brackets are the keys to press.
GUIDE_BEFORE = (
    "[Enter] run it   [c] I ran it myself (in `labgen ssh`), check   [s] skip   [b] back   [q] quit"
)


def guide_after_prompt(retry: bool) -> str:
    """The guide's prompt after a step ran (click's, not rich's: brackets are keys)."""
    return f"[Enter] next step{'   [r] retry' if retry else ''}   [b] back   [q] quit"


def show_guide_step(number: int, total: int, step: Step, engine: str) -> None:
    """The guide's page for a step: its title, explanation, engine's note and command."""
    out.print(Rule(f"Step {number} of {total}: {escape_text(step.id)}"))
    out.print(f"[bold]{escape_text(step.title)}[/]\n")
    # Here, not at the top: rich's Markdown (with markdown-it) is a quarter of a second of
    # imports that only the guide uses, and every command loads this module.
    from rich.markdown import Markdown

    out.print(Markdown(step.explain), soft_wrap=False)  # wrapped to the terminal
    if engine in step.notes:
        note = Markdown(f"**On Docker {engine}:** {step.notes[engine].strip()}")
        out.print(Panel(note, border_style="yellow", expand=False))
    commands = "\n".join(f"$ {line}" for line in step.command.strip().splitlines())
    out.print(Panel(escape_text(commands), title="the command", title_align="left", expand=False))
    if step.run is not None:
        out.print("[dim]Enter runs the step's non-interactive form instead (its run:):[/]")
        for line in step.run.strip().splitlines():
            out.print(f"[dim]  $ {escape_text(line)}[/]")


def show_guide_verdict(verdict: CheckRun) -> None:
    """The guide's verdict on a step: done, not yet (with the first failure), or the
    checks could not run."""
    if verdict.problems:
        out.print("[red]✗ the checks did not run:[/]")
        for problem in verdict.problems:
            out.print(f"  [dim]{escape_text(problem[:500])}[/]")
    elif not verdict.results:
        out.print("[dim]This step only shows something; it has no checks.[/]")
    elif verdict.ok:
        out.print(f"[green]✓ done[/] ({len(verdict.results)} checks pass)")
    else:
        failing = next(r for r in verdict.results if not r.ok)
        out.print(f"[yellow]✗ not yet[/]: {escape_text(failing.title)}")
        hint = failing.message.strip().splitlines()[0] if failing.message.strip() else ""
        if hint:
            out.print(f"  [dim]hint: {escape_text(hint[:300])}[/]")


def guide_already_finished(lab: str) -> None:
    """The guide of a lab whose every step is done."""
    out.print(f"You finished lab {escape_text(lab)} already; `--restart` walks it again.")


def guide_step_failed() -> None:
    """The guide ran a step's command for the learner and it failed."""
    out.print("[red]The step's command failed.[/]")


def guide_finished(lab: str, total: int) -> None:
    """The guide's last line when every step is done."""
    out.print(Rule())
    out.print(f"[green]Lab {escape_text(lab)} done: {total} of {total} steps.[/]")


def guide_stopped() -> None:
    """The guide left with Ctrl-C or end of input: it resumes where it stopped."""
    out.print("\nguide stopped; `labgen guide` resumes here")


def print_guide_end(machine: str, failed: str | None, quit: bool, done: int, total: int) -> None:
    """`labgen guide`'s end: the step not done, or where a quit guide resumes."""
    if failed:
        out.print(f"[red]step {escape_text(failed)} is not done[/]")
    elif quit and done >= total:
        out.print(
            f"stopped after {done} of {total} steps: the lab is done; "
            f"`labgen guide {escape_text(machine)} --restart` walks it again"
        )
    elif quit:
        out.print(
            f"stopped after {done} of {total} steps; `labgen guide {escape_text(machine)}` "
            f"resumes at step {done + 1}"
        )


def print_lint(reports: list[LintReport]) -> None:
    """`labgen lint`: ok or fail per lab folder, with each problem."""
    for report in reports:
        if report.ok:
            out.print(f"[green]ok[/]   {escape_text(report.path)}")
        else:
            out.print(f"[red]fail[/] {escape_text(report.path)}")
            for problem in report.problems:
                # A problem's own lines (the source a YAML error shows) stay under it.
                for line in problem.splitlines():
                    out.print(f"       {escape_text(line)}")


def print_docs(paths: list[Path], check_only: bool) -> None:
    """`labgen docs`: the pages written, or (--check) those out of date."""
    if not check_only:
        for path in paths:
            out.print(f"wrote {escape_text(path)}")
        return
    for path in paths:
        out.print(f"out of date: {escape_text(path)}")
    if paths:
        err.print("run `labgen docs` to regenerate them")


def ask(prompt: str) -> str:
    """One answer from the terminal (Enter gives "")."""
    import click

    return str(click.prompt(prompt, default="", show_default=False, prompt_suffix="\n> "))


def print_new(folder: Path) -> None:
    """`labgen new`: the files made, and what to do with them."""
    where = escape_text(folder)
    out.print(f"created {where}/lab.yaml and {where}/checks.py")
    out.print(f"next: edit them, then `labgen lint {where}` and `labgen verify {where}`")


def print_rendered(path: Path) -> None:
    """`labgen render`: the bundle written, and how attendees bring it up."""
    out.print(
        f"wrote {escape_text(path)}; there: `vagrant up --provider=docker`, then `vagrant ssh`"
    )


def print_images_saved(tag: str, output: str) -> None:
    """`labgen images save`: the image saved, and how to load it elsewhere."""
    where = escape_text(output)
    out.print(
        f"saved {escape_text(tag)} to {where}; `labgen images load {where}` on the other machine"
    )


def print_images_loaded(message: str) -> None:
    """`labgen images load`: what Docker said it loaded."""
    out.print(escape_text(message))
