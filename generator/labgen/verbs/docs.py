"""`labgen docs`: write the documentation pages from the lab files, or say which are stale."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from labgen.core.context import Context
from labgen.core.lab import Lab, iter_labs, load_lab, load_lab_dir
from labgen.docs.pages import (
    check_docs,
    default_seed_path,
    kept_lab_dirs,
    write_docs,
    write_lab_pages,
)


def docs(ctx: Context, out_dir: Path, check_only: bool, lab_refs: Sequence[str] = ()) -> list[Path]:
    """Regenerate the pages under `out_dir` (returns those written), or with
    `check_only` write nothing and return the pages that are missing or stale.

    With `lab_refs` (lab names or folders anywhere), only those labs' pages: no other
    lab is read, so a folder of labs where some are broken does not stand in the way.
    Without, every page: the labs searched (bundled, --labs), and the labs elsewhere
    whose pages are already under `out_dir` (their first line names the folder).
    """
    if lab_refs:
        chosen = [load_lab(ref, ctx.labs_path) for ref in lab_refs]
        if check_only:
            return check_docs(out_dir, chosen, "", only_labs=True)
        return write_lab_pages(out_dir, chosen)
    labs = _every_lab(ctx, out_dir)
    seed = default_seed_path().read_text(encoding="utf-8")
    if check_only:
        return check_docs(out_dir, labs, seed)
    return write_docs(out_dir, labs, seed)


def _every_lab(ctx: Context, out_dir: Path) -> list[Lab]:
    """The labs searched, then those that pages under `out_dir` name (the first of a name
    wins, as on the search path)."""
    labs = list(iter_labs(ctx.labs_path))
    names = {lab.name for lab in labs}
    for folder in kept_lab_dirs(out_dir):
        if folder.name not in names:
            labs.append(load_lab_dir(folder))
            names.add(folder.name)
    return labs
