"""`push_image`: a base image from this machine onto a Docker host, without any registry:
`docker save IMAGE | ssh HOST docker load`, through labgen's ssh settings."""

from __future__ import annotations

import contextlib
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import IO

from labgen.core.context import Say
from labgen.core.errors import MachineError, UsageError
from labgen.hosts.registry import Host

CHUNK = 1 << 20


@dataclass(frozen=True)
class PushResult:
    """One image pushed: how many bytes went over SSH and how long it took."""

    host: str
    image: str
    bytes: int
    seconds: float

    @property
    def megabytes(self) -> float:
        """The size in MB (10**6 bytes), one decimal."""
        return round(self.bytes / 1e6, 1)


def push_image(host: Host, image: str, say: Say) -> PushResult:
    """Copy `image` onto `host` with docker save | ssh docker load; MachineError if either
    side fails (the message says which)."""
    if host.kind != "docker":
        raise UsageError(f"host {host.name!r} is a {host.kind} host: only Docker hosts take images")
    say(f"pushing {image} to {host.name} (docker save | ssh docker load)")
    started = time.monotonic()
    save = subprocess.Popen(
        ["docker", "save", image], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    load = subprocess.Popen(
        [*host.ssh_command(), "docker", "load"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert save.stdout is not None and load.stdin is not None
    sent = [0]
    pump = threading.Thread(target=_pump, args=(save.stdout, load.stdin, sent), daemon=True)
    pump.start()
    try:
        pump.join()
        load.stdin = None  # closed by the pump: communicate() must not flush it
        save_err = save.communicate()[1]
        load_out, load_err = load.communicate()
    except BaseException:
        save.kill()
        load.kill()
        save.wait()
        load.wait()
        raise
    if save.returncode != 0:
        raise MachineError(
            f"docker save {image} failed: {save_err.decode(errors='replace').strip()}"
        )
    if load.returncode != 0:
        raise MachineError(
            f"docker load on {host.name} failed: {load_err.decode(errors='replace').strip()}"
        )
    result = PushResult(host.name, image, sent[0], round(time.monotonic() - started, 1))
    say(f"{load_out.decode(errors='replace').strip()} ({result.megabytes} MB, {result.seconds} s)")
    return result


def _pump(source: IO[bytes], sink: IO[bytes], sent: list[int]) -> None:
    # Counted here rather than by `docker image inspect`: the bytes that really crossed SSH.
    try:
        while chunk := source.read(CHUNK):
            sink.write(chunk)
            sent[0] += len(chunk)
    except BrokenPipeError:
        pass
    finally:
        with contextlib.suppress(BrokenPipeError):
            sink.close()
