"""Driving Vagrant (through python-vagrant) for one instance directory."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import vagrant

from labgen.core.errors import MachineError, PrerequisiteError
from labgen.machine.instance import host_env, host_of

LOG_FILE = "vagrant.log"
# What Docker says when Vagrant inspects a container that was removed meanwhile.
_RACE = "Error: No such object:"


def vagrant_env(on_host: str = "") -> dict[str, str]:
    """The environment of every Vagrant call: no checkpoint calls home, no colours; for
    a machine on another host, that host's (DOCKER_HOST: the provider's `docker` calls,
    and the Vagrantfile's triggers', go there)."""
    env = {**os.environ, **host_env(on_host)}
    env["VAGRANT_CHECKPOINT_DISABLE"] = "1"
    env["VAGRANT_NO_COLOR"] = "1"
    env.setdefault("VAGRANT_DEFAULT_PROVIDER", "docker")
    return env


def require_vagrant() -> None:
    """A PrerequisiteError unless Vagrant is on PATH."""
    if shutil.which("vagrant") is None:
        raise PrerequisiteError(
            "labgen drives Vagrant, and `vagrant` is not on PATH",
            hint="install it: apt-get install vagrant (Debian) or from your OS's packages",
        )


class Machine:
    """The Vagrant machine of one instance directory."""

    def __init__(self, root: Path):
        require_vagrant()
        self.root = root
        self.log = root / LOG_FILE
        # The host is the machine's own (its state file), so no caller can forget it.
        self.env = vagrant_env(host_of(root))
        self._vagrant = vagrant.Vagrant(
            root=str(root),
            env=self.env,
            out_cm=vagrant.make_file_cm(str(self.log)),
            err_cm=vagrant.make_file_cm(str(self.log)),
        )

    def up(self, provider: str, on_line: Callable[[str], None], provision: bool = False) -> None:
        """`vagrant up --provider=P` (`--provision`: run the provisioners again, on a
        machine that exists); each line of its output goes to `on_line` and the log.

        Vagrant's docker provider lists every container on the host and then inspects
        each to find used ports; a container that another machine's destroy removes in
        between fails the whole up with "No such object". That race (seen with
        `verify -j`) is retried once; nothing was created when it strikes.
        """
        args = ["up", f"--provider={provider}", *(["--provision"] if provision else [])]
        for attempt in (1, 2):
            start = self.log.stat().st_size if self.log.exists() else 0
            code = self._stream(args, on_line)
            if code == 0:
                return
            if attempt == 1 and _RACE in self._since(start):
                on_line("Vagrant raced with another machine's removal; trying again")
                continue
            raise self._failed("vagrant up", subprocess.CalledProcessError(code, args))

    def _stream(self, args: list[str], on_line: Callable[[str], None]) -> int:
        """Run `vagrant ARGS`, its output to the log and `on_line`; its exit status.

        Run here rather than through python-vagrant, to hold the process: interrupted
        (Ctrl-C, SIGTERM), labgen stops Vagrant itself and waits for it, so that what
        Vagrant made can be destroyed next (a Vagrant still running holds the machine's
        lock, and `vagrant destroy` would refuse).
        """
        with open(self.log, "a", encoding="utf-8") as log:
            proc = subprocess.Popen(
                ["vagrant", *args],
                cwd=self.root,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
                # Its own process group: a Ctrl-C at the terminal reaches labgen, which
                # decides; Vagrant does not get half the signal and race us.
                start_new_session=True,
            )
            try:
                assert proc.stdout is not None
                for line in proc.stdout:
                    log.write(line)
                    log.flush()
                    on_line(line.rstrip("\n"))
                return proc.wait()
            except BaseException:
                stop_process_group(proc)
                raise

    def _since(self, offset: int) -> str:
        with open(self.log, encoding="utf-8", errors="replace") as log:
            log.seek(offset)
            return log.read()

    def destroy(self) -> None:
        """`vagrant destroy --force`."""
        try:
            self._vagrant.destroy()
        except subprocess.CalledProcessError as exc:
            raise self._failed("vagrant destroy", exc) from None

    def _failed(self, what: str, exc: subprocess.CalledProcessError) -> MachineError:
        return MachineError(
            f"{what} failed (exit {exc.returncode}):\n{tail(self.log)}",
            hint=f"the whole log is in {self.log}",
        )

    def state(self) -> str:
        """Vagrant's word for the machine: running, stopped, not_created, ..."""
        try:
            statuses = self._vagrant.status()
        except subprocess.CalledProcessError:
            return "unknown"
        return str(statuses[0].state) if statuses else "unknown"

    def ssh_config(self) -> str:
        """What `vagrant ssh-config` says: host, port, user and key of the machine."""
        try:
            return str(self._vagrant.ssh_config())
        except subprocess.CalledProcessError:
            raise MachineError(
                "`vagrant ssh-config` failed: the machine is not reachable over SSH",
                hint=f"see {self.log}",
            ) from None


def tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join("    " + line for line in text[-lines:])


def stop_process_group(proc: subprocess.Popen[str], grace: float = 30) -> None:
    """Interrupt a child and its group as Ctrl-C would; kill it if it lingers.

    Vagrant may end before the processes it started (a `docker` call of the provider):
    they are in its group, and are waited for too, so that nothing works on in an
    instance dir that is about to be removed.
    """
    started = descendants(proc.pid)  # before the signal: Vagrant may reparent them
    if proc.poll() is None:
        _signal_group(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            _signal_group(proc.pid, signal.SIGKILL)
            proc.wait()
    _end_group(proc.pid, grace=5)
    _end_processes(started, grace=5)


def _signal_group(pgid: int, number: int) -> bool:
    """Send `number` to the process group; False when the group has no process left."""
    try:
        os.killpg(pgid, number)
    except ProcessLookupError:
        return False
    return True


def _end_group(pgid: int, grace: float) -> None:
    """What is left of the group (its leader gone): interrupted, killed after `grace`
    seconds, waited for a moment more (a zombie waits for its parent, not for us)."""
    if not _signal_group(pgid, signal.SIGINT):
        return
    deadline = time.monotonic() + grace
    while _signal_group(pgid, 0) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _signal_group(pgid, signal.SIGKILL):
        end = time.monotonic() + 2
        while _signal_group(pgid, 0) and time.monotonic() < end:
            time.sleep(0.1)


def _stat(pid: int) -> tuple[int, str] | None:
    """(parent pid, start time) of a process from /proc, or None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()  # after "pid (comm) "
    if fields[0] == "Z":  # a zombie has ended; only its parent's wait is missing
        return None
    return int(fields[1]), fields[19]


def descendants(root: int) -> dict[int, str]:
    """Every process below `root` (children, theirs...), with its start time: the
    processes a child started, some of which leave its group (Vagrant's helpers)."""
    parents: dict[int, list[int]] = {}
    started: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (found := _stat(int(entry.name))) is not None:
            parents.setdefault(found[0], []).append(int(entry.name))
            started[int(entry.name)] = found[1]
    below, todo = {}, list(parents.get(root, []))
    while todo:
        pid = todo.pop()
        if pid not in below:
            below[pid] = started[pid]
            todo += parents.get(pid, [])
    return below


def _end_processes(processes: dict[int, str], grace: float) -> None:
    """Wait up to `grace` for these processes (pid: start time, so that a reused pid is
    never touched) to end; kill those still there."""
    deadline = time.monotonic() + grace

    def alive() -> list[int]:
        return [p for p, t in processes.items() if (s := _stat(p)) is not None and s[1] == t]

    while alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in alive():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
