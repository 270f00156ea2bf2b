"""A check's docstring summary that wraps over several lines is kept whole, as one line,
in `labgen check` (the in-machine plugin's title) and on the lab's page (the reader's
description), by one function, so that the two never disagree (issue 21, item 4)."""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import pytest
from labgen.checks.reader import read_checks
from labgen.checks.runner import run_checks
from labgen.core.lab import load_lab_dir
from labgen.docs import pages as docpages
from labgen.inmachine.pytest_plugin import check_title

LAB_YAML = """\
name: wrapped
title: A check whose summary wraps
summary: Only its checks matter here.
engine: "20.10"
images: [busybox]
steps:
  - id: first
    title: First step
    explain: Runs true.
    command: "true"
"""

CHECKS = '''\
import pytest


@pytest.fixture
def host():
    return None  # these checks never reach a machine


@pytest.mark.step("first")
def test_wrapped(host):
    """the summary of this check starts here and
    goes on over a second line

    A detail that `labgen check` leaves out.
    """
'''

WHOLE = "the summary of this check starts here and goes on over a second line"


def test_a_wrapped_summary_is_whole_in_check_in_the_reader_and_on_the_page(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "wrapped"
    folder.mkdir()
    (folder / "lab.yaml").write_text(LAB_YAML, encoding="utf-8")
    (folder / "checks.py").write_text(CHECKS, encoding="utf-8")
    lab = load_lab_dir(folder)
    # `labgen check`: the plugin's title, from a real child pytest (no machine).
    ran = run_checks(lab, tmp_path / "no-ssh-config", target="first")
    assert [(r.name, r.title) for r in ran.results] == [("test_wrapped", WHOLE)]
    assert [c.description for c in read_checks(lab)] == [WHOLE]
    assert f"- {WHOLE}\n" in docpages.render_lab_page(lab, tmp_path)


@pytest.mark.parametrize(
    ("doc", "title"),
    [
        ("one line", "one line"),
        ("\n    wraps\n    here\n\n    detail\n    ", "wraps here"),
        ("first\n   \n  second paragraph", "first"),
        ("", "no doc"),
        (None, "no doc"),
        ("\n\n", "no doc"),
    ],
)
def test_check_title(doc: str | None, title: str) -> None:
    assert check_title("test_no_doc", doc) == title
    # The reader reads the same docstring from the source: the same description.
    source = f"def test_no_doc():\n    {doc!r}\n" if doc is not None else "def test_no_doc(): 0\n"
    func = ast.parse(textwrap.dedent(source)).body[0]
    assert isinstance(func, ast.FunctionDef)
    assert check_title(func.name, ast.get_docstring(func, clean=True)) == title
