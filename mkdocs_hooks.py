"""mkdocs hook (mkdocs.yml `hooks:`): the site's "Labs" section lists every page under
docs/labs/, so that no hand-kept list can forget one.

`labgen docs` writes a page per lab there (`labgen docs LAB` for a lab folder anywhere);
mkdocs calls `on_config` before it reads the nav, and this fills the `Labs:` entry
with those pages, sorted by file name, each under the title of its `# ` heading (mkdocs
itself would show a title made from the file name on pages it renders before that one).
Standard library only: the site builds wherever mkdocs runs, offline.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

LABS_ENTRY = "Labs"
LABS_FOLDER = "labs"


def lab_pages(docs_dir: Path) -> list[Any]:
    """The lab pages under `docs_dir`, as nav entries: {title: path} (the path relative
    to `docs_dir`), or the path alone for a page without a `# ` heading."""
    entries: list[Any] = []
    for page in sorted((docs_dir / LABS_FOLDER).glob("*.md")):
        path = f"{LABS_FOLDER}/{page.name}"
        lines = page.read_text(encoding="utf-8").splitlines()
        title = next((line[2:].strip() for line in lines if line.startswith("# ")), "")
        entries.append({title: path} if title else path)
    return entries


def on_config(config: Any) -> Any:
    """Fill nav's `Labs:` entry; a nav without one is left as it is (mkdocs then says
    which pages no nav names)."""
    for entry in config["nav"] or []:
        if isinstance(entry, dict) and LABS_ENTRY in entry:
            entry[LABS_ENTRY] = lab_pages(Path(config["docs_dir"]))
    return config
