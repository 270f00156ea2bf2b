"""docs/checklib.md is what labgen.docs.checkref renders from checklib: a docstring
changed without the page regenerated fails here, and every helper has its example."""

from __future__ import annotations

import inspect
from pathlib import Path

from labgen.docs import checkref
from labgen.inmachine import checklib

PAGE = Path(__file__).resolve().parents[2] / "docs" / checkref.PAGE
REGENERATE = (
    "regenerate it: python -c 'from pathlib import Path; from labgen.docs.checkref import "
    'write_reference; write_reference(Path("docs"))\''
)


def test_the_committed_page_is_the_rendered_one() -> None:
    assert PAGE.read_text(encoding="utf-8") == checkref.render_reference(), REGENERATE


def test_every_helper_has_its_signature_and_an_example() -> None:
    page = checkref.render_reference()
    for name in checklib.__all__:
        section = page.split(f"\n## {name}\n", 1)[1].split("\n## ", 1)[0]
        assert f"def {name}(" in section, name
        # A `>>>` example that runs, or a use in a check; both are fenced code.
        assert "```pycon\n>>> " in section or "\n```python\n" in section.split("```\n", 1)[1], name
        params = inspect.signature(getattr(checklib, name)).parameters
        assert all(p in section.split("```", 2)[1] for p in params), name


def test_docstring_code_becomes_fenced_blocks() -> None:
    doc = (
        "One line.\n\nText, and a use:\n\n    x = rules(host, 'nat')\n    assert x\n\n"
        ">>> 1 + 1\n2\n\nAfter."
    )
    assert checkref._markdown(doc) == (
        "One line.\n\nText, and a use:\n\n```python\nx = rules(host, 'nat')\nassert x\n```"
        "\n\n```pycon\n>>> 1 + 1\n2\n```\n\nAfter."
    )


def test_a_long_signature_gets_a_parameter_a_line() -> None:
    text = checkref._signature("rule_counters", checklib.rule_counters)
    assert text.splitlines() == [
        "def rule_counters(",
        "    host: Any,",
        "    table: str,",
        "    *,",
        "    pid: int | None = None,",
        "    netns: str | None = None,",
        ") -> dict[str, tuple[int, int]]",
    ]
