"""`labgen docs`: write the documentation pages from the lab files, or say which are stale."""

from __future__ import annotations

from pathlib import Path

from labgen.core.context import Context
from labgen.core.lab import iter_labs
from labgen.docs.pages import check_docs, default_seed_path, write_docs


def docs(ctx: Context, out_dir: Path, check_only: bool) -> list[Path]:
    """Regenerate the pages under `out_dir` (returns those written), or with
    `check_only` write nothing and return the pages that are missing or stale."""
    labs = list(iter_labs(ctx.labs_path))
    seed = default_seed_path().read_text(encoding="utf-8")
    if check_only:
        return check_docs(out_dir, labs, seed)
    return write_docs(out_dir, labs, seed)
