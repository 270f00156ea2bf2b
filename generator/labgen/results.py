"""What verbs return and ui.py prints: small frozen records, no behaviour.

Here, apart from the verbs, so that ui.py depends on no verb module and a verb's
result can be printed for people or as JSON by one renderer.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class CheckResult:
    """One check's verdict."""

    name: str
    title: str
    step: str | None
    outcome: str  # passed, failed, error, skipped
    message: str
    duration: float

    @property
    def ok(self) -> bool:
        return self.outcome == "passed"


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
    def ok(self) -> bool:
        return not self.problems and all(r.ok for r in self.results)

    def to_json(self) -> dict[str, object]:
        return {
            "lab": self.lab,
            "target_step": self.target,
            "only_target": self.only,
            "ok": self.ok,
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

    @property
    def ok(self) -> bool:
        done = all(s.status in (PASS, RAN, NOT_APPLICABLE) for s in self.steps)
        return done and not self.error and any(s.status in (PASS, RAN) for s in self.steps)

    def to_json(self) -> dict[str, object]:
        return {**asdict(self), "ok": self.ok}
