"""`labgen verify`: prove that a lab's material still works, step by step, on a fresh machine.

For each step, in order: its own checks must fail (a check that already holds proves
nothing), the step's command must succeed, and then the whole expected state must hold:
every check whose window contains the step passes (the earlier steps' too), and every
check whose until= is the step fails, as until promises. Checks that could not run
fail the step. Everything lint can find is found first, before
any machine starts.
"""

from __future__ import annotations

import contextlib
import datetime
import io
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from enum import Enum

import paramiko

from labgen import __version__
from labgen.checks.runner import run_checks
from labgen.core.context import Context
from labgen.core.errors import LabgenError, UsageError
from labgen.core.lab import Lab, Step
from labgen.core.results import (
    COMPARED,
    DRIFT,
    FAIL,
    MISSING,
    NO_RECORDINGS,
    NOT_APPLICABLE,
    PASS,
    RAN,
    RECORDED,
    SAME,
    VACUOUS,
    CheckRun,
    LabReport,
    StepReport,
)
from labgen.docs import recordings
from labgen.hosts import probe
from labgen.hosts import registry as hosts_registry
from labgen.machine import pool, providers, recipe, registry, ssh
from labgen.machine.instance import host_name
from labgen.machine.steps import Session, run_step
from labgen.network import wiring
from labgen.verbs.destroy import destroy as destroy_machines
from labgen.verbs.lint import lint_lab_dir
from labgen.verbs.up import up


class Destroy(str, Enum):
    ALWAYS = "always"
    NEVER = "never"
    ON_SUCCESS = "on-success"


Event = Callable[[str, str], None]  # (lab and engine, message)

# How much of a step's output a report keeps: all that the step runner captured, so
# that a recording is never cut short.
OUTPUT_KEPT = 65536


@dataclass(frozen=True)
class Recording:
    """What verify does with recorded outputs: `record` writes them (after a run that
    passed), `strict` makes drift, or a step without a recording, a failure."""

    record: bool = False
    strict: bool = False


@dataclass(frozen=True)
class Run:
    """One lab on one engine: a fresh machine each."""

    lab: Lab
    engine: str
    host: str = ""  # with --hosts: the host it goes on ("local" for this one)

    @property
    def label(self) -> str:
        where = f" on {self.host}" if self.host else ""
        return f"{self.lab.name}@{self.engine}{where}"


def plan(labs: Sequence[Lab], engines: str | None) -> list[Run]:
    """Which lab runs on which engine.

    `engines`: None, each lab on its default engine; "all", each lab on every engine
    it is verified on; else a comma-separated list, each lab on those of them it is
    verified on (a lab verified on none of them is a usage error).
    """
    if engines is None:
        return [Run(lab, lab.spec.engine) for lab in labs]
    if engines == "all":
        return [Run(lab, e) for lab in labs for e in lab.engines]
    wanted = [recipe.engine(e.strip()) for e in engines.split(",") if e.strip()]
    runs = [Run(lab, e) for lab in labs for e in wanted if e in lab.engines]
    missing = [lab.name for lab in labs if not any(r.lab is lab for r in runs)]
    if missing or not wanted:
        raise UsageError(
            f"lab(s) {', '.join(missing) or '?'} are verified on none of --engine {engines}",
            hint="`labgen verify LAB --engine all` runs a lab on every engine it names",
        )
    return runs


def spread(runs: Sequence[Run], hosts: str | None) -> list[Run]:
    """Deal the runs over `hosts` (comma-separated registered host names, `local` for
    this machine) in turn; None leaves them here, unnamed. An unknown host is a usage
    error naming the known ones.

    >>> lab = Lab.__new__(Lab)
    >>> [r.host for r in spread([Run(lab, "20.10")] * 3, "local")]
    ['local', 'local', 'local']
    """
    if hosts is None:
        return list(runs)
    names = list(dict.fromkeys(h.strip() for h in hosts.split(",") if h.strip()))
    if not names:
        raise UsageError(
            f"--hosts {hosts!r} names no host",
            hint="name hosts from `labgen hosts list`, e.g. --hosts local,rack1",
        )
    for name in names:
        host_name(name)  # an unknown host: UsageError naming the known ones
    return [replace(run, host=names[i % len(names)]) for i, run in enumerate(runs)]


def check_hosts(runs: Sequence[Run]) -> None:
    """Refuse, before any machine, a host of the runs that does not answer or lacks the
    base image of an engine it is given (the fix: `labgen hosts push NAME --engine E`)."""
    wanted: dict[str, set[str]] = {}
    for run in runs:
        if host_name(run.host):  # "" : this machine, whose boxes prepare() builds
            wanted.setdefault(run.host, set()).add(run.engine)
    images = probe.base_images()
    for name, engines in wanted.items():
        found = probe.examine(hosts_registry.get(name))
        if not found.answers:
            what, fix = found.problems[0] if found.problems else (f"{name} does not answer", "")
            raise UsageError(f"--hosts: {what}; no machine was started", hint=fix)
        missing = sorted(engines - set(found.engines), key=recipe.engine_key)
        if missing:
            engine = missing[0]
            raise UsageError(
                f"--hosts: {name} lacks the base image {images[engine]} (engine {engine}); "
                "no machine was started",
                hint=f"`labgen hosts push {name} --engine {engine}` copies it over SSH",
            )


def prepare(ctx: Context, runs: Sequence[Run]) -> Context:
    """Lint the labs, choose the provider and build its boxes, before any machine starts.

    Returns the context with the chosen provider, for every run's machine.
    """
    labs = list({run.lab.path: run.lab for run in runs}.values())
    problems = [p for lab in labs for p in lint_lab_dir(lab.path).problems]
    for run in runs:  # a recording that does not parse is bad input too
        try:
            recordings.load(run.lab.path, run.engine)
        except recordings.RecordingError as exc:
            problems.append(exc.message)
    if problems:
        raise UsageError("lint found problems; no machine was started:\n" + "\n".join(problems))
    check_hosts(runs)
    provider = providers.choose(ctx.provider, ctx.say)
    here = {run.engine for run in runs if not host_name(run.host)}
    for engine in sorted(here, key=recipe.engine_key):
        provider.ensure_box(ctx.say, engine=engine)
    return replace(ctx, provider=provider.name)


def verify_labs(
    ctx: Context,
    runs: Sequence[Run],
    destroy: Destroy,
    jobs: int,
    on_event: Event,
    recording: Recording = Recording(),
    ahead: bool = True,
) -> list[LabReport]:
    """Verify each run on its own fresh machine, `jobs` at a time on each host (runs
    spread over hosts run `jobs` per host); reports in run order.

    With `ahead` (and a provider that keeps a warm pool), machines for the runs after
    the first `jobs` are made in the pool while those run, and each run claims one
    (machine/pool.py: a claimed machine is a fresh one); those left unclaimed are
    destroyed at the end. Call `prepare` first: it lints and picks the provider.
    """
    lock = threading.Lock()

    def event(label: str, message: str) -> None:
        with lock:
            on_event(label, message)

    # The pool made ahead is this machine's: runs on other hosts make their own machines.
    here = [run for run in runs if not host_name(run.host)]
    later = [run.engine for run in here[jobs:]] if ahead else []
    provider = providers.get(ctx.provider) if ctx.provider else None
    filler = pool.Ahead(provider, later, jobs, lambda m: event("pool", m)) if provider else None
    slots = {run.host: threading.Semaphore(jobs) for run in runs}

    def one(run: Run) -> LabReport:
        with slots[run.host]:
            return verify_lab(ctx, run, destroy, event, recording)

    with contextlib.ExitStack() as stack:
        if filler is not None:
            stack.enter_context(filler)
        with ThreadPoolExecutor(max_workers=max(1, jobs) * len(slots)) as workers:
            futures = [workers.submit(one, run) for run in runs]
            try:
                return [f.result() for f in futures]
            except KeyboardInterrupt:
                # Runs not started never start; those running stop waiting on their
                # machines and destroy them before the pool's exit returns.
                workers.shutdown(wait=False, cancel_futures=True)
                ssh.interrupt_all()
                raise


def machine_name(run: Run) -> str:
    """The machine verify brings up for `run`."""
    return f"verify-{recipe.engine_slug(run.engine)}-{run.lab.name}"[:40].rstrip("-")


def verify_lab(
    ctx: Context, run: Run, destroy: Destroy, event: Event, recording: Recording = Recording()
) -> LabReport:
    """Bring up a fresh machine for the run, walk its lab's steps comparing each output
    with its recording, record them if asked, destroy as asked."""
    started = time.monotonic()
    name, lab = machine_name(run), run.lab
    report = LabReport(lab.name, name, [StepReport(s.id, s.title) for s in lab.steps], run.engine)
    report.strict = recording.strict
    report.host = run.host
    instance = registry.instance_named(name)
    if instance.exists():
        report.error = f"a machine called {name!r} already exists; `labgen destroy {name}` first"
        return report
    quiet = replace(ctx, say=lambda line: None, engine=run.engine, host=run.host or None)
    try:
        event(run.label, "bringing up a fresh machine")
        report.claimed = up(quiet, str(lab.path), name).claimed
        if report.claimed:
            event(run.label, "claimed a machine from the warm pool")
        drawn = _walk_steps(name, report, lambda message: event(run.label, message))
        report.recordings = report.recordings or COMPARED  # _walk_steps says when none
        if recording.record and report.ok:
            written = record(lab, report, drawn)
            report.recordings = RECORDED
            event(run.label, f"recorded: {written} file(s) written, the others unchanged")
    except LabgenError as exc:
        report.error = exc.message
    finally:
        if instance.exists() and (
            destroy is Destroy.ALWAYS or (destroy is Destroy.ON_SUCCESS and report.ok)
        ):
            event(run.label, "destroying the machine")
            try:
                destroy_machines(quiet, [name], False)
                report.destroyed = True
            except LabgenError as exc:
                report.error = report.error or f"destroy failed: {exc.message}"
        report.seconds = round(time.monotonic() - started, 1)
    if not report.ok and host_name(run.host):
        _blame_host(report, run.host)
    if not report.destroyed and instance.exists():
        event(run.label, f"kept the machine {name} (--destroy {destroy.value})")
    event(run.label, "PASSED" if report.ok else "FAILED")
    return report


def _blame_host(report: LabReport, host: str) -> None:
    """A failed run on another host: when that host no longer answers, say so first, so
    the failure reads as the host's, not the lab's."""
    found = probe.examine(hosts_registry.get(host))
    if not found.answers:
        what = found.problems[0][0] if found.problems else f"{host} does not answer"
        gone = f"host {host} stopped answering during the run ({what})"
        report.error = f"{gone}; {report.error}" if report.error else gone


def kept_machines(reports: Sequence[LabReport]) -> list[str]:
    """The machines verify left standing (--destroy never, or on-success after a failure),
    each a machine one can get into: `labgen ssh NAME`, `labgen check NAME`."""
    standing = [r for r in reports if not r.destroyed]
    return [r.machine for r in standing if registry.instance_named(r.machine).exists()]


def _walk_steps(name: str, report: LabReport, event: Callable[[str], None]) -> dict[str, str]:
    """Walk the lab's steps, comparing outputs with the recordings; the wirings drawn
    after the steps marked `draw: true` (normalised JSON, by step) are returned."""
    instance, state, lab = registry.running(name)
    recorded = recordings.load(lab.path, state.engine)
    recorded_wirings = recordings.load_wirings(lab.path, state.engine)
    drawn: dict[str, str] = {}
    if not recorded:
        report.recordings = NO_RECORDINGS
        event(f"no recorded outputs for Docker {state.engine}: outputs are not compared")
    with ssh.connect(instance.ssh_config) as client:
        report.docker = docker_version(client)
        session = Session(instance, state, lab, client)
        for index, (step, step_report) in enumerate(
            zip(lab.steps, report.steps, strict=True), start=1
        ):
            began = time.monotonic()
            if state.engine in step.not_on:
                step_report.status = NOT_APPLICABLE
                step_report.reason = f"not on Docker {state.engine}: {step.not_on[state.engine]}"
                event(f"step {index}/{len(lab.steps)} {step.id}: {step_report.status}")
                continue
            _verify_step(session, step, step_report)
            step_report.seconds = round(time.monotonic() - began, 1)
            label = f"{lab.name}@{state.engine}"
            if step.draw and step_report.status in (PASS, RAN):
                picture = _draw(client, step_report)
                drawn.update({step.id: picture} if picture else {})
            if recorded and step_report.status in (PASS, RAN):
                compare(step_report, recorded.get(step.id), label, recordings.lab_rules(lab))
                if step.id in drawn:
                    compare_wiring(
                        step_report, recorded_wirings.get(step.id), drawn[step.id], label
                    )
            note = _RECORDING_NOTES.get(step_report.recording, "")
            event(f"step {index}/{len(lab.steps)} {step.id}: {step_report.status}{note}")
            if step_report.status not in (PASS, RAN):
                break
    return drawn


def _draw(client: paramiko.SSHClient, report: StepReport) -> str:
    """The machine's wiring now (labgen draw's reading of it), normalised as JSON; a step
    whose wiring cannot be read fails (a picture that was not drawn is never recorded)."""
    out, err = io.BytesIO(), io.BytesIO()
    code = ssh.run(client, wiring.GATHER_COMMAND, out, err)
    try:
        if code != 0:
            raise wiring.WiringError(f"exit {code}: {err.getvalue().decode(errors='replace')}")
        found = wiring.parse(out.getvalue().decode(errors="replace"))
    except wiring.WiringError as exc:
        report.status = FAIL
        report.reason = f"the machine's wiring after the step could not be read ({exc})"
        return ""
    return wiring.to_json(wiring.normalised(found))


def _verify_step(session: Session, step: Step, report: StepReport) -> None:
    """Before the step its own checks must fail; the step must succeed; after it, the
    whole expected state must hold (_judge_after)."""
    lab, config, engine = session.lab, session.instance.ssh_config, session.state.engine
    before = run_checks(lab, config, target=step.id, only=True, engine=engine)
    already = [r for r in before.results if r.ok]
    if before.problems:
        _fail(report, before, "its checks could not run")
        return
    if already:
        report.status = VACUOUS
        report.checks = before.results
        report.reason = "checks pass before the step ran, so they prove nothing: " + (
            ", ".join(r.name for r in already)
        )
        return
    outcome = run_step(session, step, capture=True)
    report.output = outcome.output[-OUTPUT_KEPT:]
    if not outcome.ok:
        report.status = FAIL
        report.reason = f"the step's command exited with status {outcome.exit_code}"
        return
    after = run_checks(lab, config, target=step.id, engine=engine, ending=True)
    _judge_after(report, step.id, after, has_own=bool(before.results))


def _judge_after(report: StepReport, step: str, after: CheckRun, has_own: bool) -> None:
    """The state after `step`: every check whose window holds it passes (the step's own,
    and the earlier ones not undone yet), and every check whose until= is `step` fails
    now, as until promises. PASS when the step has checks of its own, RAN when not."""
    report.checks = after.results
    reasons = list(after.problems)
    holding = [r for r in after.results if r.until != step]
    if has_own and not any(r.step == step for r in holding):
        reasons.append("no check of the step ran after it")
    for r in holding:
        if r.ok:
            continue
        message = r.message.strip()[:500]
        if r.step == step:
            reasons.append(f"check {r.name} failed: {message}")
        else:
            reasons.append(
                f"check {r.name} (from step {r.step}) no longer holds after step {step}: "
                f"{message}; if this step undoes it on purpose, mark it until={step!r}"
            )
    for r in after.results:
        if r.until != step or r.outcome == "failed":
            continue
        if r.ok:
            reasons.append(
                f"check {r.name} still holds after step {step}, though its until={step!r} "
                "says this step undoes it"
            )
        else:
            reasons.append(
                f"check {r.name} did not run ({r.outcome}) to show that step {step} undid "
                f"it: {r.message.strip()[:500]}"
            )
    report.status = FAIL if reasons else PASS if has_own else RAN
    report.reason = "; ".join(reasons)


def _fail(report: StepReport, run: CheckRun, why: str) -> None:
    report.status = FAIL
    report.checks = run.results
    failed = [f"check {r.name} failed: {r.message.strip()[:500]}" for r in run.results if not r.ok]
    report.reason = "; ".join(filter(None, [why, *run.problems, *failed]))


_RECORDING_NOTES = {
    DRIFT: ", output drifted from its recording",
    MISSING: ", no recording of this step",
}


def docker_version(client: paramiko.SSHClient) -> str:
    """The machine's Docker engine, exactly (`docker version`); "unknown" if it will not say."""
    out, err = io.BytesIO(), io.BytesIO()
    code = ssh.run(client, "docker version --format '{{.Server.Version}}'", out, err)
    version = out.getvalue().decode(errors="replace").strip()
    return version if code == 0 and version else "unknown"


def compare(
    step: StepReport,
    recorded: recordings.Recording | None,
    label: str,
    lab_rules: Sequence[recordings.Rule] = (),
) -> None:
    """Set the step's recording verdict: SAME, DRIFT (with the diff) or MISSING."""
    if recorded is None:
        step.recording = MISSING
        return
    now, _ = recordings.normalise(step.output, lab_rules)
    step.drift = recordings.diff(recorded.output, now, f"{label} step {step.step}")
    step.recording = DRIFT if step.drift else SAME


def compare_wiring(step: StepReport, recorded: str | None, now: str, label: str) -> None:
    r"""Add the drawn wiring's verdict to the step's: MISSING without a recorded one,
    DRIFT (its diff after the output's) when they differ.

    >>> step = StepReport("s", "S"); step.recording = SAME
    >>> compare_wiring(step, '{"a": 1}\n', '{"a": 2}\n', "lab@28.5"); step.recording == DRIFT
    True
    >>> print(step.drift, end="")
    --- recorded lab@28.5 step s wiring
    +++ now lab@28.5 step s wiring
    @@ -1 +1 @@
    -{"a": 1}
    +{"a": 2}
    """
    if recorded is None:
        step.recording = MISSING if step.recording != DRIFT else DRIFT
        return
    drift = recordings.diff(recorded, now, f"{label} step {step.step} wiring")
    if drift:
        step.drift = (step.drift or "") + drift
        step.recording = DRIFT


def record(lab: Lab, report: LabReport, drawn: dict[str, str] | None = None) -> int:
    """Write the recordings of a run that passed; returns how many files changed.

    A file whose output and Docker version are unchanged is left as it is (its date
    too), and recordings of steps that did not run (n/a here, or gone) are removed;
    so are the wirings of steps not drawn (`drawn`: by step, from `_walk_steps`).
    """
    drawn = drawn or {}
    today = datetime.datetime.now(datetime.timezone.utc).date().isoformat()
    written = 0
    ran = [s for s in report.steps if s.status in (PASS, RAN)]
    for step in ran:
        output, rules = recordings.normalise(step.output, recordings.lab_rules(lab))
        recording = recordings.Recording(
            lab.name,
            step.step,
            report.engine,
            report.docker,
            __version__,
            today,
            tuple(rules),
            output,
        )
        written += recordings.write(lab.path, recording)
    recordings.remove_stale(lab.path, report.engine, [s.step for s in ran])
    for step_id, text in drawn.items():
        written += recordings.write_wiring(lab.path, report.engine, step_id, text)
    recordings.remove_stale_wirings(lab.path, report.engine, drawn)
    return written
