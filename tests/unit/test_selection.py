"""Which checks apply after which step: labgen.inmachine.selection.is_selected, and the
pytest plugin that applies it to a lab's checks (run in a child pytest, no host)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from labgen.inmachine.selection import StepMarker, is_selected

ORDER = ["a", "b", "c", "d"]


def holds_after(marker: StepMarker, only: bool = False) -> list[str]:
    """The steps after which a check with `marker` is selected."""
    return [target for target in ORDER if is_selected(ORDER, marker, target, only)]


def test_a_check_holds_from_its_step_on() -> None:
    assert holds_after(StepMarker("b")) == ["b", "c", "d"]
    assert holds_after(StepMarker("a")) == ORDER
    assert holds_after(StepMarker("d")) == ["d"]


def test_until_closes_the_window_at_that_step() -> None:
    # After b, and no longer once d has run: b and c.
    assert holds_after(StepMarker("b", until="d")) == ["b", "c"]
    assert holds_after(StepMarker("a", until="b")) == ["a"]
    assert holds_after(StepMarker("c", until="d")) == ["c"]


def test_only_selects_just_the_steps_own_checks() -> None:
    assert holds_after(StepMarker("b"), only=True) == ["b"]
    assert holds_after(StepMarker("b", until="d"), only=True) == ["b"]
    # A check whose window has closed is still the step's own check.
    assert is_selected(ORDER, StepMarker("b", until="c"), "b", only=True)
    assert not is_selected(ORDER, StepMarker("b", until="c"), "c", only=True)


def test_the_docstring_examples_hold() -> None:
    assert is_selected(["a", "b", "c"], StepMarker("a", until="c"), "b", only=False)
    assert not is_selected(["a", "b", "c"], StepMarker("a", until="c"), "c", only=False)


# --- the plugin, on a checks file that needs no machine -----------------------------

CHECKS = '''
import pytest

@pytest.mark.step("a")
def test_after_a():
    """a's effect is there"""

@pytest.mark.step("b", until="d")
def test_between_b_and_d():
    """b's server runs until d stops it"""

@pytest.mark.step("c")
def test_c_fails():
    assert 1 == 2, "c's rule is missing"

@pytest.mark.step("nope")
def test_unknown_step():
    pass

@pytest.mark.step("a", until="never")
def test_unknown_until():
    pass

def test_no_marker():
    pass
'''


def run_plugin(tmp_path: Path, target: str, only: bool = False) -> dict[str, dict]:
    checks = tmp_path / "checks.py"
    checks.write_text(CHECKS, encoding="utf-8")
    report = tmp_path / f"report-{target}-{only}.json"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(checks),
            "-p",
            "labgen.inmachine.pytest_plugin",
            f"--labgen-report={report}",
            f"--labgen-order={','.join(ORDER)}",
            f"--labgen-target={target}",
            *(["--labgen-only"] if only else []),
            "-c",
            "/dev/null",
            f"--rootdir={tmp_path}",
            "-p",
            "no:cacheprovider",
            "-q",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        # These checks need no testinfra `host`: only labgen's plugin, loaded by -p.
        env={**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},
        timeout=60,
    )
    assert report.is_file(), "the plugin wrote no report"
    return {r["name"]: r for r in json.loads(report.read_text())["results"]}


@pytest.mark.parametrize(
    "target, only, selected",
    [
        ("a", False, {"test_after_a"}),
        ("c", False, {"test_after_a", "test_between_b_and_d", "test_c_fails"}),
        ("d", False, {"test_after_a", "test_c_fails"}),
        ("c", True, {"test_c_fails"}),
    ],
)
def test_plugin_runs_the_checks_that_hold_and_reports_bad_markers(
    tmp_path: Path, target: str, only: bool, selected: set[str]
) -> None:
    results = run_plugin(tmp_path, target, only)
    errors = {"test_unknown_step", "test_unknown_until", "test_no_marker"}
    # Checks tied to no known step are reported as errors, never silently skipped.
    assert set(results) == selected | errors
    for name in errors:
        assert results[name]["outcome"] == "error", results[name]
    assert "nope" in results["test_unknown_step"]["message"]
    assert "never" in results["test_unknown_until"]["message"]
    if "test_after_a" in results:
        assert results["test_after_a"]["outcome"] == "passed"
        assert results["test_after_a"]["title"] == "a's effect is there"  # docstring line
        assert results["test_after_a"]["step"] == "a"
    if "test_c_fails" in results:
        assert results["test_c_fails"]["outcome"] == "failed"
        assert "c's rule is missing" in results["test_c_fails"]["message"]
    if "test_between_b_and_d" in results:
        assert results["test_between_b_and_d"]["until"] == "d"
