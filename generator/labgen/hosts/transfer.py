"""A base image onto a host without any registry: `docker save` here, `docker load` there,
streamed over labgen's SSH settings."""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass

from labgen.core.context import Say
from labgen.core.errors import MachineError, UsageError
from labgen.hosts.registry import Host


@dataclass(frozen=True)
class PushResult:
    """One image pushed: how big, how long."""

    host: str
    image: str
    megabytes: float
    seconds: float


def push_image(host: Host, image: str, say: Say) -> PushResult:
    """Stream `image` from this machine's Docker into `host`'s."""
    if host.kind != "docker":
        raise UsageError(f"host {host.name!r} is a libvirt host: its boxes are not Docker images")
    local = subprocess.run(["docker", "image", "inspect", image], capture_output=True, check=False)
    if local.returncode != 0:
        raise UsageError(
            f"{image} is not on this machine", hint="`labgen box build --engine ENGINE` builds it"
        )
    say(f"docker save {image} | docker load on {host.name}")
    started = time.monotonic()
    save = subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE)
    assert save.stdout is not None
    load = subprocess.Popen(
        [*host.ssh_command(), "docker load"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=_env(host),
    )
    assert load.stdin is not None
    sent = 0
    try:
        while chunk := save.stdout.read(1 << 20):
            load.stdin.write(chunk)
            sent += len(chunk)
        load.stdin.close()
    except BrokenPipeError:
        pass
    finally:
        save.stdout.close()
        save.wait()
        _, err = load.communicate()
    if save.returncode != 0 or load.returncode != 0:
        why = err.decode(errors="replace").strip() or f"docker save exited {save.returncode}"
        raise MachineError(
            f"loading {image} on {host.name} failed: {why}",
            hint=f"`labgen doctor --host {host.name}` says what the host lacks",
        )
    return PushResult(host.name, image, round(sent / 1e6, 1), round(time.monotonic() - started, 1))


def _env(host: Host) -> dict[str, str]:
    return {**os.environ, **host.env()}
