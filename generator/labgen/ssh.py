"""Commands on a lab machine over SSH (paramiko), using the saved `vagrant ssh-config`."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import paramiko

from .errors import MachineError

HOST_ALIAS = "default"  # the host name `vagrant ssh-config` writes for a single machine


@contextlib.contextmanager
def connect(ssh_config: Path, timeout: float = 15) -> Iterator[paramiko.SSHClient]:
    """An SSH client for the machine described by `ssh_config`."""
    config = paramiko.SSHConfig.from_path(str(ssh_config)).lookup(HOST_ALIAS)
    client = paramiko.SSHClient()
    # Vagrant's own ssh-config turns host key checking off for its machines; each
    # machine makes a fresh host key at first boot, so there is nothing to pin.
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    try:
        client.connect(
            hostname=config["hostname"],
            port=int(config.get("port", 22)),
            username=config.get("user"),
            key_filename=config.get("identityfile", [None])[0],
            timeout=timeout,
            allow_agent=False,
            look_for_keys=False,
        )
    except (OSError, paramiko.SSHException) as exc:
        raise MachineError(
            f"cannot reach the machine over SSH ({config['hostname']}:{config.get('port')}): {exc}",
            hint="is it running? `labgen status` tells; `labgen up LAB` starts it again",
        ) from None
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
        channel.status_event.wait(0.05)
    return channel.recv_exit_status()
