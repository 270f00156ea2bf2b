"""The pytest plugin labgen loads into a lab's checks: the `step` marker and a JSON report.

Lab authors write ordinary testinfra checks and tie each to the step after which
it must hold:

    >>> @pytest.mark.step("publish-port")
    ... def test_dnat_rule(host): ...

`until="stop-server"` says the check stops holding once that later step has run.
"""

from __future__ import annotations

import inspect
import json
import re
import time
from pathlib import Path
from typing import Any

import pytest

from .selection import StepMarker, is_selected


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("labgen")
    group.addoption("--labgen-report", help="write check results as JSON to this file")
    group.addoption("--labgen-order", default="", help="the lab's step ids, comma-separated")
    group.addoption("--labgen-target", default="", help="check the state after this step")
    group.addoption("--labgen-only", action="store_true", help="only the target step's own checks")
    group.addoption(
        "--labgen-ending",
        action="store_true",
        help="also the checks whose until= is the target step (they must fail now)",
    )
    group.addoption("--labgen-engine", default="", help="the machine's Docker engine, e.g. 28.5")


class DockerEngine(str):
    """The machine's Docker engine ("20.10", "28.5"), comparing as a version.

    >>> DockerEngine("28.5") >= "28.0", DockerEngine("20.10") < "26.1"
    (True, True)
    """

    def _key(self, other: object) -> tuple[tuple[int, ...], tuple[int, ...]]:
        def parts(value: object) -> tuple[int, ...]:
            return tuple(int(p) for p in str(value).split("."))

        return parts(self), parts(other)

    def __lt__(self, other: object) -> bool:
        mine, theirs = self._key(other)
        return mine < theirs

    def __le__(self, other: object) -> bool:
        mine, theirs = self._key(other)
        return mine <= theirs

    def __gt__(self, other: object) -> bool:
        mine, theirs = self._key(other)
        return mine > theirs

    def __ge__(self, other: object) -> bool:
        mine, theirs = self._key(other)
        return mine >= theirs

    __hash__ = str.__hash__


@pytest.fixture
def engine(request: pytest.FixtureRequest) -> DockerEngine:
    """The Docker engine the checks expect: the machine's (labgen passes it)."""
    value = request.config.getoption("labgen_engine")
    if not value:
        pytest.fail("labgen did not say which Docker engine the machine has (--labgen-engine)")
    return DockerEngine(value)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "step(id, until=None): the lab step after which this check must hold"
    )
    config.stash[_RESULTS] = []
    config.stash[_ERRORS] = []
    config.pluginmanager.register(_CollectionErrors(config), "labgen-collection-errors")


_RESULTS = pytest.StashKey[list[dict[str, Any]]]()
# What kept checks from being collected (a module that does not import): never a pass.
_ERRORS = pytest.StashKey[list[str]]()


class _CollectionErrors:
    """Records why a checks module could not be collected (it does not import)."""

    def __init__(self, config: pytest.Config):
        self.config = config

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            lines = [line for line in str(report.longrepr).splitlines() if line.strip()]
            # The last lines name the import error and where it happened.
            detail = "\n".join(lines[-6:])
            self.config.stash[_ERRORS].append(f"the checks did not load: {detail}")


def marker_of(item: pytest.Item) -> StepMarker | None:
    mark = item.get_closest_marker("step")
    if mark is None or not mark.args:
        return None
    return StepMarker(step=str(mark.args[0]), until=mark.kwargs.get("until"))


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    order = [s for s in config.getoption("labgen_order").split(",") if s]
    if not order:
        return
    target = config.getoption("labgen_target") or order[-1]
    only = bool(config.getoption("labgen_only"))
    ending = bool(config.getoption("labgen_ending"))
    keep, drop = [], []
    for item in items:
        marker = marker_of(item)
        problem = None
        if marker is None:
            problem = 'has no @pytest.mark.step("STEP") marker'
        elif marker.step not in order:
            problem = f"names unknown step {marker.step!r}"
        elif marker.until is not None and marker.until not in order:
            problem = f"names unknown step {marker.until!r} in until="
        if problem:
            # Reported as a failure of the check itself: never silently skipped.
            config.stash[_RESULTS].append(
                _result(item, marker, "error", f"check {item.name} {problem}", 0.0)
            )
            drop.append(item)
        elif marker is not None and is_selected(order, marker, target, only, ending):
            keep.append(item)
        else:
            drop.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def check_title(name: str, doc: str | None) -> str:
    """What a check is called in `labgen check` and on the lab's page: its docstring's
    summary (the first paragraph, however many lines it wraps over, as one line), else
    its name without `test_`, with spaces for underscores.

    >>> check_title("test_dnat_rule", '''the nat table sends port 5000
    ...     to the container
    ...
    ...     Details the reader does not need.''')
    'the nat table sends port 5000 to the container'
    >>> check_title("test_dnat_rule", None)
    'dnat rule'
    """
    summary = re.split(r"\n\s*\n", inspect.cleandoc(doc or "").strip(), maxsplit=1)[0]
    if summary.strip():
        return " ".join(summary.split())
    return name.removeprefix("test_").replace("_", " ")


def _result(
    item: pytest.Item, marker: StepMarker | None, outcome: str, message: str, duration: float
) -> dict[str, Any]:
    doc = getattr(getattr(item, "function", None), "__doc__", None)
    return {
        "name": item.name,
        "title": check_title(item.name, doc),
        "step": marker.step if marker else None,
        "until": marker.until if marker else None,
        "outcome": outcome,
        "message": message,
        "duration": round(duration, 3),
    }


# An old-style hook wrapper: the plugin also runs inside lab machines, on Debian's
# pytest 7, where new-style wrappers do not exist yet.
@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    outcome = yield
    report = outcome.get_result()
    # A fixture that fails to set up or to clean up is the check's failure too: a
    # teardown error after a passing call would otherwise leave only the pass.
    failed_fixture = report.when in ("setup", "teardown") and report.failed
    skipped_setup = report.when == "setup" and report.skipped
    if report.when == "call" or failed_fixture or skipped_setup:
        item.config.stash[_RESULTS].append(_phase_result(item, call, report))


def _phase_result(
    item: pytest.Item, call: pytest.CallInfo[None], report: pytest.TestReport
) -> dict[str, Any]:
    """The result a phase's report records; a failed setup or teardown is an "error"."""
    message = ""
    if report.failed:
        crash = getattr(report.longrepr, "reprcrash", None)
        message = crash.message if crash is not None else str(report.longrepr)
    elif report.skipped:
        # A skip's longrepr is (file, line, reason).
        longrepr = report.longrepr
        message = "skipped: " + str(longrepr[-1] if isinstance(longrepr, tuple) else longrepr or "")
    if report.when == "call" or not report.failed:
        return _result(item, marker_of(item), report.outcome, message, report.duration)
    fixture = _failing_fixture(item, call)
    which = f"fixture {fixture!r}" if fixture else "a fixture"
    message = f"{which} of check {item.name} failed in {report.when}: {message}"
    result = _result(item, marker_of(item), "error", message, report.duration)
    if report.when == "teardown":
        # Its call already has a result under the check's own name.
        result["name"] = f"{item.name}[teardown]"
        result["title"] = f"{result['title']} (cleaning up {which} failed)"
    return result


def _failing_fixture(item: pytest.Item, call: pytest.CallInfo[None]) -> str | None:
    """The fixture whose code raised, found by its frame in the traceback."""
    if call.excinfo is None:
        return None
    # pytest keeps these private; a pytest without them only loses the fixture's name.
    info = getattr(item, "_fixtureinfo", None)
    codes = {}
    for name, defs in getattr(info, "name2fixturedefs", {}).items():
        for fixturedef in defs:
            func = getattr(fixturedef, "func", None)
            code = getattr(inspect.unwrap(func), "__code__", None) if callable(func) else None
            if code is not None:
                codes[code] = name
    for entry in reversed(call.excinfo.traceback):
        name = codes.get(entry.frame.code.raw)
        if name is not None:
            return name
    return None


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    path = session.config.getoption("labgen_report")
    if path:
        data = {
            "finished": time.time(),
            "results": session.config.stash[_RESULTS],
            "errors": session.config.stash[_ERRORS],
            "exitstatus": int(exitstatus),
        }
        Path(path).write_text(json.dumps(data, indent=2), encoding="utf-8")
