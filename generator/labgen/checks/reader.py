"""A lab's checks as documentation: read from checks.py with `ast`, never imported.

checks.py imports testinfra-world code and is meant to run against a lab machine;
lint and the docs pages only need each check's step, `until` and description.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from labgen.core.errors import UsageError
from labgen.core.lab import Lab
from labgen.inmachine.pytest_plugin import check_title


@dataclass(frozen=True)
class CheckDoc:
    """One check of a lab, as documented: its step, its description, where it is."""

    name: str
    description: str
    step: str
    until: str | None
    line: int


def read_checks(lab: Lab) -> list[CheckDoc]:
    """The checks of `lab`'s checks.py, in source order, without importing it.

    A check is a `test_*` function (module level, or a method of a `Test*` class)
    with `@pytest.mark.step("id", until=...)` on itself or its class. Its
    description is its docstring's summary (the first paragraph, on one line), else
    its name without `test_` and with spaces for underscores (what `labgen check`
    prints: `labgen.inmachine.pytest_plugin.check_title`).
    Marker arguments must be string literals and name steps of the lab.
    A UsageError names every problem found.
    """
    checks, problems = scan_checks(lab.checks_file, [step.id for step in lab.steps])
    if problems:
        raise UsageError("\n".join(problems))
    return checks


class ChecksSyntaxError(UsageError):
    """checks.py is not valid Python (so it cannot import either)."""


def scan_checks(path: Path, step_ids: Sequence[str] | None) -> tuple[list[CheckDoc], list[str]]:
    """The checks of `path` and every problem of their markers, as `path:line: ...`.

    `step_ids`: the lab's steps, or None when they are not known (then a marker's
    step names are not checked). Raises ChecksSyntaxError when the file does not
    parse, UsageError when it cannot be read.
    """
    tree = _parse(path)
    checks: list[CheckDoc] = []
    problems: list[str] = []
    for func, inherited in _test_functions(path, tree, problems):
        doc = _check_doc(path, func, inherited, step_ids, problems)
        if doc is not None:
            checks.append(doc)
    return checks, problems


def _parse(path: Path) -> ast.Module:
    try:
        source = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    try:
        return ast.parse(source, filename=str(path))
    except SyntaxError as exc:
        raise ChecksSyntaxError(f"{path}:{exc.lineno}: not valid Python: {exc.msg}") from None


_Function = ast.FunctionDef | ast.AsyncFunctionDef


def _test_functions(
    path: Path, tree: ast.Module, problems: list[str]
) -> Iterator[tuple[_Function, _Marker | None]]:
    """The module's functions and those of its Test classes, each with the marker of
    its class (None for a module-level function or an unmarked class), in file order
    (so that problems are too)."""
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node, None
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            class_marker = _step_marker(path, node.decorator_list, problems)
            for member in node.body:
                if isinstance(member, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    yield member, class_marker


def _check_doc(
    path: Path,
    func: _Function,
    inherited: _Marker | None,
    step_ids: Sequence[str] | None,
    problems: list[str],
) -> CheckDoc | None:
    """One check read as documentation, or None (not a check, or a problem added)."""
    if not func.name.startswith("test"):
        return None
    marker = _step_marker(path, func.decorator_list, problems) or inherited
    if marker is None:
        problems.append(
            f'{path}:{func.lineno}: check {func.name} has no @pytest.mark.step("STEP") marker'
        )
        return None
    if not marker.valid:
        return None  # already reported where the marker is
    for value, what in ((marker.step, "step"), (marker.until, "until=")):
        if value is not None and step_ids is not None and value not in step_ids:
            problems.append(
                f"{path}:{marker.line}: check {func.name} names unknown step {value!r} "
                f"in {what}; the lab's steps are: {', '.join(step_ids)}"
            )
            return None
    return CheckDoc(
        name=func.name,
        # What `labgen check` prints for it too: one function, so they never disagree.
        description=check_title(func.name, ast.get_docstring(func, clean=True)),
        step=marker.step,
        until=marker.until,
        line=func.lineno,
    )


@dataclass(frozen=True)
class _Marker:
    step: str
    until: str | None
    line: int
    valid: bool = True


def _step_marker(path: Path, decorators: Sequence[ast.expr], problems: list[str]) -> _Marker | None:
    """The `@pytest.mark.step(...)` (or `@mark.step(...)`) among `decorators`; a
    malformed one is added to `problems` (and counts as a marker, not as none)."""
    for deco in decorators:
        if not (isinstance(deco, ast.Call) and _is_step_mark(deco.func)):
            continue
        args = list(deco.args)
        until_node = next((kw.value for kw in deco.keywords if kw.arg == "until"), None)
        step_node = (
            args[0]
            if args
            else next((kw.value for kw in deco.keywords if kw.arg in ("id", "step")), None)
        )
        step = _literal_str(step_node)
        until = _literal_str(until_node) if until_node is not None else None
        if step is None or (until_node is not None and until is None):
            problems.append(
                f"{path}:{deco.lineno}: @pytest.mark.step needs string literals "
                '(`@pytest.mark.step("id", until="id")`) so that the docs can name the steps'
            )
            return _Marker(step="", until=None, line=deco.lineno, valid=False)
        return _Marker(step=step, until=until, line=deco.lineno)
    return None


def _is_step_mark(func: ast.expr) -> bool:
    return (
        isinstance(func, ast.Attribute)
        and func.attr == "step"
        and (
            (isinstance(func.value, ast.Attribute) and func.value.attr == "mark")
            or (isinstance(func.value, ast.Name) and func.value.id == "mark")
        )
    )


def _literal_str(node: ast.expr | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None
