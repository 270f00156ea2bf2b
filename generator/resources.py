"""Where labgen's own data lives (labs, templates) and where it keeps machines."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import platformdirs

from .errors import UsageError

_PACKAGE = Path(__file__).resolve().parent


def data_root() -> Path:
    """The folder holding labs/, templates/ and Vagrantfile.j2.

    Inside an installed wheel they sit in generator/_data; in a source checkout
    (or an editable install) they sit at the repository root.
    """
    bundled = _PACKAGE / "_data"
    if (bundled / "Vagrantfile.j2").is_file():
        return bundled
    return _PACKAGE.parent


def labs_dir() -> Path:
    return data_root() / "labs"


def templates_dir() -> Path:
    return data_root() / "templates"


def labgen_home() -> Path:
    """The per-user data directory; LABGEN_HOME overrides it (every test sets it)."""
    override = os.environ.get("LABGEN_HOME")
    if override:
        return Path(override).expanduser().resolve()
    return Path(platformdirs.user_data_dir("labgen", appauthor=False))


def home_tag() -> str:
    """A short tag of the labgen home, so that two homes' machines never share a name."""
    return hashlib.sha256(str(labgen_home()).encode()).hexdigest()[:6]


def instances_dir() -> Path:
    return labgen_home() / "instances"


# Lab and instance names end up in paths, container names, docker network names
# and shell scripts: keep them to a boring alphabet that is safe in all of them.
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")


def validate_name(name: str, what: str = "name") -> str:
    """Return `name` if it is a safe lab or instance name, else raise a UsageError."""
    if not _NAME.fullmatch(name) or name.endswith("-"):
        raise UsageError(
            f"invalid {what} {name!r}: use 1-40 lowercase letters, digits and dashes, "
            "starting with a letter or digit (no path separators, no leading dash)"
        )
    return name
