"""labgen.checks.runner.run_checks, for real: a child pytest runs a tiny lab's checks
with labgen's plugin, and no machine. The checks use no testinfra `host`, or a fake
one of their own, so nothing connects to the ssh_config they are given.

Nothing ran is never a pass: every way a run can end has a case here.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from labgen.checks.runner import run_checks
from labgen.cli import main as cli
from labgen.core.errors import EXIT_FAILED, EXIT_OK
from labgen.core.lab import Lab, load_lab_dir
from labgen.core.results import CHECKS_FAILED, CHECKS_PASSED, NOTHING_CHECKED, CheckRun
from labgen.verbs import check as check_verb
from unit_helpers import invoke_labgen

LAB_YAML = """\
name: tiny
title: A lab of three steps, checked without a machine
summary: Only its checks matter here.
engine: "20.10"
images: [busybox]
steps:
  - id: first
    title: First step
    explain: Runs true.
    command: "true"
  - id: second
    title: Second step
    explain: Runs true again.
    command: "true"
  - id: third
    title: Third step, which has no checks
    explain: Runs true once more.
    command: "true"
"""

HEADER = """\
import pytest


@pytest.fixture
def host():
    # Stands in for testinfra's: these checks never reach a machine.
    class FakeHost:
        def exists(self, command):
            return command == "docker"

    return FakeHost()
"""


def make_lab(root: Path, checks: str, conftest: str | None = None) -> Lab:
    """A lab folder under `root` whose checks.py is HEADER plus `checks`."""
    folder = root / "tiny"
    folder.mkdir()
    (folder / "lab.yaml").write_text(LAB_YAML, encoding="utf-8")
    (folder / "checks.py").write_text(HEADER + textwrap.dedent(checks), encoding="utf-8")
    if conftest is not None:
        (folder / "conftest.py").write_text(textwrap.dedent(conftest), encoding="utf-8")
    return load_lab_dir(folder)


def run(lab: Lab, tmp_path: Path, target: str | None = None, only: bool = False) -> CheckRun:
    # A path that is no SSH configuration at all: a check that connected would fail.
    return run_checks(lab, tmp_path / "no-ssh-config", target=target, only=only)


def by_name(run: CheckRun) -> dict[str, str]:
    return {r.name: r.outcome for r in run.results}


PASSING = """
@pytest.mark.step("first")
def test_docker_is_there(host):
    \"\"\"docker is installed\"\"\"
    assert host.exists("docker")


@pytest.mark.step("second")
def test_no_host_needed():
    assert 1 + 1 == 2
"""


def test_all_pass(tmp_path: Path) -> None:
    result = run(make_lab(tmp_path, PASSING), tmp_path, target="second")
    assert result.problems == []
    assert by_name(result) == {"test_docker_is_there": "passed", "test_no_host_needed": "passed"}
    assert result.verdict == CHECKS_PASSED and result.ok
    assert [r.step for r in result.results] == ["first", "second"]  # in the lab's order
    assert result.results[0].title == "docker is installed"
    assert check_verb.exit_status(result) == EXIT_OK
    assert check_verb.nothing_checked(result) is None


FAILING = """

@pytest.mark.step("second")
def test_nat_rule(host):
    assert host.exists("iptables"), "no iptables on the machine"
"""


def test_one_fails(tmp_path: Path) -> None:
    result = run(make_lab(tmp_path, PASSING + FAILING), tmp_path, target="second")
    assert result.problems == []
    assert by_name(result)["test_nat_rule"] == "failed"
    failed = next(r for r in result.results if r.name == "test_nat_rule")
    assert "no iptables on the machine" in failed.message
    assert result.verdict == CHECKS_FAILED and not result.ok
    assert check_verb.exit_status(result) == EXIT_FAILED


@pytest.mark.parametrize(
    "target, only",
    [("third", True), ("first", False)],
    ids=["a step without checks", "before the first step that has checks"],
)
def test_none_selected_is_nothing_checked(tmp_path: Path, target: str, only: bool) -> None:
    checks = """
@pytest.mark.step("second")
def test_later():
    pass
"""
    result = run(make_lab(tmp_path, checks), tmp_path, target=target, only=only)
    assert result.problems == [] and result.results == []
    assert result.verdict == NOTHING_CHECKED
    assert not result.ok
    assert check_verb.exit_status(result) == EXIT_FAILED
    why = check_verb.nothing_checked(result)
    assert why is not None and "nothing was checked" in why.message and target in why.message


def test_a_checks_module_that_does_not_import(tmp_path: Path) -> None:
    checks = """
import labgen_no_such_module  # noqa: F401

@pytest.mark.step("first")
def test_never_collected():
    pass
"""
    result = run(make_lab(tmp_path, checks), tmp_path, target="first")
    assert result.results == []
    assert len(result.problems) == 1
    assert "labgen_no_such_module" in result.problems[0]
    assert result.verdict == CHECKS_FAILED and not result.ok


def test_a_fixture_whose_teardown_raises(tmp_path: Path) -> None:
    checks = """
@pytest.fixture
def server():
    yield "up"
    raise RuntimeError("could not stop the server")


@pytest.mark.step("first")
def test_server_answers(server):
    \"\"\"the server answers\"\"\"
    assert server == "up"
"""
    result = run(make_lab(tmp_path, checks), tmp_path, target="first")
    assert result.problems == []  # pytest's exit 1 is borne out by the error recorded
    assert by_name(result) == {
        "test_server_answers": "passed",
        "test_server_answers[teardown]": "error",
    }
    error = next(r for r in result.results if r.outcome == "error")
    assert error.step == "first"
    assert "the server answers" in error.title and "'server'" in error.title
    assert "fixture 'server' of check test_server_answers failed in teardown" in error.message
    assert "could not stop the server" in error.message
    assert result.verdict == CHECKS_FAILED and not result.ok


def test_a_fixture_whose_setup_raises(tmp_path: Path) -> None:
    checks = """
@pytest.fixture
def container(host):
    raise RuntimeError("no container called http-server")


@pytest.mark.step("first")
def test_container_runs(container):
    pass
"""
    result = run(make_lab(tmp_path, checks), tmp_path, target="first")
    assert result.problems == []
    assert by_name(result) == {"test_container_runs": "error"}
    message = result.results[0].message
    assert "fixture 'container' of check test_container_runs failed in setup" in message
    assert "no container called http-server" in message
    assert result.verdict == CHECKS_FAILED


# --- pytest and the results file must agree ------------------------------------------

EXIT_ONE = """
def pytest_sessionfinish(session, exitstatus):
    # A failure the plugin has no check to pin on (a hook, a session fixture).
    session.exitstatus = 1
"""


def test_pytest_failing_with_every_recorded_check_passing_is_a_problem(tmp_path: Path) -> None:
    result = run(make_lab(tmp_path, PASSING, conftest=EXIT_ONE), tmp_path, target="second")
    assert all(r.ok for r in result.results) and result.results
    assert len(result.problems) == 1
    assert "pytest failed but recorded no failing check" in result.problems[0]
    assert result.verdict == CHECKS_FAILED and not result.ok


@pytest.mark.parametrize(
    "action, why",
    [("unlink()", "pytest wrote no results"), ("write_text('{\"results\": ')", "does not parse")],
    ids=["missing", "unparseable"],
)
def test_a_results_file_missing_or_unparseable_is_a_problem(
    tmp_path: Path, action: str, why: str
) -> None:
    conftest = f"""
    from pathlib import Path


    def pytest_unconfigure(config):
        Path(config.getoption("labgen_report")).{action}
    """
    result = run(make_lab(tmp_path, PASSING, conftest=conftest), tmp_path, target="second")
    assert result.results == []
    assert len(result.problems) == 1 and why in result.problems[0]
    assert "did not run" in result.problems[0]
    assert result.verdict == CHECKS_FAILED and not result.ok


def test_pytest_stopping_early_is_a_problem(tmp_path: Path) -> None:
    conftest = """
    def pytest_sessionfinish(session, exitstatus):
        session.exitstatus = 3  # an internal error
    """
    result = run(make_lab(tmp_path, PASSING, conftest=conftest), tmp_path, target="second")
    assert len(result.problems) == 1 and "stopped early (pytest exit 3)" in result.problems[0]
    assert not result.ok


# --- what `labgen check` says ----------------------------------------------------------


def test_json_of_a_run_that_checked_nothing() -> None:
    data = CheckRun("tiny", "third", True, []).to_json()
    assert data["ok"] is False
    assert data["verdict"] == NOTHING_CHECKED
    assert data["results"] == [] and data["problems"] == []


def test_json_verdicts() -> None:
    assert CheckRun("tiny", "first", False, [], ["no import"]).to_json()["verdict"] == "failed"


@pytest.mark.parametrize(
    "target, code, verdict",
    [("second", EXIT_OK, CHECKS_PASSED), ("third", EXIT_FAILED, NOTHING_CHECKED)],
)
def test_labgen_check_exit_status(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str, code: int, verdict: str
) -> None:
    lab = make_lab(tmp_path, PASSING)

    def real_checks_no_machine(
        machine: str, step: str | None, only: bool, expect_engine: str | None
    ) -> tuple[CheckRun, Lab]:
        return run(lab, tmp_path, target=step, only=only), lab

    # Everything after finding the machine is real: run_checks, the printer, the exit.
    monkeypatch.setattr(check_verb, "check", real_checks_no_machine)
    monkeypatch.setattr(cli, "staleness", lambda machine: None)
    result = invoke_labgen("check", "tiny-1", "--step", target, "--only", "--json")
    assert result.returncode == code, result.stdout + result.stderr
    assert f'"verdict": "{verdict}"' in result.stdout
    if verdict == NOTHING_CHECKED:
        assert '"ok": false' in result.stdout
        assert "nothing was checked: no check of lab tiny is step third's own" in result.stderr
    else:
        assert result.stderr == ""
