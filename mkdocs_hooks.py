"""mkdocs hook (mkdocs.yml `hooks:`): the site's "Labs" section lists every page under
docs/labs/, so that no hand-kept list can forget one.

`labgen docs` writes a page per lab there (`labgen docs LAB` for a lab folder anywhere);
mkdocs calls `on_config` before it reads the nav, and this fills the `Labs:` entry with
those pages, each under the title of its `# ` heading (mkdocs itself would show a title
made from the file name on pages it renders before that one). The pages mkdocs.yml
names under `Labs:` come first, in its order (the seed's teaching order: a learner reads
netns before port forwarding); every other page follows, sorted by file name, so a new
lab's page needs no line there. Standard library only: the site builds wherever mkdocs
runs, offline.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

LABS_ENTRY = "Labs"
LABS_FOLDER = "labs"


def lab_pages(docs_dir: Path, first: list[str] | None = None) -> list[Any]:
    """The lab pages under `docs_dir`, as nav entries: {title: path} (the path relative
    to `docs_dir`), or the path alone for a page without a `# ` heading; the paths in
    `first` lead, in their order (one that does not exist is kept, for mkdocs to name),
    then the others by file name."""
    found = [f"{LABS_FOLDER}/{page.name}" for page in sorted((docs_dir / LABS_FOLDER).glob("*.md"))]
    leading = list(dict.fromkeys(first or []))
    return [_entry(docs_dir, path) for path in leading + [p for p in found if p not in leading]]


def _entry(docs_dir: Path, path: str) -> Any:
    page = docs_dir / path
    lines = page.read_text(encoding="utf-8").splitlines() if page.is_file() else []
    title = next((line[2:].strip() for line in lines if line.startswith("# ")), "")
    return {title: path} if title else path


def _paths(entries: Any) -> list[str]:
    """The page paths of a nav list as mkdocs.yml writes it (paths, or {title: path})."""
    paths: list[str] = []
    for entry in entries or []:
        if isinstance(entry, str):
            paths.append(entry)
        elif isinstance(entry, dict):
            paths += [v for v in entry.values() if isinstance(v, str)]
    return paths


def on_config(config: Any) -> Any:
    """Fill nav's `Labs:` entry; a nav without one is left as it is (mkdocs then says
    which pages no nav names)."""
    for entry in config["nav"] or []:
        if isinstance(entry, dict) and LABS_ENTRY in entry:
            entry[LABS_ENTRY] = lab_pages(Path(config["docs_dir"]), _paths(entry[LABS_ENTRY]))
    return config
