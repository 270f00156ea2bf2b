"""An instance directory: one lab machine's rendered files, Vagrant's state and labgen's state."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from labgen.core import resources
from labgen.core.errors import UsageError

STATE_FILE = "instance.json"
SSH_CONFIG = "ssh-config"


@dataclass
class InstanceState:
    """The few facts labgen keeps about a machine (written atomically)."""

    instance: str
    lab: str
    lab_path: str
    provider: str
    render_digest: str
    created: str
    # The provider's settings for this machine (its container, network, port, ...):
    # read by that provider alone.
    host: dict[str, Any] = field(default_factory=dict)
    engine: str = ""  # the Docker engine inside, as recipe.yaml names it (e.g. "28.5")
    # The steps that ran to completion, in the order they first did: the one record of
    # progress (run, verify, guide and check all read and write it through steps.py).
    steps_run: list[str] = field(default_factory=list)
    lab_digest: str = ""  # the lab files the machine was made from (Lab.digest)


@dataclass(frozen=True)
class Instance:
    """Where an instance lives and what it knows about itself."""

    name: str

    @property
    def path(self) -> Path:
        return resources.instances_dir() / self.name

    @property
    def ssh_config(self) -> Path:
        return self.path / SSH_CONFIG

    def exists(self) -> bool:
        return (self.path / STATE_FILE).is_file()

    def load(self) -> InstanceState:
        """The state file, or a UsageError saying the machine does not exist."""
        try:
            data = json.loads((self.path / STATE_FILE).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UsageError(
                f"no lab machine called {self.name!r}",
                hint=f"`labgen up {self.name}` brings one up; `labgen status` lists them",
            ) from None
        except (OSError, ValueError) as exc:
            raise UsageError(f"{self.path / STATE_FILE}: unreadable state: {exc}") from None
        try:
            return InstanceState(**data)
        except TypeError as exc:
            raise UsageError(f"{self.path / STATE_FILE}: unreadable state: {exc}") from None

    def save(self, state: InstanceState) -> None:
        write_json_atomic(self.path / STATE_FILE, asdict(state))


def write_json_atomic(path: Path, data: object) -> None:
    """Write JSON to a temporary file beside `path`, then rename it over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2)
            handle.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def all_instances() -> list[Instance]:
    """Every instance directory under the labgen home that has a state file."""
    root = resources.instances_dir()
    if not root.is_dir():
        return []
    # Names starting with a dot are renders in progress (moved into place when complete).
    return [
        Instance(p.name)
        for p in sorted(root.iterdir())
        if not p.name.startswith(".") and (p / STATE_FILE).is_file()
    ]
