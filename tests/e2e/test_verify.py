"""`labgen verify` on real machines: the seed labs pass; broken labs fail, naming step and check."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from helpers import labgen, labgen_json, show
from labgen.core.lab import iter_labs, load_lab_dir
from labgen.docs import recordings

pytestmark = pytest.mark.e2e

BROKEN = Path(__file__).parent / "labs"
REPO = Path(__file__).resolve().parents[2]


def test_verify_all_seed_labs_on_every_engine_with_junit(tmp_path: Path, labgen_home: Path) -> None:
    """Every step of every seed lab on every engine it names: checks fail before it, the
    command works, checks pass; JUnit has a suite per lab and engine, a case per check."""
    xml_file = tmp_path / "out.xml"
    proc = labgen(
        "verify", "--all", "--engine", "all", "-j", "2", "--strict", "--junitxml", str(xml_file)
    )
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
        assert all(n.startswith("test_") or n in ("command", "recorded-output") for n in names)
        # Each step that ran was compared with its committed recording (--strict: no drift).
        ran = [s for s in lab.steps if suite_name.split("@")[1] not in s.not_on]
        assert names.count("recorded-output") == len(ran), suite_name
        assert not list(suite.iter("failure")) and not list(suite.iter("skipped"))
    assert int(root.get("tests", "0")) == sum(1 for _ in root.iter("testcase"))
    assert root.get("failures") == "0" and root.get("errors") == "0"
    assert "lab × engine" in proc.stdout  # the matrix, for people
    assert not list((labgen_home / "instances").iterdir())


def test_record_twice_gives_the_same_files_and_drift_fails_strict(tmp_path: Path) -> None:
    """Two fresh machines record the bridge lab: the same files. A changed recorded line is
    drift, named by lab, engine and step, shown as a diff; --strict makes it exit 1."""
    first, second = tmp_path / "bridge", tmp_path / "bridge-again"
    for copy in (first, second):
        shutil.copytree(REPO / "labs" / "bridge", copy, ignore=shutil.ignore_patterns("recorded"))
    yaml_file = second / "lab.yaml"
    yaml_file.write_text(yaml_file.read_text().replace("name: bridge", "name: bridge-again", 1))

    # Side by side, each on its own fresh machine.
    proc = labgen("verify", str(first), str(second), "-j", "2", "--record", "--json")
    assert proc.returncode == 0, show(proc)
    assert "no recorded outputs for Docker 20.10" in proc.stderr  # before recording: none
    assert [r["recordings"] for r in json.loads(proc.stdout)] == ["recorded", "recorded"]
    a = recordings.load(first, "20.10")
    b = recordings.load(second, "20.10")
    assert sorted(a) == sorted(s.id for s in load_lab_dir(first).steps)
    assert {k: (r.output, r.docker, r.rules) for k, r in a.items()} == {
        k: (r.output, r.docker, r.rules) for k, r in b.items()
    }
    assert a["ip-a"].docker.startswith("20.10.") and "vethXXXXXXX" in a["ip-a"].output
    # The wiring after the step marked draw: true, read from each real machine: the same
    # once normalised (other inodes, indexes, veth names, MACs, machine addresses).
    drawn = recordings.load_wirings(first, "20.10")
    assert list(drawn) == ["start-container"]
    assert drawn == recordings.load_wirings(second, "20.10")
    assert '"container nstest"' in drawn["start-container"]
    assert '"vethXXXXXXX"' in drawn["start-container"]

    # Re-recording changes no file (wirings too); verifying against them finds no drift.
    before = {p: p.read_bytes() for p in (first / "recorded").rglob("*") if p.is_file()}
    proc = labgen("verify", str(first), "--record", "--json")
    assert proc.returncode == 0, show(proc)
    assert before == {p: p.read_bytes() for p in (first / "recorded").rglob("*") if p.is_file()}

    # One recorded line changed: drift, a failure with --strict, a warning without.
    path = recordings.path_of(first, "20.10", "ip-a")
    path.write_text(path.read_text().replace("docker0", "docker9", 1))
    strict = labgen("verify", str(first), "--strict")
    assert strict.returncode == 1, show(strict)
    assert "bridge on Docker 20.10, step ip-a: output drifted from its recording" in strict.stdout
    assert "--- recorded bridge@20.10 step ip-a" in strict.stdout
    assert "-N: docker9:" in strict.stdout and "+N: docker0:" in strict.stdout
    code, reports = labgen_json("verify", str(first))
    assert code == 0 and reports[0]["drift"] is True
    steps = {s["step"]: s for s in reports[0]["steps"]}
    assert steps["ip-a"]["recording"] == "drift" and "docker9" in steps["ip-a"]["drift"]
    assert {s["recording"] for n, s in steps.items() if n != "ip-a"} == {"same"}


def test_verify_names_the_broken_step_and_check(labgen_home: Path) -> None:
    """Five broken labs fail, each naming step and check (a fresh `labgen new` lab is
    red until its check is written: tests/e2e/test_checklib.py).

    Two of them are issue 21's mutations of until=: a check that stops holding without
    one, and a check that holds past the step its until names."""
    broken = ("wrong-expectation", "vacuous-check", "failing-step", "missing-until", "wrong-until")
    labs = [str(BROKEN / n) for n in broken]
    proc = labgen("verify", *labs, "-j", "4", "--json")
    assert proc.returncode == 1, show(proc)
    reports = {r["lab"]: r for r in json.loads(proc.stdout)}
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

    missing = reports["missing-until"]["steps"]
    assert [s["status"] for s in missing] == ["pass", "fail"], missing
    # Check names carry testinfra's host id: test_marker_exists[paramiko://default].
    stopped = "(from step make-marker) no longer holds after step remove-marker"
    assert "check test_marker_exists[" in missing[1]["reason"]
    assert stopped in missing[1]["reason"]
    assert "until='remove-marker'" in missing[1]["reason"]

    wrong_until = reports["wrong-until"]["steps"]
    assert [s["status"] for s in wrong_until] == ["pass", "fail"], wrong_until
    holds = "] still holds after step keep-marker, though its until='keep-marker'"
    assert "check test_marker_exists[" in wrong_until[1]["reason"]
    assert holds in wrong_until[1]["reason"]

    assert all(r["destroyed"] for r in reports.values())


def test_verify_bad_input_starts_nothing(labgen_home: Path, tmp_path: Path) -> None:
    proc = labgen("verify", "no-such-lab")
    assert proc.returncode == 2, show(proc)
    both = labgen("verify", "bridge", "--record", "--strict")
    assert both.returncode == 2 and "--record writes the recordings" in both.stderr
    # A recording that is not one is bad input, found before any machine starts.
    lab = tmp_path / "bridge"
    shutil.copytree(REPO / "labs" / "bridge", lab, ignore=shutil.ignore_patterns("recorded"))
    (lab / "recorded" / "20.10").mkdir(parents=True)
    (lab / "recorded" / "20.10" / "ip-a.txt").write_text("hand-written\n")
    bad = labgen("verify", str(lab))
    assert bad.returncode == 2, show(bad)
    assert "ip-a.txt: not a labgen recording" in bad.stderr and "Traceback" not in bad.stderr
    assert "unknown lab 'no-such-lab'" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (labgen_home / "instances").exists()


def test_a_lab_that_makes_its_own_network_stays_strict_on_every_engine(
    labgen_home: Path,
) -> None:
    """Issue 21, item 2: user-bridge (a test lab, not the seed's) creates a network whose
    id and bridge name change at every run; its recordings, made in another run, hold
    under --strict twice in a row on every engine: the built-in rules (br-<id>, ping's
    times) and the lab's own (the network id) make its outputs comparable."""
    lab = BROKEN / "user-bridge"
    assert set(recordings.engines_recorded(lab)) == {"20.10", "26.1", "28.5"}
    for _ in range(2):
        code, reports = labgen_json("verify", str(lab), "--engine", "all", "-j", "2", "--strict")
        assert code == 0, json.dumps(reports, indent=1)[:3000]
        assert [(r["engine"], r["ok"], r["drift"]) for r in reports] == [
            (e, True, False) for e in ("20.10", "26.1", "28.5")
        ]
        assert all(r["recordings"] == "compared" for r in reports)
