"""The reference page of `labgen.checklib` (docs/checklib.md), made from the module itself.

Signatures come from `inspect`, texts from the docstrings: the page cannot say
something the helpers do not do. Examples after `>>>` are the ones tests/test_doctests.py
runs; an indented block after a line ending in a colon shows a use in a check.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from labgen.inmachine import checklib

PAGE = "checklib.md"
# Lines of code on the page, as ruff formats the project's.
_WIDTH = 100

_INTRO = """\
Import them in a lab's checks.py: `from labgen.checklib import rules, container_pid`.
The `>>>` examples run in labgen's tests against the machine they describe: Docker's
bridge docker0 (172.17.0.1/16) with one container, nstest (pid 4242, 172.17.0.2),
whose eth0 pairs with veth1443075 on the machine."""


def render_reference() -> str:
    """docs/checklib.md: every helper of `labgen.checklib.__all__`, in that order, with
    its signature, its docstring and its examples, after a table of them.

    >>> page = render_reference()
    >>> page.splitlines()[0]
    '# Check helpers: labgen.checklib'
    >>> "def rules(" in page and "```pycon" in page
    True
    """
    helpers = [(name, getattr(checklib, name)) for name in checklib.__all__]
    parts = [
        "# Check helpers: labgen.checklib",
        "<!-- Generated from the module by labgen.docs.checkref.render_reference(): "
        "edit the docstrings in generator/labgen/inmachine/checklib.py, not this page. -->",
        _markdown(inspect.getdoc(checklib) or ""),
        _INTRO,
        "| helper | what it answers |\n| --- | --- |\n"
        + "\n".join(f"| [`{name}`](#{name}) | {_summary(f)} |" for name, f in helpers),
        *(_section(name, f) for name, f in helpers),
    ]
    return "\n\n".join(parts) + "\n"


def write_reference(docs_dir: Path) -> Path:
    """Write render_reference() to DOCS_DIR/checklib.md; returns the path."""
    path = docs_dir / PAGE
    path.write_text(render_reference(), encoding="utf-8")
    return path


def _summary(helper: Callable[..., Any]) -> str:
    """The docstring's first sentence-line, fit for a table cell."""
    first = (inspect.getdoc(helper) or "").split("\n\n")[0]
    return " ".join(first.split()).replace("|", "\\|")


def _section(name: str, helper: Callable[..., Any]) -> str:
    return f"## {name}\n\n```python\n{_signature(name, helper)}\n```\n\n" + _markdown(
        inspect.getdoc(helper) or ""
    )


class _Annotation(str):
    """An annotation as the source writes it: checklib's are strings (postponed
    evaluation), and inspect would print them quoted."""

    def __repr__(self) -> str:
        return str(self)


def _signature(name: str, helper: Callable[..., Any]) -> str:
    """`def name(...) -> ...` as the source has it; a parameter a line when too long.

    >>> print(_signature("ipv4_of", checklib.ipv4_of))
    def ipv4_of(iface: dict[str, Any]) -> list[str]
    """
    sig = inspect.signature(helper)
    params = [
        p.replace(annotation=_Annotation(p.annotation)) if isinstance(p.annotation, str) else p
        for p in sig.parameters.values()
    ]
    returns = sig.return_annotation
    sig = sig.replace(
        parameters=params,
        return_annotation=_Annotation(returns) if isinstance(returns, str) else returns,
    )
    line = f"def {name}{sig}"
    if len(line) <= _WIDTH:
        return line
    inner, _, tail = str(sig)[1:].rpartition(")")
    pieces = _split_parameters(inner)
    return f"def {name}(\n" + "".join(f"    {piece},\n" for piece in pieces) + f"){tail}"


def _split_parameters(inner: str) -> list[str]:
    """The parameters of a signature's text, split at the commas between them (not at
    those inside brackets: dict[str, Any])."""
    pieces, depth, current = [], 0, ""
    for char in inner:
        depth += {"[": 1, "(": 1, "]": -1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            pieces.append(current.strip())
            current = ""
        else:
            current += char
    return [*pieces, current.strip()] if current.strip() else pieces


def _markdown(doc: str) -> str:
    """A docstring as Markdown: `>>>` examples and indented blocks become fenced code."""
    return "\n\n".join(_blocks(doc.splitlines()))


def _blocks(lines: list[str]) -> Iterator[str]:
    """The docstring's paragraphs, one per item: text as is, code fenced."""
    index = 0
    while index < len(lines):
        line = lines[index]
        if not line.strip():
            index += 1
        elif line.startswith(">>>"):
            end = _end_of(lines, index, lambda text: bool(text.strip()))
            yield "```pycon\n" + "\n".join(lines[index:end]) + "\n```"
            index = end
        elif line.startswith("    "):
            end = _end_of(lines, index, lambda text: not text.strip() or text.startswith("    "))
            while not lines[end - 1].strip():
                end -= 1
            yield "```python\n" + "\n".join(text[4:] for text in lines[index:end]) + "\n```"
            index = end
        else:
            end = _end_of(lines, index, lambda text: bool(text.strip()) and not _opens(text))
            yield "\n".join(lines[index:end])
            index = end


def _opens(line: str) -> bool:
    """Whether `line` starts a code block inside a paragraph."""
    return line.startswith((">>>", "    "))


def _end_of(lines: list[str], start: int, belongs: Callable[[str], bool]) -> int:
    """The index after the run of lines from `start` that `belongs` accepts."""
    end = start + 1
    while end < len(lines) and belongs(lines[end]):
        end += 1
    return end
