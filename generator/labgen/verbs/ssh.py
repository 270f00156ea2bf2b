"""`labgen ssh`: a shell on the machine, or one command with its exit status."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from collections.abc import Sequence

from .. import machines, ssh
from ..machine import vagrant_env


def ssh_into(machine: str, command: Sequence[str]) -> int:
    """A shell on the machine, or one command; returns its exit status."""
    instance, _, _ = machines.running(machine)
    if command:
        with ssh.connect(instance.ssh_config) as client:
            return ssh.run(client, shlex.join(command))
    if shutil.which("ssh"):
        return subprocess.call(["ssh", "-F", str(instance.ssh_config), ssh.HOST_ALIAS])
    return subprocess.call(["vagrant", "ssh"], cwd=instance.path, env=vagrant_env())
