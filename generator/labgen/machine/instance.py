"""An instance directory: one lab machine's rendered files, Vagrant's state and labgen's state."""

from __future__ import annotations

import json
import os
import shlex
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import ConfigDict, TypeAdapter, ValidationError

from labgen.core import resources
from labgen.core.errors import UsageError

if TYPE_CHECKING:
    from labgen.hosts.registry import Host

STATE_FILE = "instance.json"
SSH_CONFIG = "ssh-config"

T = TypeVar("T")


@dataclass
class InstanceState:
    """The few facts labgen keeps about a machine (written atomically)."""

    # A key this labgen does not know is a file it did not write: refuse it.
    __pydantic_config__ = ConfigDict(extra="forbid")

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
    # A machine of the warm pool (machine/pool.py): made ahead, no lab yet.
    pooled: bool = False
    # The pooled machine this one was claimed from: its container, network and labels
    # keep that name (Docker's labels cannot change). "": made as itself.
    made_as: str = ""
    # The registered host (labgen.hosts.registry) the machine runs on; "": this one.
    # Every Docker and Vagrant call for it runs with that host's environment.
    on_host: str = ""

    @property
    def made_as_name(self) -> str:
        """The name the provider's side of this machine carries (container, labels)."""
        return self.made_as or self.instance


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
        return validated(InstanceState, data, self.path / STATE_FILE, "state")

    def save(self, state: InstanceState) -> None:
        write_json_atomic(self.path / STATE_FILE, asdict(state))


def host_of(root: Path) -> str:
    """The host the machine of instance dir `root` runs on ("": this one, or no state
    file yet); read without validation, for Vagrant's environment."""
    try:
        data = json.loads((root / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    host = data.get("on_host", "") if isinstance(data, dict) else ""
    return host if isinstance(host, str) else ""


def validated(kind: type[T], data: object, path: Path, what: str) -> T:
    """`data`, read from `path`, as a `kind` (a dataclass) whose fields have their types.

    Else a UsageError naming the file and each field that is wrong:

    >>> try:
    ...     validated(InstanceState, {"instance": 1}, Path("i.json"), "state")
    ... except UsageError as exc:
    ...     print(exc.message.split("; ")[0])
    i.json: unreadable state: field 'instance': Input should be a valid string
    """
    try:
        return TypeAdapter(kind).validate_python(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"field '{_dotted(e['loc'])}': {e['msg']}" if e["loc"] else str(e["msg"])
            for e in exc.errors()
        )
        raise UsageError(f"{path}: unreadable {what}: {problems}") from None


def _dotted(loc: Sequence[int | str]) -> str:
    """A field's place as `steps_run[1]` or `host.port`."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


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


# --- where a machine runs: this host ("") or a host of the host registry -------------
# Every Docker and Vagrant call for a machine asks here, by the name its state keeps
# (InstanceState.on_host): a machine on this host never touches the host registry.

LOCAL = "local"  # the name of this machine, never stored in a machine's state


def host_name(name: str | None) -> str:
    """The host a machine is asked for, as its state keeps it: "" for this machine,
    else a registered host's name (a UsageError naming the known hosts otherwise).

    >>> host_name(None), host_name("local"), host_name("")
    ('', '', '')
    """
    if not name or name == LOCAL:
        return ""
    return _host(name).name


def _host(name: str) -> Host:
    # Imported here: a machine on this host must not depend on the registry at all.
    from labgen.hosts import registry

    return registry.get(name)


def host_env(on_host: str) -> dict[str, str]:
    """What the environment of a docker or Vagrant call for a machine on `on_host`
    adds (DOCKER_HOST and labgen's ssh settings); {} for this host.

    >>> host_env("")
    {}
    """
    return _host(on_host).env() if on_host else {}


def proxy_command(on_host: str) -> str:
    """The ProxyCommand that reaches a machine's SSH port on `on_host` (its port is
    published on that host's 127.0.0.1): an ssh to the host with `-W %h:%p`, both
    tokens filled in by Vagrant, OpenSSH and paramiko alike; "" for this host.

    >>> proxy_command("")
    ''
    """
    if not on_host:
        return ""
    return shlex.join([*_host(on_host).ssh_command(), "-W", "%h:%p"])


def host_label(on_host: str) -> str:
    """The host's name as status and messages show it.

    >>> host_label(""), host_label("sim-b")
    ('local', 'sim-b')
    """
    return on_host or LOCAL
