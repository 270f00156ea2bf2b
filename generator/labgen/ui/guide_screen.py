"""The guide's terminal: what `labgen guide` shows and asks, behind verbs.guide's Screen.

The verb decides what happens next; this module only prints (through printers.py and
views.py, which escape every string a lab or a machine gave them) and reads a key.
"""

from __future__ import annotations

from labgen.core.errors import LabgenError
from labgen.core.lab import Step
from labgen.core.results import CheckRun
from labgen.inmachine.kernel import KernelWalk
from labgen.inmachine.trace import TraceResult
from labgen.network.diff import Diff
from labgen.network.wiring import Picture
from labgen.ui import kernel as kernel_view
from labgen.ui import printers, views


class TerminalScreen:
    """The guide on a terminal: rich output, answers from click's prompt."""

    # The step on screen: what `running` runs (the verb shows a step, then runs it).
    _shown: Step | None = None

    def step(self, number: int, total: int, step: Step, engine: str) -> None:
        """A step's title, explanation, engine note and command."""
        self._shown = step
        printers.show_guide_step(number, total, step, engine)

    def ask_before(self) -> str:
        """Run, check, skip, back, quit, or a picture; the raw answer."""
        return printers.ask(printers.GUIDE_BEFORE + views.guide_keys(picture=True))

    def ask_after(self, retry: bool, trace: bool) -> str:
        """Next, retry (when the checks fail), back, quit, trace or a picture."""
        keys = views.guide_keys(picture=True, trace=trace)
        return printers.ask(printers.guide_after_prompt(retry) + keys)

    def already_finished(self, lab: str) -> None:
        printers.guide_already_finished(lab)

    def resuming(self, lab: str, number: int, total: int) -> None:
        printers.note(f"Resuming lab {lab} at step {number} of {total}.")

    def running(self) -> None:
        """What runs now: the command shown, or the step's `run:` form in its place."""
        printers.note(_running(self._shown))

    def diff(self, changes: Diff) -> None:
        printers.show_diff(changes)

    def command_failed(self) -> None:
        printers.guide_step_failed()

    def verdict(self, run: CheckRun) -> None:
        printers.show_guide_verdict(run)

    def finished(self, lab: str, total: int) -> None:
        printers.guide_finished(lab, total)

    def picture(self, picture: Picture) -> None:
        views.print_picture(picture, as_json=False)

    def tracing(self, machine: str, command: str, kernel: bool = False) -> None:
        flag = " --kernel" if kernel else ""
        printers.note(f"tracing it: labgen trace {machine}{flag} -- {command}")

    def trace(self, result: TraceResult) -> None:
        views.print_trace(result, as_json=False)

    def walk(self, result: KernelWalk) -> None:
        kernel_view.print_walk(result)

    def error(self, exc: LabgenError) -> None:
        printers.error(exc)


def _running(step: Step | None) -> str:
    """The line before a step's output: a step with a `run:` form runs that, not the
    command the page shows (an interactive one), and the learner is told so.

    >>> step = Step(id="a", title="A", explain="E", command="docker run -it x", run="run -d x")
    >>> print(_running(step))
    running the step's non-interactive form (its run:), not the command shown:
      $ run -d x
    """
    if step is None or step.run is None:
        return "running it on the machine:"
    lines = "".join(f"\n  $ {line}" for line in step.run.strip().splitlines())
    return "running the step's non-interactive form (its run:), not the command shown:" + lines
