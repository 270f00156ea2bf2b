"""Issue 14, the parts no machine is needed for: lint finds checks that cannot run and
every other problem of a lab in one run; `labgen ssh LAB -- WORDS` builds the command
line as ssh does; a bundle carries nothing of the host it was rendered on.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from labgen.core.errors import EXIT_USAGE
from labgen.machine import ssh
from labgen.verbs import lint
from unit_helpers import REPO, bundled_lab_names, run_labgen

E2E_LABS = REPO / "tests" / "e2e" / "labs"


def copy_lab(source: Path, parent: Path, name: str | None = None) -> Path:
    """A copy of the lab folder `source` under `parent`, renamed to `name` if given."""
    name = name or source.name
    folder = parent / name
    shutil.copytree(source, folder)
    lab_file = folder / "lab.yaml"
    text = lab_file.read_text(encoding="utf-8")
    lab_file.write_text(re.sub(r"(?m)^name: .*$", f"name: {name}", text, count=1), encoding="utf-8")
    return folder


def syntax_error_lab(parent: Path) -> Path:
    """A lab whose checks.py does not parse: its line 7 opens a bracket never closed."""
    folder = copy_lab(E2E_LABS / "checks-do-not-import", parent, "checks-syntax-error")
    (folder / "checks.py").write_text(
        "import pytest\n\n\n"
        '@pytest.mark.step("make-marker")\n'
        "def test_marker_exists(host):\n"
        '    """the step made /tmp/labgen-marker"""\n'
        '    assert host.file("/tmp/labgen-marker").exists(\n',
        encoding="utf-8",
    )
    return folder


def lint_lines(stdout: str) -> list[str]:
    return [" ".join(line.split()) for line in stdout.splitlines()]


# --- item 1: a checks module that does not load fails lint ---------------------------


def test_lint_fails_a_lab_whose_checks_do_not_import() -> None:
    folder = E2E_LABS / "checks-do-not-import"
    outcome = run_labgen("lint", str(folder))
    assert outcome.returncode == EXIT_USAGE, outcome
    assert "Traceback" not in outcome.stdout + outcome.stderr
    assert f"fail {folder}" in lint_lines(outcome.stdout)
    # File and line of the import, and what Python said.
    assert f"{folder / 'checks.py'}:1:" in outcome.stdout, outcome.stdout
    assert "No module named 'no_such_module'" in outcome.stdout


def test_lint_fails_a_lab_whose_checks_have_a_syntax_error(tmp_path: Path) -> None:
    folder = syntax_error_lab(tmp_path)
    outcome = run_labgen("lint", str(folder))
    assert outcome.returncode == EXIT_USAGE, outcome
    assert "Traceback" not in outcome.stdout + outcome.stderr
    assert f"{folder / 'checks.py'}:7:" in outcome.stdout, outcome.stdout
    assert "not valid Python" in outcome.stdout
    # Said once: the parse and the import find the same error.
    assert outcome.stdout.count("checks.py:7:") == 1, outcome.stdout


def test_lint_import_check_finds_errors_raised_while_the_module_runs(tmp_path: Path) -> None:
    """Not only a missing module: any exception at import, at the line that raised it."""
    folder = copy_lab(E2E_LABS / "checks-do-not-import", tmp_path, "raises-at-import")
    checks = folder / "checks.py"
    text = checks.read_text(encoding="utf-8").replace(
        "import no_such_module  # noqa: F401  <- the error: line 1\n", ""
    )
    checks.write_text(text + "\nLIMIT = int('ten')\n", encoding="utf-8")
    line = len(checks.read_text(encoding="utf-8").splitlines())
    report = lint.lint_lab_dir(folder)
    assert [p for p in report.problems if f"{checks}:{line}:" in p and "ValueError" in p], (
        report.problems
    )


def test_the_import_check_does_not_flag_good_labs() -> None:
    """Control: every bundled lab's checks import (with labgen's helpers) and lint clean."""
    for name in bundled_lab_names():
        report = lint.lint_lab_dir(REPO / "labs" / name)
        assert report.ok, report.problems


# --- item 10: every problem in one run, at lab.yaml's line, as JSON, in cwd ---------

MANY_PROBLEMS_LAB = """\
name: many-problems
title: A lab with one problem of each kind
summary: lint must show them all at once.
engine: {version: "20.10"}
steps:
  - id: first
    title: First step
    explain: Runs true.
    comand: "true"
    command: "true"
  - id: second
    title: Second step
    explain: An if without its fi.
    command: |
      echo one
      if true; then
        echo two
"""

MANY_PROBLEMS_CHECKS = """\
import no_such_module
import pytest


@pytest.mark.step("third")
def test_unknown_step(host):
    assert True


def test_no_marker(host):
    assert True
"""


def test_lint_reports_every_kind_of_problem_in_one_run(tmp_path: Path) -> None:
    folder = tmp_path / "many-problems"
    folder.mkdir()
    (folder / "lab.yaml").write_text(MANY_PROBLEMS_LAB, encoding="utf-8")
    (folder / "checks.py").write_text(MANY_PROBLEMS_CHECKS, encoding="utf-8")
    lab_file, checks = folder / "lab.yaml", folder / "checks.py"

    outcome = run_labgen("lint", str(folder))
    assert outcome.returncode == EXIT_USAGE, outcome
    text = outcome.stdout
    # The schema: the misspelt field, on its line.
    assert f"{lab_file}:9: field 'steps[0].comand': unknown field" in text, text
    # The shell: at the line of lab.yaml where the command is, not a temp file.
    assert re.search(rf"{re.escape(str(lab_file))}:1[5-8]: field 'steps\[1\]\.command'.*bash", text)
    assert "/tmp/labgen-lint" not in text and ".sh:" not in text
    # The checks: each wrong check, and the import.
    assert f"{checks}:5:" in text and "'third'" in text, text
    assert f"{checks}:10:" in text and "test_no_marker" in text, text
    assert f"{checks}:1:" in text and "no_such_module" in text, text


def test_a_shell_error_points_at_the_line_of_lab_yaml(tmp_path: Path) -> None:
    """bash's own line inside a block command, mapped onto lab.yaml."""
    folder = copy_lab(REPO / "labs" / "port-forwarding", tmp_path, "bad-shell")
    lab_file = folder / "lab.yaml"
    lines = lab_file.read_text(encoding="utf-8").splitlines()
    first = next(i for i, line in enumerate(lines) if re.match(r"\s+command: \S", line))
    indent = re.match(r"\s*", lines[first]).group(0)  # type: ignore[union-attr]
    lines[first : first + 1] = [
        f"{indent}command: |",
        f"{indent}  echo fine",
        f"{indent}  echo 'never closed",
    ]
    lab_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = lint.lint_lab_dir(folder)
    assert not report.ok
    shell = [p for p in report.problems if "bash" in p]
    assert len(shell) == 1, report.problems
    # bash complains at EOF, line 2 or 3 of the command: lines first+2 or first+3 here.
    assert re.match(rf"{re.escape(str(lab_file))}:({first + 2}|{first + 3}): ", shell[0]), shell


def test_lint_json_lists_every_lab_with_its_problems(tmp_path: Path) -> None:
    bad = E2E_LABS / "checks-do-not-import"
    good = REPO / "labs" / "port-forwarding"
    outcome = run_labgen("lint", "--json", str(bad), str(good))
    assert outcome.returncode == EXIT_USAGE, outcome
    data = json.loads(outcome.stdout)
    assert [(d["path"], d["ok"]) for d in data] == [(str(bad), False), (str(good), True)]
    assert any("no_such_module" in p for p in data[0]["problems"])
    assert data[1]["problems"] == []


def test_lint_without_argument_in_a_lab_folder_lints_that_lab(tmp_path: Path) -> None:
    folder = copy_lab(E2E_LABS / "checks-do-not-import", tmp_path)
    outcome = run_labgen("lint", cwd=folder)
    assert outcome.returncode == EXIT_USAGE, outcome
    assert lint_lines(outcome.stdout)[0] == f"fail {folder}"
    assert all(f"labs{'/'}" not in line for line in lint_lines(outcome.stdout)), outcome.stdout


def test_lint_without_argument_elsewhere_lints_every_lab(tmp_path: Path) -> None:
    outcome = run_labgen("lint", cwd=tmp_path)
    assert outcome.returncode == 0, outcome
    from labgen.core import resources

    for name in bundled_lab_names():  # the installed labgen's labs
        assert f"ok {resources.labs_dir() / name}" in lint_lines(outcome.stdout)


# --- item 10: labgen ssh LAB -- WORDS ------------------------------------------------


@pytest.mark.parametrize(
    "words, line",
    [
        (["sudo iptables -t nat -S | grep DNAT"], "sudo iptables -t nat -S | grep DNAT"),
        (["ls", "-l", "/tmp"], "ls -l /tmp"),
        (["echo", "$HOME", "|", "wc", "-c"], "echo $HOME | wc -c"),
    ],
)
def test_ssh_words_are_joined_into_one_command_line_as_ssh_does(
    words: list[str], line: str
) -> None:
    assert ssh.command_line(words) == line
