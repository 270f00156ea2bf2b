"""The list of hosts labgen may put machines on (`labgen hosts add|list|remove`).

A host is a name and a URL: `ssh://[user@]host[:port]` for a Docker host,
`qemu+ssh://[user@]host[:port]/system` for a libvirt one. The list is one JSON file
under LABGEN_HOME/hosts, written atomically. Docker's ssh:// transport and libvirt's
qemu+ssh:// both run the `ssh` found on PATH (the Docker CLI offers no supported way to
hand it options), so labgen keeps its own ssh config and known_hosts beside the list and
a two-line `ssh` wrapper that uses them; `Host.env()` puts that wrapper first on PATH.
Nothing is ever written into ~/.ssh; the user's ~/.ssh/config still applies (Included).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shlex
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from labgen.core import resources
from labgen.core.errors import UsageError

HOSTS_FILE = "hosts.json"
LOCAL_NAME = "local"
SCHEMES: dict[str, Literal["docker", "libvirt"]] = {"ssh": "docker", "qemu+ssh": "libvirt"}
# A DNS name or an IPv4/IPv6 address: nothing that a shell or ssh_config would read as more.
_HOSTNAME = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|[0-9A-Fa-f:.]+)$")
_USER = re.compile(r"^[a-z_][a-z0-9_.-]{0,31}$")
_LIBVIRT_PATHS = ("/system", "/session")


@dataclass(frozen=True)
class Host:
    """A registered host: where its Docker (or libvirt) answers, over SSH."""

    name: str
    url: str
    kind: Literal["docker", "libvirt", "local"] = "docker"

    @property
    def is_local(self) -> bool:
        """This machine: no SSH, no URL."""
        return self.kind == "local"

    @property
    def ssh_user(self) -> str:
        """The login user of the URL ("" when the URL names none: ssh's own default)."""
        return urlsplit(self.url).username or ""

    @property
    def ssh_hostname(self) -> str:
        """The host part of the URL."""
        return urlsplit(self.url).hostname or ""

    @property
    def ssh_port(self) -> int:
        """The port of the URL, 22 when it names none."""
        return urlsplit(self.url).port or 22

    def ssh_destination(self) -> str:
        """`user@host` or `host`, as ssh takes it."""
        user = self.ssh_user
        return f"{user}@{self.ssh_hostname}" if user else self.ssh_hostname

    def env(self) -> dict[str, str]:
        """The environment a docker, virsh or vagrant call aimed at this host needs.

        >>> LOCAL.env()
        {}
        """
        if self.is_local:
            return {}
        wrapper_dir = ensure_ssh_settings()
        path = f"{wrapper_dir}{os.pathsep}{os.environ.get('PATH', os.defpath)}"
        target = "DOCKER_HOST" if self.kind == "docker" else "LIBVIRT_DEFAULT_URI"
        return {"PATH": path, target: self.url}

    def ssh_command(self) -> list[str]:
        """The argv prefix of an `ssh` to this host with labgen's ssh settings; append a
        remote command (or `-W host:port` for a ProxyCommand)."""
        if self.is_local:
            raise UsageError("the host 'local' is this machine: there is no ssh to it")
        ensure_ssh_settings()
        port = ["-p", str(self.ssh_port)]
        return [real_ssh(), "-F", str(ssh_config_path()), *port, self.ssh_destination()]


LOCAL = Host(LOCAL_NAME, "", "local")


def hosts_dir() -> Path:
    """Where the host list and labgen's own ssh settings live."""
    return resources.labgen_home() / "hosts"


def ssh_config_path() -> Path:
    """labgen's own ssh config (Includes ~/.ssh/config, records keys in its own file)."""
    return hosts_dir() / "ssh_config"


def known_hosts_path() -> Path:
    """The host keys labgen recorded (never ~/.ssh/known_hosts)."""
    return hosts_dir() / "known_hosts"


def extra_config_dir() -> Path:
    """ssh_config snippets Included by labgen's config (a test's key for its sim hosts)."""
    return hosts_dir() / "ssh_config.d"


def real_ssh() -> str:
    """The system ssh, never labgen's own wrapper."""
    wrapper_dir = str(hosts_dir() / "bin")
    rest = os.pathsep.join(
        p for p in os.environ.get("PATH", os.defpath).split(os.pathsep) if p != wrapper_dir
    )
    return shutil.which("ssh", path=rest) or "/usr/bin/ssh"


def ssh_config_text() -> str:
    """labgen's ssh config. ssh keeps the first value it reads for each option, so labgen's
    known_hosts comes first; the user's config and the snippets follow.

    >>> "StrictHostKeyChecking accept-new" in ssh_config_text()
    True
    """
    lines = [
        "# Written by labgen: its hosts' SSH settings. Edit ~/.ssh/config instead.",
        "Host *",
        f"  UserKnownHostsFile {_config_quote(known_hosts_path())}",
        "  StrictHostKeyChecking accept-new",
        "  BatchMode yes",
        "  ConnectTimeout 10",
        "  ServerAliveInterval 15",
        "  ServerAliveCountMax 4",
        f"Include {_config_quote(extra_config_dir())}/*.conf",
    ]
    user_config = Path.home() / ".ssh" / "config"
    if user_config.is_file():
        lines.append(f"Include {_config_quote(user_config)}")
    return "\n".join(lines) + "\n"


def _config_quote(path: Path) -> str:
    return f'"{path}"' if " " in str(path) else str(path)


def ensure_ssh_settings() -> Path:
    """Write labgen's ssh config and `ssh` wrapper if they are missing or stale; return
    the wrapper's directory (to go first on PATH)."""
    base = resources.writable_dir(hosts_dir())
    extra_config_dir().mkdir(exist_ok=True)
    _write_if_changed(ssh_config_path(), ssh_config_text(), 0o600)
    wrapper = base / "bin" / "ssh"
    wrapper.parent.mkdir(exist_ok=True)
    script = (
        f'#!/bin/sh\nexec {shlex.quote(real_ssh())} -F {shlex.quote(str(ssh_config_path()))} "$@"\n'
    )
    _write_if_changed(wrapper, script, 0o755)
    return wrapper.parent


def _write_if_changed(path: Path, text: str, mode: int) -> None:
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return
    _write_atomic(path, text, mode)


def _write_atomic(path: Path, text: str, mode: int = 0o644) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def validate_url(url: str) -> Literal["docker", "libvirt"]:
    """The kind of host a URL names, or a UsageError naming the argument URL.

    >>> validate_url("ssh://root@10.0.0.5:2222")
    'docker'
    >>> validate_url("qemu+ssh://kvm1/system")
    'libvirt'
    """
    parts = urlsplit(url)
    kind = SCHEMES.get(parts.scheme)
    if kind is None:
        raise UsageError(
            f"argument URL {url!r}: use ssh://[user@]host[:port] for a Docker host or "
            "qemu+ssh://[user@]host[:port]/system for a libvirt one"
        )
    _check_netloc(url, parts.hostname or "", parts.username, parts.password)
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise UsageError(f"argument URL {url!r}: the port must be a number 1-65535") from None
    if parts.query or parts.fragment:
        raise UsageError(f"argument URL {url!r}: no ?query or #fragment")
    if kind == "docker" and parts.path not in ("", "/"):
        raise UsageError(f"argument URL {url!r}: an ssh:// Docker host takes no path")
    if kind == "libvirt" and parts.path not in _LIBVIRT_PATHS:
        raise UsageError(f"argument URL {url!r}: end a qemu+ssh:// URL with /system")
    return kind


def _check_netloc(url: str, hostname: str, user: str | None, password: str | None) -> None:
    if password is not None:
        raise UsageError(
            f"argument URL {url!r}: no password in the URL; labgen logs in with SSH keys"
        )
    if not hostname or not _HOSTNAME.fullmatch(hostname) or hostname.startswith("-"):
        raise UsageError(f"argument URL {url!r}: name the host, e.g. ssh://user@host")
    if user is not None and not _USER.fullmatch(user):
        raise UsageError(f"argument URL {url!r}: the user {user!r} is not a plain login name")


def validate_host_name(name: str) -> str:
    """A host name is a machine name ('local' is this machine and taken).

    >>> validate_host_name("rack-2")
    'rack-2'
    """
    resources.validate_name(name, "host name")
    if name == LOCAL_NAME:
        raise UsageError("host name 'local' is this machine: pick another name")
    return name


def load() -> list[Host]:
    """Every registered host, in the order added (LOCAL is never stored)."""
    path = hosts_dir() / HOSTS_FILE
    if not path.is_file():
        return []
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))["hosts"]
        return [Host(r["name"], r["url"], SCHEMES[urlsplit(r["url"]).scheme]) for r in rows]
    except (ValueError, KeyError, TypeError) as exc:
        raise UsageError(
            f"{path} is not a host list labgen wrote ({exc})",
            hint="fix or remove it, then `labgen hosts add` the hosts again",
        ) from None


def get(name: str | None) -> Host:
    """The host called `name` (None or "local": this machine), else a UsageError."""
    if name in (None, "", LOCAL_NAME):
        return LOCAL
    hosts = load()
    for host in hosts:
        if host.name == name:
            return host
    known = ", ".join(h.name for h in hosts) or "none yet"
    raise UsageError(
        f"unknown host {name!r} (known: local, {known})"
        if hosts
        else f"unknown host {name!r}: no host is registered",
        hint="add it with `labgen hosts add NAME ssh://user@host`",
    )


def add(name: str, url: str) -> Host:
    """Register a host; UsageError for a bad name or URL, or a name already taken."""
    validate_host_name(name)
    kind = validate_url(url)
    host = Host(name, url.rstrip("/") if kind == "docker" else url, kind)
    with _locked():
        hosts = load()
        if any(h.name == name for h in hosts):
            raise UsageError(
                f"host name {name!r} is already registered",
                hint=f"`labgen hosts remove {name}` first, or pick another name",
            )
        _save([*hosts, host])
    ensure_ssh_settings()
    return host


def remove(name: str) -> Host:
    """Unregister a host (the machines on it are not touched); the host removed."""
    with _locked():
        host = get(name)
        if host.is_local:
            raise UsageError("host 'local' is this machine and cannot be removed")
        _save([h for h in load() if h.name != name])
    return host


def _save(hosts: list[Host]) -> None:
    rows = [{"name": h.name, "url": h.url} for h in hosts]
    _write_atomic(hosts_dir() / HOSTS_FILE, json.dumps({"hosts": rows}, indent=2) + "\n")


@contextmanager
def _locked() -> Iterator[None]:
    # Two `hosts add` at once must not lose one of the two.
    base = resources.writable_dir(hosts_dir())
    with open(base / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
