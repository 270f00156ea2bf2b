"""Issue 21 item 5, lint and messages, the parts that need no machine: a lab named as if
it were on the search path while it is a folder here, YAML errors at file:line:column in
source order, image and engine errors that point at lab.yaml (never at the installed
package), and checks.py imports the lab machine's python3 lacks."""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import pytest
from labgen.core import resources
from labgen.core.errors import EXIT_USAGE, UsageError
from labgen.core.lab import load_lab_dir
from labgen.machine import recipe
from labgen.verbs.lint import allowed_import, lint_lab_dir
from unit_helpers import REPO, run_labgen

USER_BRIDGE = REPO / "tests" / "e2e" / "labs" / "user-bridge"


def no_traceback(outcome: object) -> None:
    text = getattr(outcome, "stdout", "") + getattr(outcome, "stderr", "")
    assert "Traceback" not in text, text


# --- a lab named by name while it is a folder here --------------------------------------


def test_a_lab_folder_here_named_by_name_gets_its_path_and_labs_dot(tmp_path: Path) -> None:
    shutil.copytree(USER_BRIDGE, tmp_path / "user-bridge")
    outcome = run_labgen("lint", "user-bridge", cwd=tmp_path)
    assert outcome.returncode == EXIT_USAGE, outcome
    no_traceback(outcome)
    assert "unknown lab 'user-bridge'" in outcome.stderr
    assert "`labgen lint ./user-bridge`" in outcome.stderr, outcome.stderr
    assert "`labgen lint user-bridge --labs .`" in outcome.stderr, outcome.stderr
    # Not a misspelling of the bundled `bridge`: the folder here is what was meant.
    assert "did you mean" not in outcome.stderr
    # Both suggestions work.
    assert run_labgen("lint", "./user-bridge", cwd=tmp_path).returncode == 0
    assert run_labgen("lint", "user-bridge", "--labs", ".", cwd=tmp_path).returncode == 0


def test_the_suggestion_keeps_the_verb_and_its_options(tmp_path: Path) -> None:
    shutil.copytree(USER_BRIDGE, tmp_path / "user-bridge")
    outcome = run_labgen("render", "user-bridge", "-o", "out", cwd=tmp_path)
    assert outcome.returncode == EXIT_USAGE, outcome
    assert "`labgen render ./user-bridge -o out`" in outcome.stderr, outcome.stderr


def test_a_misspelt_lab_gets_the_close_name(tmp_path: Path) -> None:
    outcome = run_labgen("lint", "netsn", cwd=tmp_path)
    assert outcome.returncode == EXIT_USAGE, outcome
    no_traceback(outcome)
    assert "did you mean 'netns'?" in outcome.stderr, outcome.stderr
    assert "`labgen list`" in outcome.stderr
    far = run_labgen("lint", "zzzzzz", cwd=tmp_path)
    assert far.returncode == EXIT_USAGE and "did you mean" not in far.stderr, far


# --- YAML syntax errors -----------------------------------------------------------------


def long_broken_lab(folder: Path) -> Path:
    """A lab whose flow list opens on line 3 and breaks on line 117, column 8 (a key
    inside it: `summary:`)."""
    folder.mkdir()
    (folder / "checks.py").write_text("", encoding="utf-8")
    lines = ["name: long", "title: T", "images: [", *[f"  # filler {n}" for n in range(112)]]
    lines += ["  busybox", "summary: S"]
    (folder / "lab.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def numbered(lines: list[str]) -> list[int]:
    """The line numbers of the source lines a YAML error shows (`  117 | text`)."""
    return [int(m.group(1)) for line in lines if (m := re.match(r"^\s+(\d+) \|", line))]


def test_a_yaml_error_is_one_line_at_file_line_column_then_the_source_in_order(
    tmp_path: Path,
) -> None:
    long_broken_lab(tmp_path / "long")
    outcome = run_labgen("lint", "./long", cwd=tmp_path)
    assert outcome.returncode == EXIT_USAGE, outcome
    no_traceback(outcome)
    lines = outcome.stdout.splitlines()
    problem = next(i for i, line in enumerate(lines) if "not valid YAML" in line)
    # The file as given, 1-based line and column, then PyYAML's problem.
    assert lines[problem].split()[0] == "long/lab.yaml:117:8:", lines[problem]
    assert "expected ',' or ']', but got ':'" in lines[problem]
    after = lines[problem + 1 :]
    shown = numbered(after)
    # Where the list began (PyYAML's context), then where it broke: in the file's order.
    assert shown == [3, 117], outcome.stdout
    assert "while parsing a flow sequence" in after[1], after  # under line 3
    # Each mark under its column: the caret after line 117 points at column 8.
    source = next(i for i, line in enumerate(after) if re.match(r"^\s+117 \|", line))
    bar = after[source].index("|")
    assert after[source + 1].index("^") - (bar + 2) == 7, after[source : source + 2]
    assert after[source][bar + 2 + 7] == ":"
    # The same on stderr for a verb that loads the lab.
    up = run_labgen("up", "./long", cwd=tmp_path, env={"LABGEN_HOME": str(tmp_path / "h")})
    assert up.returncode == EXIT_USAGE, up
    no_traceback(up)
    assert "labgen: error: long/lab.yaml:117:8: not valid YAML:" in up.stderr, up.stderr


def test_the_line_numbers_match_the_file(tmp_path: Path) -> None:
    folder = long_broken_lab(tmp_path / "long")
    text = (folder / "lab.yaml").read_text().splitlines()
    with pytest.raises(UsageError) as caught:
        load_lab_dir(folder)
    for line in caught.value.message.splitlines()[1:]:
        match = re.match(r"^\s+(\d+) \| ?(.*)$", line)
        if match:
            assert text[int(match.group(1)) - 1].rstrip() == match.group(2), line


# --- images and engines -----------------------------------------------------------------


def installed_package() -> Path:
    return Path(recipe.__file__).resolve().parent.parent


@pytest.mark.parametrize(
    "field, value, known",
    [
        ("images", "[nginx:1.25]", sorted(recipe.known_images())),
        ("engines", '["19.03"]', recipe.engines()),
    ],
)
def test_image_and_engine_errors_point_at_lab_yaml_never_the_package(
    tmp_path: Path, field: str, value: str, known: list[str]
) -> None:
    folder = tmp_path / "lab"
    folder.mkdir()
    (folder / "checks.py").write_text("", encoding="utf-8")
    (folder / "lab.yaml").write_text(
        f'name: lab\ntitle: T\nsummary: S\nengine: "20.10"\n{field}: {value}\nsteps:\n'
        "  - id: one\n    title: One\n    explain: E\n    command: 'true'\n",
        encoding="utf-8",
    )
    with pytest.raises(UsageError) as caught:
        load_lab_dir(folder)
    message = caught.value.message
    assert "site-packages" not in message and str(installed_package()) not in message, message
    assert str(recipe.RECIPE_FILE) not in message
    assert f"lab.yaml:5: field '{field}[0]'" in message
    assert "In lab.yaml, " in message and all(k in message for k in known), message
    # What a checkout holds, named from its root: that file exists there.
    named = re.search(r"entry under \w+: in (\S+) of a labgen source checkout", message)
    assert named and (REPO / named.group(1)).is_file(), message


def test_an_unknown_engine_on_the_command_line_names_the_checkout_not_the_package(
    tmp_path: Path,
) -> None:
    """verify plans its runs before any machine starts: a bad --engine is exit 2."""
    outcome = run_labgen("verify", "bridge", "-e", "19.03", env={"LABGEN_HOME": str(tmp_path)})
    assert outcome.returncode == EXIT_USAGE, outcome
    no_traceback(outcome)
    assert "unknown Docker engine '19.03'; labgen has: 20.10, 26.1, 28.5" in outcome.stderr
    assert f"in {recipe.RECIPE_IN_CHECKOUT} of a labgen source checkout" in outcome.stderr
    assert (REPO / recipe.RECIPE_IN_CHECKOUT).is_file()
    assert "site-packages" not in outcome.stderr and str(recipe.RECIPE_FILE) not in outcome.stderr


# --- what checks.py imports -------------------------------------------------------------


def lab_with_checks(tmp_path: Path, checks: str) -> Path:
    folder = tmp_path / "imports"
    shutil.copytree(REPO / "tests" / "e2e" / "labs" / "failing-step", folder)
    text = (folder / "lab.yaml").read_text().replace("name: failing-step", "name: imports")
    (folder / "lab.yaml").write_text(text)
    (folder / "checks.py").write_text(checks, encoding="utf-8")
    return folder


CHECK = """
@pytest.mark.step("make-marker")
def test_marker(host):
    assert host.file("/tmp/labgen-marker").exists
"""


def test_an_import_the_machine_lacks_is_a_lint_error_though_it_imports_here(
    tmp_path: Path,
) -> None:
    pytest.importorskip("requests")  # this Python has it: importing checks.py passes here
    folder = lab_with_checks(tmp_path, "import json\nimport pytest\n\nimport requests\n" + CHECK)
    problems = lint_lab_dir(folder).problems
    assert problems == [
        f"{folder / 'checks.py'}:4: imports requests, which the lab machine's python3 does "
        "not have (it is not in the standard library nor in the machine's Debian packages): "
        "checks may import the standard library, testinfra, pytest and labgen.checklib"
    ], problems
    outcome = run_labgen("lint", str(folder))
    assert outcome.returncode == EXIT_USAGE and "checks.py:4: imports requests" in outcome.stdout


def test_what_checks_may_import_passes(tmp_path: Path) -> None:
    allowed = (
        "from __future__ import annotations\nimport json, os.path\nimport pytest\n"
        "import testinfra\nfrom labgen.checklib import bridge_ports\n"
        "from labgen import checklib\nimport labgen.checklib\n"
    )
    assert lint_lab_dir(lab_with_checks(tmp_path, allowed + CHECK)).problems == []


@pytest.mark.parametrize(
    "line, why",
    [
        ("from labgen.verbs import lint", "only labgen.checklib"),
        ("from . import helpers", "relative import"),
        ("import telnetlib", "removed from the standard library by Python 3.13"),
        ("import os; import yaml", "not in the standard library"),
    ],
)
def test_other_imports_are_refused_with_the_reason(tmp_path: Path, line: str, why: str) -> None:
    problems = lint_lab_dir(lab_with_checks(tmp_path, "import pytest\n" + line + CHECK)).problems
    assert any(":2: imports " in p and why in p for p in problems), problems


def test_the_allowed_modules_are_the_machine_pythons() -> None:
    """The stdlib names are this Python's; the Debian ones the recipe's packages'."""
    assert "python3-testinfra" in recipe.recipe_spec().packages
    assert {"testinfra", "pytest"} <= recipe.machine_python_modules()
    assert all(allowed_import(m) for m in ("sys", "ipaddress", "_pytest.fixtures"))
    assert not allowed_import("requests") and not allowed_import("yaml")
    assert sys.stdlib_module_names and resources.labs_dir().is_dir()
