"""Where labgen's own data lives (labs, templates) and where it keeps machines."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

import platformdirs

from labgen.core.errors import PrerequisiteError, UsageError

_PACKAGE = Path(__file__).resolve().parent.parent  # labgen/, above core/


def data_root() -> Path:
    """The folder holding labs/, templates/ and Vagrantfile.j2.

    Inside an installed wheel they sit in labgen/_data; in a source checkout
    (an editable install) at the repository root, two levels above this package
    (generator/labgen/).
    """
    bundled = _PACKAGE / "_data"
    if (bundled / "Vagrantfile.j2").is_file():
        return bundled
    return _PACKAGE.parent.parent


def labs_dir() -> Path:
    """The labs that ship with labgen."""
    return data_root() / "labs"


def templates_dir() -> Path:
    """Jinja2 templates and the box's scripts."""
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


def writable_dir(path: Path) -> Path:
    """`path`, made if need be; a PrerequisiteError naming it when it cannot be."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        # A name of its own for each probe: verify -j N asks from N threads at once.
        handle, probe = tempfile.mkstemp(prefix=".write-test-", dir=path)
        os.close(handle)
        os.unlink(probe)
    except OSError as exc:
        raise PrerequisiteError(
            f"labgen cannot write to {path}: {exc.strerror}",
            hint="point LABGEN_HOME at a folder you may write to",
        ) from None
    return path


def instances_dir() -> Path:
    """Where each machine's instance directory lives."""
    return labgen_home() / "instances"


def machine_id(instance: str) -> str:
    """The host-wide name of an instance's machine (container, domain, VM name).

    >>> from unittest import mock
    >>> with mock.patch.dict("os.environ", LABGEN_HOME="/tmp/doc-home"):
    ...     machine_id("netns")
    'labgen-netns-117618'
    """
    return f"labgen-{instance}-{home_tag()}"


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
