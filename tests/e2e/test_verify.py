"""`labgen verify` on real machines: the seed labs pass; broken labs fail, naming step and check."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from helpers import labgen, show
from labgen.lab import iter_labs

pytestmark = pytest.mark.e2e

BROKEN = Path(__file__).parent / "labs"


def test_verify_all_seed_labs_on_every_engine_with_junit(tmp_path: Path, labgen_home: Path) -> None:
    """Every step of every seed lab on every engine it names: checks fail before it, the
    command works, checks pass; JUnit has a suite per lab and engine, a case per check."""
    xml_file = tmp_path / "out.xml"
    proc = labgen("verify", "--all", "--engine", "all", "-j", "2", "--junitxml", str(xml_file))
    assert proc.returncode == 0, show(proc)

    root = ET.parse(xml_file).getroot()
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    labs = {lab.name: lab for lab in iter_labs()}
    assert set(suites) == {f"{name}@{e}" for name, lab in labs.items() for e in lab.engines}
    for suite_name, suite in suites.items():
        lab = labs[suite_name.split("@")[0]]
        cases = list(suite.iter("testcase"))
        # A case per check of each step (a step without checks: its command), in order.
        steps = [c.get("classname", "").removeprefix(f"{lab.name}.") for c in cases]
        assert list(dict.fromkeys(steps)) == [s.id for s in lab.steps]
        names = [c.get("name", "") for c in cases]
        assert all(n.startswith("test_") or n == "command" for n in names)
        assert not list(suite.iter("failure")) and not list(suite.iter("skipped"))
    assert int(root.get("tests", "0")) == sum(1 for _ in root.iter("testcase"))
    assert root.get("failures") == "0" and root.get("errors") == "0"
    assert "lab × engine" in proc.stdout  # the matrix, for people
    assert not list((labgen_home / "instances").iterdir())


def test_verify_names_the_broken_step_and_check(labgen_home: Path, tmp_path: Path) -> None:
    """Three broken labs fail, each naming step and check; a fresh `labgen new` lab passes."""
    scaffold = labgen("new", "scaffolded", "--dir", str(tmp_path))
    assert scaffold.returncode == 0, show(scaffold)
    labs = [str(BROKEN / n) for n in ("wrong-expectation", "vacuous-check", "failing-step")]
    proc = labgen("verify", *labs, str(tmp_path / "scaffolded"), "-j", "4", "--json")
    assert proc.returncode == 1, show(proc)
    reports = {r["lab"]: r for r in json.loads(proc.stdout)}
    assert reports.pop("scaffolded")["ok"] is True
    assert not any(r["ok"] for r in reports.values())
    # Each fails at its step, not before: no lab-level error (machine, checks not run).
    assert {lab: r["error"] for lab, r in reports.items()} == dict.fromkeys(reports, "")

    wrong = reports["wrong-expectation"]["steps"][0]
    assert wrong["status"] == "fail"
    assert "test_other_file_exists" in wrong["reason"]

    vacuous = reports["vacuous-check"]["steps"][0]
    assert vacuous["status"] == "vacuous"
    assert "test_hostname_file_exists" in vacuous["reason"]

    steps = reports["failing-step"]["steps"]
    assert [s["status"] for s in steps] == ["pass", "fail", "skipped"]
    assert "exited with status 2" in steps[1]["reason"]
    assert "No such file or directory" in steps[1]["output"]

    assert all(r["destroyed"] for r in reports.values())


def test_verify_bad_input_starts_nothing(labgen_home: Path) -> None:
    proc = labgen("verify", "no-such-lab")
    assert proc.returncode == 2, show(proc)
    assert "unknown lab 'no-such-lab'" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (labgen_home / "instances").exists()
