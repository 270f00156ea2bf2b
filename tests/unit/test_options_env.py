"""$LABGEN_PROVIDER, $LABGEN_ENGINE and $LABGEN_LABS_PATH are read by click as the
options they stand for, so a bad value is refused as the option's would be, naming
the variable, before anything starts."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from unit_helpers import Outcome, instances_left, invoke_labgen

LAB = "port-forwarding"


def assert_refused(result: Outcome, pattern: str) -> None:
    """Exit 2, no traceback, and stderr matching `pattern`."""
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    assert result.returncode == 2, f"exit {result.returncode}:\n{output}"
    assert re.search(pattern, result.stderr, re.DOTALL), f"{pattern!r} not in:\n{result.stderr}"


@pytest.mark.parametrize(
    ("variable", "value"),
    [("LABGEN_PROVIDER", "parallels"), ("LABGEN_ENGINE", "99")],
)
def test_up_refuses_a_bad_value_from_the_environment(
    labgen_home: Path, variable: str, value: str
) -> None:
    result = invoke_labgen("up", LAB, env={variable: value})
    assert_refused(result, rf"env var: '{variable}'\): '{value}' is not one of")
    assert instances_left(labgen_home) == []


def test_verify_refuses_an_unknown_engine_from_the_environment(labgen_home: Path) -> None:
    result = invoke_labgen("verify", LAB, env={"LABGEN_ENGINE": "99"})
    assert_refused(result, r"unknown Docker engine '99'")
    assert instances_left(labgen_home) == []


def test_labs_path_holds_several_folders(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    assert invoke_labgen("new", "second-lab", "--dir", str(second)).returncode == 0
    listed = invoke_labgen("list", env={"LABGEN_LABS_PATH": f"{first}{os.pathsep}{second}"})
    assert listed.returncode == 0, listed.stderr
    assert "second-lab" in listed.stdout


@pytest.mark.parametrize(
    ("verb", "variables"),
    [
        ("up", ["LABGEN_PROVIDER", "LABGEN_ENGINE", "LABGEN_LABS_PATH"]),
        ("verify", ["LABGEN_PROVIDER", "LABGEN_ENGINE", "LABGEN_LABS_PATH"]),
    ],
)
def test_help_names_the_variables(verb: str, variables: list[str]) -> None:
    result = invoke_labgen(verb, "--help")
    assert result.returncode == 0
    for variable in variables:
        assert f"env var: {variable}" in " ".join(result.stdout.split())
