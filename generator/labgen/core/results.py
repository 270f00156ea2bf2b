"""What verbs return and ui.py prints: small frozen records, no behaviour.

Here, apart from the verbs, so that ui.py depends on no verb module and a verb's
result can be printed for people or as JSON by one renderer.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class CheckResult:
    """One check's verdict."""

    name: str
    title: str
    step: str | None
    outcome: str  # passed, failed, error, skipped
    message: str
    duration: float
    until: str | None = None  # the step after which it stops holding (its marker's until=)

    @property
    def ok(self) -> bool:
        return self.outcome == "passed"


# A check run's verdict: nothing ran is never a pass.
CHECKS_PASSED = "passed"  # at least one check ran, and every one passed
CHECKS_FAILED = "failed"  # a check failed or errored, or the checks could not run
NOTHING_CHECKED = "nothing-checked"  # the checks ran, and none applied to the state


@dataclass(frozen=True)
class CheckRun:
    """The verdict of one check run: which state was checked and each check's result.

    `problems`: why checks could not run or be collected (a checks module that does
    not import, a check naming an unknown step). Never ok with a problem.
    """

    lab: str
    target: str
    only: bool
    results: list[CheckResult]
    problems: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        """CHECKS_PASSED, CHECKS_FAILED or NOTHING_CHECKED.

        >>> CheckRun("lab", "step", False, []).verdict
        'nothing-checked'
        """
        if self.problems or not all(r.ok for r in self.results):
            return CHECKS_FAILED
        return CHECKS_PASSED if self.results else NOTHING_CHECKED

    @property
    def ok(self) -> bool:
        """Checks ran and all passed: never true of a run that checked nothing."""
        return self.verdict == CHECKS_PASSED

    def to_json(self) -> dict[str, object]:
        """The run for `labgen check --json` and the workshop's Check button."""
        return {
            "lab": self.lab,
            "target_step": self.target,
            "only_target": self.only,
            "ok": self.ok,
            "verdict": self.verdict,
            "problems": self.problems,
            "results": [asdict(r) for r in self.results],
        }


@dataclass(frozen=True)
class UpResult:
    """What `labgen up` did."""

    instance: str
    lab: str
    provider: str
    engine: str
    reused: bool
    seconds: float
    box_built: bool
    claimed: bool = False  # from the warm pool (machine/pool.py)


@dataclass(frozen=True)
class StatusRow:
    """One machine in `labgen status`."""

    instance: str
    lab: str
    provider: str
    engine: str
    state: str
    steps_run: list[str]
    created: str
    path: str
    host: str = "local"  # the registered host it runs on ("local": this machine)


@dataclass(frozen=True)
class StepOutcome:
    """One step run on a machine: its exit status, time and (when captured) output."""

    step: str
    exit_code: int
    seconds: float
    output: str = ""

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


# A step's verdict in `labgen verify`.
PASS = "pass"  # checks failed before, command succeeded, checks pass after
RAN = "ran"  # a step without checks of its own whose command succeeded
FAIL = "fail"  # command failed, or a check failed (or did not run) after the step
VACUOUS = "vacuous"  # a check already passed before its step
SKIPPED = "skipped"  # not reached: an earlier step failed
NOT_APPLICABLE = "n/a"  # the lab says the step cannot be shown on this engine


@dataclass
class StepReport:
    """One step's verdict in `labgen verify` (filled in as the step goes)."""

    step: str
    title: str
    status: str = SKIPPED
    seconds: float = 0.0
    reason: str = ""
    checks: list[CheckResult] = field(default_factory=list)
    output: str = ""
    # Against the recording of this engine (labgen/recordings.py): "" not compared (the
    # step did not run, or the engine has no recordings), SAME, DRIFT or MISSING.
    recording: str = ""
    drift: str = ""  # the unified diff, recorded -> now, after normalisation


# A step's output against its recording.
SAME = "same"
DRIFT = "drift"  # the normalised output differs: `drift` holds the diff
MISSING = "missing"  # the engine has recordings, but none of this step: never "no drift"

# A lab run's recordings.
NO_RECORDINGS = "none"  # the lab has none for this engine: verified as without them
COMPARED = "compared"
RECORDED = "recorded"  # --record: compared, then written


@dataclass
class LabReport:
    """One lab's verdict in `labgen verify`."""

    lab: str
    machine: str
    steps: list[StepReport]
    engine: str = ""
    error: str = ""
    seconds: float = 0.0
    destroyed: bool = False
    docker: str = ""  # the engine's exact version, as the machine's `docker version` says
    recordings: str = ""  # NO_RECORDINGS, COMPARED or RECORDED ("" not reached)
    strict: bool = False  # drift, or a step without recording, fails the run
    claimed: bool = False  # its machine came from the warm pool (as fresh as a made one)
    host: str = ""  # verify --hosts: the host it ran on ("local" for this one); "" without

    @property
    def drifted(self) -> list[StepReport]:
        """Steps whose output differs from the recording, or that have none."""
        return [s for s in self.steps if s.recording in (DRIFT, MISSING)]

    @property
    def ok(self) -> bool:
        done = all(s.status in (PASS, RAN, NOT_APPLICABLE) for s in self.steps)
        ran = done and not self.error and any(s.status in (PASS, RAN) for s in self.steps)
        strict = self.strict and self.recordings == COMPARED
        return ran and not (strict and self.drifted)

    def to_json(self) -> dict[str, object]:
        return {**asdict(self), "ok": self.ok, "drift": bool(self.drifted)}


@dataclass(frozen=True)
class LintReport:
    """The problems of one lab folder, as `labgen lint` found them (none when it is fine)."""

    path: Path
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, object]:
        return {"path": str(self.path), "ok": self.ok, "problems": self.problems}


@dataclass(frozen=True)
class Pooled:
    """One pooled machine, as `labgen pool status` shows it."""

    name: str
    provider: str
    engine: str
    created: str
    trouble: str | None  # None: ready to be claimed

    @property
    def ready(self) -> bool:
        return self.trouble is None

    def to_json(self) -> dict[str, object]:
        return {**asdict(self), "ready": self.ready}


@dataclass(frozen=True)
class PoolMade:
    """One machine `labgen pool fill` made, and how long it took."""

    name: str
    engine: str
    seconds: float


@dataclass(frozen=True)
class PoolFill:
    """What `labgen pool fill` did: the machines it made, and how many were ready."""

    provider: str
    made: list[PoolMade]
    already_ready: int


@dataclass
class GuideResult:
    """How a walk through `labgen guide` ended."""

    lab: str
    completed: int
    total: int
    failed_step: str | None = None
    quit: bool = False


@dataclass(frozen=True)
class StepDone:
    """A step a seat has done: when (epoch seconds), found by whom, and how long it took
    since the seat's previous step was done (or since its attendee was first seen)."""

    step: str
    at: float
    source: str  # check, run-for-me (then a check), background
    seconds: float | None  # None: nothing before it to measure from


@dataclass(frozen=True)
class SeatProgress:
    """One seat in `workshop report`: what its attendee did, and where they are now."""

    seat: str
    attendee: str
    machine: str  # ready, resetting, failed
    started: float  # epoch seconds the attendee was first seen (0: never)
    done: list[StepDone]
    at_step: str  # the first checked step not done ("" when all are)
    at_state: str  # that step's cell: not-yet or failing
    since: float  # when the seat got to that step (epoch seconds; 0: unknown)
    last_failure: str  # why that step's last Check failed
    attempts: dict[str, int]  # step -> Check presses and "Run it for me"s


@dataclass(frozen=True)
class StepSummary:
    """One step over the whole room: how many got there, how long it took, what failed."""

    step: str
    title: str
    checked: bool
    reached: int  # seats that have it done
    median_seconds: float | None
    slowest_seconds: float | None
    slowest_seat: str
    attempts: int  # Check presses and "Run it for me"s, every seat
    failures: int  # Check presses that failed
    commonest_failure: str
    commonest_count: int
    here_now: int  # seats whose next step this is


@dataclass(frozen=True)
class WorkshopReport:
    """`labgen workshop report`: the room's database read as per seat and per step."""

    workshop: str
    lab: str
    created: str
    at: float  # when the report was made (epoch seconds)
    seats: list[SeatProgress]
    steps: list[StepSummary]

    def to_json(self) -> dict[str, object]:
        return asdict(self)
