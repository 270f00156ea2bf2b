"""Text from a lab, Vagrant, Docker or a user reaches the screen as it is, through every
printer in ui/.

rich reads its markup in every string it prints: unescaped, `[docker]` vanishes as an
unknown style, `[bold]` turns the rest bold, and `[/tmp/x]` raises MarkupError (which
ended `workshop up` in a traceback when Vagrant said `Error: [/tmp/x] missing`). Each
public printer is called here with those three in every string its records carry; the
printers are found with inspect, so a new one without a case below fails
test_every_printer_has_a_case.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import click
import pytest
from labgen.core.errors import LabgenError
from labgen.core.lab import Lab, LabSpec, Step
from labgen.core.results import (
    DRIFT,
    MISSING,
    NO_RECORDINGS,
    RECORDED,
    CheckResult,
    CheckRun,
    LabReport,
    LintReport,
    Pooled,
    PoolFill,
    PoolMade,
    StatusRow,
    StepOutcome,
    StepReport,
    UpResult,
)
from labgen.inmachine.kernel import Hop, KernelEvent, KernelWalk
from labgen.inmachine.trace import Hit, PacketWalk, Route, TraceResult, TraceStep
from labgen.machine.providers.base import BoxInfo, Probe, ProviderHealth
from labgen.network.diff import Change, Diff
from labgen.network.wiring import End, Interface, Namespace, Picture, Wiring
from labgen.ui import console, guide_screen, live, printers, views
from labgen.ui import kernel as kernel_view
from labgen.workshop.room import Room
from labgen.workshop.seats import FAILED, SeatEvent, SeatStatus

MARKERS = ("[docker]", "[/tmp/x]", "[bold]")
# Every string of every record: all three markers, as one word each where a record
# splits its text on spaces (a packet's header).
M = " ".join(MARKERS)
HEADER = "OUT=lo SRC=[docker] DST=[/tmp/x] SPORT=[bold] DPORT=5000"

# Printers whose arguments carry no text from outside: called, so that they do not
# raise, but there is nothing of a lab's to find in what they print.
NO_OUTSIDE_TEXT = {
    "printers.interrupted",
    "printers.guide_after_prompt",
    "printers.guide_step_failed",
    "printers.guide_stopped",
    "views.guide_keys",
    "guide_screen.TerminalScreen.ask_before",
    "guide_screen.TerminalScreen.ask_after",
    "guide_screen.TerminalScreen.running",
    "guide_screen.TerminalScreen.command_failed",
    "kernel.print_kernel_view",
}

STEP = Step.model_construct(
    id=M, title=M, explain=M, command=M, run=M, notes={"20.10": M}, trace=True, not_on={}
)
LAB = Lab(
    LabSpec.model_construct(name=M, title=M, summary=M, engine="20.10", engines=[], steps=[STEP]),
    Path(M),
)
FAILING = CheckResult(name=M, title=M, step=M, outcome="failed", message=M, duration=0.1)
UNTIED = CheckResult(name=M, title=M, step=None, outcome="error", message=M, duration=0.1)
CHECKS = CheckRun(lab=M, target=M, only=False, results=[FAILING, UNTIED])
CHECKS_NOT_RUN = CheckRun(lab=M, target=M, only=True, results=[], problems=[M])
ERROR = LabgenError(M, hint=M)
UP = UpResult(M, M, M, M, reused=False, seconds=1.0, box_built=False, claimed=True)
POOLED = [Pooled(M, M, M, M, trouble=None), Pooled(M, M, M, M, trouble=M)]
POOL_FILL = PoolFill(M, [PoolMade(M, M, 1.0)], already_ready=1)
STATUS = StatusRow(M, M, M, M, M, [M], M, M)
OUTCOME = StepOutcome(step=M, exit_code=1, seconds=1.0, output=M)
BOX = BoxInfo(provider=M, name=M, engine=M, current=True, detail=M)
HEALTH = [
    ProviderHealth(M, M, [Probe(M, False, M, M), Probe(M, True, M)], caution=M),
    ProviderHealth(M, M, [Probe(M, True, M)]),
]
DIFF = Diff((Change(kind=M, added=(M,), removed=(M,)),))


def lab_report(engine: str, recordings: str) -> LabReport:
    steps = [
        StepReport(M, M, status="fail", reason=M, output=M, recording=DRIFT, drift=f"+{M}\n-{M}"),
        StepReport(M, M, status=M, recording=MISSING),
    ]
    return LabReport(M, M, steps, engine=engine, error=M, docker=M, recordings=recordings)


REPORTS = [lab_report("20.10", RECORDED), lab_report("28.5", NO_RECORDINGS)]
LINTED = [LintReport(Path(M), [M]), LintReport(Path(M), [])]

HITS = (
    Hit(M, M, M, M, None, 1, 60, depth=1, number=1, background=1, note=M),
    Hit("PREROUTING", M, M, None, M, 1, 60),
)
WALKS = (
    PacketWalk(M, HEADER, (TraceStep(M, M, "rule", M, M), TraceStep(M, M, "policy", M, ""))),
    PacketWalk(M, HEADER, ()),
)
TRACE = TraceResult(M, M, 1, M, M, 0.1, 1.0, Route(HITS, (M,)), M, packets=WALKS)
WIRING = Wiring(
    namespaces=(
        Namespace(1, M, (M,), (Interface(1, M, "veth", True, peer_index=2, ipv4=(M,)),)),
        Namespace(2, M, (M,), (Interface(2, M, "veth", True, peer_index=1),)),
    ),
    pairs=((End(1, 1), End(2, 2)),),
    notes=(M,),
)
PICTURE = Picture(M, M, "svg", 1, 0.1, M, (M,), WIRING)

ROOM = Room(M, M, M, [M], M, instructor_token=M, seat_tokens={M: M})
SEAT_EVENTS = [SeatEvent(M, FAILED, M, 1.0), SeatEvent(M, M, M)]
SCREEN = guide_screen.TerminalScreen()


def progress() -> None:
    with printers.progress(M, verbose=True) as say:
        say(M)


def seat_progress() -> None:
    with live.seat_progress(M) as report:
        report(SeatEvent(M, M, M, 3.0))
        report(SeatEvent(M, M))  # a line-less event keeps the seat's last line


def check_runs() -> None:
    printers.print_check_run(CHECKS, LAB, as_json=False)
    printers.print_check_run(CHECKS_NOT_RUN, LAB, as_json=False)


def guide_verdicts() -> None:
    printers.show_guide_verdict(CHECKS)
    printers.show_guide_verdict(CHECKS_NOT_RUN)


def docs() -> None:
    printers.print_docs([Path(M)], check_only=False)
    printers.print_docs([Path(M)], check_only=True)


def ask() -> None:
    assert printers.ask(M) == M


CASES: dict[str, Callable[[], object]] = {
    "printers.progress": progress,
    "printers.error": lambda: printers.error(ERROR),
    "printers.warning": lambda: printers.warning(M),
    "printers.note": lambda: printers.note(M),
    "printers.interrupted": printers.interrupted,
    "printers.print_json": lambda: printers.print_json({M: M}),
    "printers.print_labs": lambda: printers.print_labs([LAB]),
    "printers.print_status": lambda: printers.print_status([STATUS], as_json=False),
    "printers.print_up": lambda: printers.print_up(UP),
    "printers.print_pool_fill": lambda: printers.print_pool_fill(POOL_FILL),
    "printers.print_pool_status": lambda: printers.print_pool_status(POOLED, as_json=False),
    "printers.print_pool_drain": lambda: printers.print_pool_drain([M]),
    "printers.print_run": lambda: printers.print_run(M, [OUTCOME]),
    "printers.print_destroyed": lambda: printers.print_destroyed([M]),
    "printers.print_boxes": lambda: printers.print_boxes([BOX]),
    "printers.print_box_ready": lambda: printers.print_box_ready(M),
    "printers.print_pruned": lambda: printers.print_pruned([M]),
    "printers.announce_step": lambda: printers.announce_step(LAB, STEP, "20.10"),
    "printers.print_check_run": check_runs,
    "printers.verify_event": lambda: printers.verify_event(M, M),
    "printers.print_verify": lambda: printers.print_verify(REPORTS, as_json=False),
    "printers.print_recordings": lambda: printers.print_recordings(REPORTS),
    "printers.print_doctor": lambda: printers.print_doctor(HEALTH, as_json=False),
    "printers.show_diff": lambda: printers.show_diff(DIFF),
    "printers.guide_after_prompt": lambda: printers.guide_after_prompt(retry=True),
    "printers.show_guide_step": lambda: printers.show_guide_step(1, 1, STEP, "20.10"),
    "printers.show_guide_verdict": guide_verdicts,
    "printers.guide_already_finished": lambda: printers.guide_already_finished(M),
    "printers.guide_step_failed": printers.guide_step_failed,
    "printers.guide_finished": lambda: printers.guide_finished(M, 1),
    "printers.guide_stopped": printers.guide_stopped,
    "printers.print_guide_end": lambda: (
        printers.print_guide_end(M, M, quit=False, done=0, total=1),
        printers.print_guide_end(M, None, quit=True, done=0, total=1),
    ),
    "printers.print_lint": lambda: printers.print_lint(LINTED),
    "printers.print_docs": docs,
    "printers.ask": ask,
    "printers.print_new": lambda: printers.print_new(Path(M)),
    "printers.print_rendered": lambda: printers.print_rendered(Path(M)),
    "printers.print_images_saved": lambda: printers.print_images_saved(M, M),
    "printers.print_images_loaded": lambda: printers.print_images_loaded(M),
    "views.print_trace": lambda: views.print_trace(TRACE, as_json=False),
    "views.print_packets": lambda: views.print_packets(WALKS),
    "views.print_picture": lambda: views.print_picture(PICTURE, as_json=False),
    "views.guide_keys": lambda: views.guide_keys(picture=True, trace=True),
    "views.wiring_json": lambda: printers.print_json(views.wiring_json(WIRING)),
    "live.seat_progress": seat_progress,
    "live.print_up": lambda: live.print_up(ROOM, SEAT_EVENTS, 1.0),
    "live.print_status": lambda: live.print_status(
        [(ROOM, [SeatStatus(M, M, M, [M])])], as_json=False
    ),
    "live.print_down": lambda: live.print_down(M, SEAT_EVENTS),
    "live.print_urls": lambda: live.print_urls(ROOM, M),
    "guide_screen.TerminalScreen.step": lambda: SCREEN.step(1, 1, STEP, "20.10"),
    "guide_screen.TerminalScreen.ask_before": lambda: SCREEN.ask_before(),
    "guide_screen.TerminalScreen.ask_after": lambda: SCREEN.ask_after(retry=True, trace=True),
    "guide_screen.TerminalScreen.already_finished": lambda: SCREEN.already_finished(M),
    "guide_screen.TerminalScreen.resuming": lambda: SCREEN.resuming(M, 1, 1),
    "guide_screen.TerminalScreen.running": SCREEN.running,
    "guide_screen.TerminalScreen.diff": lambda: SCREEN.diff(DIFF),
    "guide_screen.TerminalScreen.command_failed": SCREEN.command_failed,
    "guide_screen.TerminalScreen.verdict": lambda: SCREEN.verdict(CHECKS),
    "guide_screen.TerminalScreen.finished": lambda: SCREEN.finished(M, 1),
    "guide_screen.TerminalScreen.picture": lambda: SCREEN.picture(PICTURE),
    "guide_screen.TerminalScreen.tracing": lambda: SCREEN.tracing(M, M),
    "guide_screen.TerminalScreen.trace": lambda: SCREEN.trace(TRACE),
    "guide_screen.TerminalScreen.walk": lambda: SCREEN.walk(KERNEL_WALK),
    "kernel.print_walk": lambda: kernel_view.print_walk(KERNEL_WALK),
    "kernel.print_kernel_view": lambda: kernel_view.print_kernel_view({"btf": True}),
    "guide_screen.TerminalScreen.error": lambda: SCREEN.error(ERROR),
}


# A walk whose every text (the command, a namespace's and an interface's name, where a
# packet was dropped and why) carries the markers.
KERNEL_WALK = KernelWalk(
    machine=M,
    command=M,
    flows=[[Hop(netns=M, dev=M, direction="out", src=M, dst=M)]],
    drops=[KernelEvent("drop", 1, M, 2, M, M, reason=12, location=M)],
    reasons={12: M},
)


def public_functions(module: ModuleType) -> set[str]:
    """The public functions `module` defines (not those it imports), and the public
    methods of the classes it defines."""
    short = module.__name__.rpartition(".")[2]
    found = set()
    for name, member in inspect.getmembers(module):
        if name.startswith("_") or getattr(member, "__module__", None) != module.__name__:
            continue
        if inspect.isfunction(member):
            found.add(f"{short}.{name}")
        elif inspect.isclass(member):
            methods = inspect.getmembers(member, inspect.isfunction)
            found |= {f"{short}.{name}.{m}" for m, _ in methods if not m.startswith("_")}
    return found


def test_every_printer_has_a_case() -> None:
    printers_found = set().union(
        *(public_functions(m) for m in (printers, views, live, guide_screen, kernel_view))
    )
    assert printers_found - CASES.keys() == set(), "printers without a case below"
    assert CASES.keys() - printers_found == set(), "cases of printers that are gone"


@pytest.fixture(autouse=True)
def wide_consoles() -> Iterator[None]:
    """Both consoles wide, whatever $COLUMNS says, so no table cuts a marker short."""
    widths = [(c, c.width) for c in (console.out, console.err)]
    for c, _ in widths:
        c.width = 1000
    yield
    for c, width in widths:
        c.width = width


def answer(prompt: str) -> str:
    """click's prompt as `input` would show it, answered with the markers (the guide's
    prompts go to click, which reads no markup: they must reach the screen as they are)."""
    sys.stdout.write(prompt)
    return M


@pytest.mark.parametrize("name", sorted(CASES))
def test_outside_text_is_printed_as_it_is(
    name: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(click.termui, "visible_prompt_func", answer)
    CASES[name]()
    captured = capsys.readouterr()
    shown = captured.out + captured.err
    if name in NO_OUTSIDE_TEXT:
        return
    missing = [marker for marker in MARKERS if marker not in shown]
    assert missing == [], f"{name} lost {missing} from:\n{shown}"


def test_the_consoles_are_the_ones_printers_use() -> None:
    """One factory: the modules print on console.py's two consoles, not their own."""
    assert printers.out is console.out and printers.err is console.err
    assert views.out is console.out
    assert live.out is console.out and live.err is console.err


def test_the_test_would_see_unescaped_markup() -> None:
    """The control: rich, given the markers as markup, loses or refuses them."""
    from rich.errors import MarkupError

    record = console.make_console()
    with record.capture() as capture:
        record.print("[docker] [bold]")
    assert "[docker]" not in capture.get() and "[bold]" not in capture.get()
    with pytest.raises(MarkupError):
        record.print("Error: [/tmp/x] missing")
