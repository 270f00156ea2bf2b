"""Commands on a lab machine over SSH (paramiko), using the saved `vagrant ssh-config`."""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import sys
import termios
import threading
import tty
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

import paramiko

from labgen.core.errors import MachineError

HOST_ALIAS = "default"  # the host name `vagrant ssh-config` writes for a single machine
# Set on Ctrl-C by a verb that runs commands in threads (verify): every command waiting
# on a machine gives up, so the threads can destroy their machines and end. Only the
# main thread sees KeyboardInterrupt; a worker waiting on a dead machine never would.
_INTERRUPTED = threading.Event()
KEEPALIVE = 5  # seconds between keepalives, so a dead connection is noticed


def interrupt_all() -> None:
    """Make every command still running on a machine, in any thread, stop waiting."""
    _INTERRUPTED.set()


def _wait(channel: paramiko.Channel, transport: paramiko.Transport) -> None:
    """One short wait for the channel; a MachineError once interrupted or disconnected."""
    if _INTERRUPTED.is_set():
        channel.close()
        raise MachineError("interrupted: the command on the machine was abandoned")
    if not transport.is_active():
        raise MachineError(
            "the SSH connection to the machine dropped while a command ran",
            hint="is it still running? `labgen status` tells",
        )
    channel.status_event.wait(0.05)


@contextlib.contextmanager
def connect(ssh_config: Path, timeout: float = 15) -> Iterator[paramiko.SSHClient]:
    """An SSH client for the machine described by `ssh_config`."""
    config = paramiko.SSHConfig.from_path(str(ssh_config)).lookup(HOST_ALIAS)
    client = paramiko.SSHClient()
    # Vagrant's own ssh-config turns host key checking off for its machines; each
    # machine makes a fresh host key at first boot, so there is nothing to pin.
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    # A machine on another host is reached through that host (its port is published on
    # the host's 127.0.0.1): the ssh-config's ProxyCommand, its %h %p already filled in.
    proxy = config.get("proxycommand")
    sock = paramiko.ProxyCommand(proxy) if proxy and proxy.lower() != "none" else None
    try:
        client.connect(
            sock=sock,
            hostname=config["hostname"],
            port=int(config.get("port", 22)),
            username=config.get("user"),
            key_filename=config.get("identityfile", [None])[0],
            timeout=timeout,
            # A port that accepts while its sshd hangs (a frozen machine) would hold the
            # connection for paramiko's own 15 s banner wait, whatever `timeout` says.
            banner_timeout=timeout,
            auth_timeout=timeout,
            allow_agent=False,
            look_for_keys=False,
        )
    except (OSError, paramiko.SSHException) as exc:
        if sock is not None:
            sock.close()  # the ssh to the host, which would outlive us
        via = " through its host" if sock is not None else ""
        raise MachineError(
            f"cannot reach the machine over SSH{via} "
            f"({config['hostname']}:{config.get('port')}): {exc}",
            hint="is it running? `labgen status` tells; `labgen up LAB` starts it again",
        ) from None
    transport = client.get_transport()
    if transport is not None:
        transport.set_keepalive(KEEPALIVE)
    try:
        yield client
    finally:
        client.close()


def run(
    client: paramiko.SSHClient,
    command: str,
    stdout: BinaryIO | None = None,
    stderr: BinaryIO | None = None,
) -> int:
    """Run `command` on the machine, streaming its output; return its exit status."""
    out = stdout or sys.stdout.buffer
    err = stderr or sys.stderr.buffer
    transport = client.get_transport()
    assert transport is not None
    channel = transport.open_session()
    channel.exec_command(command)
    while True:
        if channel.recv_ready():
            out.write(channel.recv(32768))
            out.flush()
        if channel.recv_stderr_ready():
            err.write(channel.recv_stderr(32768))
            err.flush()
        if (
            channel.exit_status_ready()
            and not channel.recv_ready()
            and not channel.recv_stderr_ready()
        ):
            break
        _wait(channel, transport)
    return channel.recv_exit_status()


def run_script(client: paramiko.SSHClient, script: str, stdout: BinaryIO, stderr: BinaryIO) -> int:
    """Run a shell script as root on the machine (`sudo sh -s`, the script on its
    standard input, as Vagrant's shell provisioner runs one); its exit status."""
    transport = client.get_transport()
    assert transport is not None
    channel = transport.open_session()
    channel.exec_command("sudo sh -s")
    channel.sendall(script.encode("utf-8"))
    channel.shutdown_write()
    while not channel.exit_status_ready() or channel.recv_ready() or channel.recv_stderr_ready():
        if channel.recv_ready():
            stdout.write(channel.recv(32768))
        elif channel.recv_stderr_ready():
            stderr.write(channel.recv_stderr(32768))
        else:
            _wait(channel, transport)
    return channel.recv_exit_status()


def command_line(words: Sequence[str]) -> str:
    """The words after `labgen ssh LAB --` as one command line for the remote shell,
    joined with spaces as ssh joins them: `-- 'iptables -S | grep DNAT'` is a pipe
    there, and `-- ls -l /tmp` is `ls -l /tmp`."""
    return " ".join(words)


def session(client: paramiko.SSHClient, command: str, pty: bool) -> int:
    """Run `command` as `ssh` would: this process's stdin goes to it (closed at its
    end), its output comes back; with `pty` (stdin is a terminal) it gets a
    pseudo-terminal of this terminal's size, and this terminal is raw meanwhile, so
    that `docker run -it` and Ctrl-C work there. Returns its exit status."""
    transport = client.get_transport()
    assert transport is not None
    channel = transport.open_session()
    stdin_fd = sys.stdin.fileno()
    if pty:
        cols, rows = shutil.get_terminal_size()
        channel.get_pty(term=os.environ.get("TERM", "xterm"), width=cols, height=rows)
    channel.exec_command(command)
    out, err = sys.stdout.buffer, sys.stderr.buffer
    with _raw_terminal(stdin_fd, channel) if pty else contextlib.nullcontext():
        stdin_open = True
        while True:
            while channel.recv_ready():
                out.write(channel.recv(32768))
                out.flush()
            while channel.recv_stderr_ready():
                err.write(channel.recv_stderr(32768))
                err.flush()
            if channel.exit_status_ready() and not (
                channel.recv_ready() or channel.recv_stderr_ready()
            ):
                break
            waiting = [channel, stdin_fd] if stdin_open else [channel]
            readable, _, _ = select.select(waiting, [], [], 0.1)
            if stdin_open and stdin_fd in readable:
                data = os.read(stdin_fd, 32768)
                if data:
                    channel.sendall(data)
                else:
                    stdin_open = False
                    channel.shutdown_write()
    return channel.recv_exit_status()


@contextlib.contextmanager
def _raw_terminal(fd: int, channel: paramiko.Channel) -> Iterator[None]:
    """The local terminal raw (keys go to the remote pty as typed), its size followed."""
    saved = termios.tcgetattr(fd)

    def resize(signum: int, frame: object) -> None:
        cols, rows = shutil.get_terminal_size()
        channel.resize_pty(width=cols, height=rows)

    previous = signal.signal(signal.SIGWINCH, resize)
    tty.setraw(fd)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
        signal.signal(signal.SIGWINCH, previous)
