"""A lab's checks as documentation: read from checks.py with `ast`, never imported.

checks.py imports testinfra-world code and is meant to run against a lab machine;
lint and the docs pages only need each check's step, `until` and description.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import UsageError
from .lab import Lab


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
    description is the first line of its docstring, else its name without
    `test_` and with spaces for underscores (what `labgen check` prints).
    Marker arguments must be string literals and name steps of the lab.
    """
    path = lab.checks_file
    try:
        source = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        tree = ast.parse(source, filename=str(path))
    except SyntaxError as exc:
        raise UsageError(f"{path}:{exc.lineno}: not valid Python: {exc.msg}") from None

    step_ids = [step.id for step in lab.steps]
    checks: list[CheckDoc] = []

    def visit(func: ast.FunctionDef | ast.AsyncFunctionDef, inherited: _Marker | None) -> None:
        if not func.name.startswith("test"):
            return
        marker = _step_marker(path, func.decorator_list) or inherited
        if marker is None:
            raise UsageError(
                f'{path}:{func.lineno}: check {func.name} has no @pytest.mark.step("STEP") marker'
            )
        for value, what in ((marker.step, "step"), (marker.until, "until=")):
            if value is not None and value not in step_ids:
                raise UsageError(
                    f"{path}:{marker.line}: check {func.name} names unknown step {value!r} "
                    f"in {what}; the lab's steps are: {', '.join(step_ids)}"
                )
        doc = ast.get_docstring(func, clean=True) or ""
        description = (
            doc.strip().splitlines()[0].strip()
            if doc.strip()
            else func.name.removeprefix("test_").replace("_", " ")
        )
        checks.append(
            CheckDoc(
                name=func.name,
                description=description,
                step=marker.step,
                until=marker.until,
                line=func.lineno,
            )
        )

    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            visit(node, None)
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            class_marker = _step_marker(path, node.decorator_list)
            for member in node.body:
                if isinstance(member, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    visit(member, class_marker)
    return checks


@dataclass(frozen=True)
class _Marker:
    step: str
    until: str | None
    line: int


def _step_marker(path: Path, decorators: Sequence[ast.expr]) -> _Marker | None:
    """The `@pytest.mark.step(...)` (or `@mark.step(...)`) among `decorators`."""
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
            raise UsageError(
                f"{path}:{deco.lineno}: @pytest.mark.step needs string literals "
                '(`@pytest.mark.step("id", until="id")`) so that the docs can name the steps'
            )
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
