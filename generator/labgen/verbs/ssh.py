"""`labgen ssh`: a shell on the machine, or one command with its exit status."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Sequence

from labgen.machine import registry, ssh
from labgen.machine.instance import host_of
from labgen.machine.vagrant import vagrant_env


def ssh_into(machine: str, command: Sequence[str]) -> int:
    """A shell on the machine, or one command; returns its exit status.

    As with ssh: the words of `command` are joined into one command line for the
    remote shell, and it gets a pseudo-terminal when labgen's stdin is a terminal.
    """
    instance, _, _ = registry.running(machine)
    if command:
        with ssh.connect(instance.ssh_config) as client:
            return ssh.session(client, ssh.command_line(command), pty=sys.stdin.isatty())
    # The ssh-config's ProxyCommand (a machine on another host) is OpenSSH's to follow.
    if shutil.which("ssh"):
        return subprocess.call(["ssh", "-F", str(instance.ssh_config), ssh.HOST_ALIAS])
    env = vagrant_env(host_of(instance.path))
    return subprocess.call(["vagrant", "ssh"], cwd=instance.path, env=env)
