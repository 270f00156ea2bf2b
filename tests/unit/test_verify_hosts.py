"""verify --hosts without machines: how runs are dealt over hosts, what JUnit names, and
the refusal of an unknown host, before any machine (a host that lacks a base image is
tests/e2e/test_verify_hosts.py's: asking a host runs docker)."""

from __future__ import annotations

from pathlib import Path

import pytest
from labgen.core.context import Context
from labgen.core.errors import LabgenError
from labgen.core.lab import load_lab
from labgen.core.results import PASS, LabReport, StepReport
from labgen.docs import junit
from labgen.hosts import probe, registry
from labgen.verbs import verify

from tests.unit.unit_helpers import invoke_labgen


def test_runs_are_dealt_over_the_hosts_in_turn(labgen_home: Path) -> None:
    registry.add("rack1", "ssh://trainer@192.0.2.1")
    labs = [load_lab("port-forwarding"), load_lab("netns")]
    runs = verify.spread(verify.plan(labs, "all"), "local,rack1")
    assert [r.host for r in runs] == ["local", "rack1"] * (len(runs) // 2) + (
        ["local"] if len(runs) % 2 else []
    )
    assert runs[1].label == f"{runs[1].lab.name}@{runs[1].engine} on rack1"
    assert [r.host for r in verify.spread(verify.plan(labs, None), None)] == ["", ""]


def test_junit_names_the_host_of_each_run(tmp_path: Path) -> None:
    lab = load_lab("port-forwarding")
    reports = [
        LabReport(lab.name, "m", [StepReport(s.id, s.title, status=PASS) for s in lab.steps], e)
        for e in ("20.10", "28.5")
    ]
    reports[0].host, reports[1].host = "local", "sim-b"
    out = tmp_path / "out.xml"
    junit.write_junit(out, [lab, lab], reports)
    xml = out.read_text(encoding="utf-8")
    assert 'name="port-forwarding@20.10 on local"' in xml
    assert 'name="port-forwarding@28.5 on sim-b"' in xml
    assert '<property name="host" value="sim-b"' in xml
    assert 'classname="sim-b:port-forwarding.' in xml


def test_junit_without_hosts_is_unchanged(tmp_path: Path) -> None:
    lab = load_lab("port-forwarding")
    steps = [StepReport(s.id, s.title, status=PASS) for s in lab.steps]
    out = tmp_path / "out.xml"
    junit.write_junit(out, [lab], [LabReport(lab.name, "m", steps, "20.10")])
    xml = out.read_text(encoding="utf-8")
    assert 'name="port-forwarding@20.10"' in xml and 'name="host"' not in xml


def test_an_unknown_host_is_refused_before_any_machine(labgen_home: Path) -> None:
    result = invoke_labgen("verify", "port-forwarding", "--hosts", "local,nowhere")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "unknown host 'nowhere'" in result.stderr and "labgen hosts add" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (labgen_home / "instances").exists() or not any(
        (labgen_home / "instances").iterdir()
    )


def test_a_run_whose_host_went_away_fails_naming_the_host(
    labgen_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry.add("rack1", "ssh://trainer@192.0.2.1")
    lab = load_lab("netns")

    def host_gone(*args: object, **kwargs: object) -> None:
        raise LabgenError("vagrant up failed: ssh: connect to host 192.0.2.1: No route")

    def silent(host: registry.Host) -> probe.HostReport:
        found = probe.HostReport(host.name, host.url, host.kind)
        found.problems.append((f"Docker on {host.name} does not answer over {host.url}", "x"))
        return found

    monkeypatch.setattr(verify, "up", host_gone)
    monkeypatch.setattr(probe, "examine", silent)
    [run] = verify.spread(verify.plan([lab], None), "rack1")
    report = verify.verify_lab(Context(), run, verify.Destroy.ALWAYS, lambda *_: None)
    assert not report.ok and report.host == "rack1"
    assert report.error.startswith("host rack1 stopped answering during the run")
    assert "No route" in report.error
