"""One server per workshop: an exclusive lock on workshops/NAME/serve.lock.

`serve` holds it while it runs, and writes into the file its process id and, once it
listens, its address; `workshop down` holds it while it removes the seats. Whoever
comes second is refused at once (exit 2) with what the file says: the first server's
address, or that the room is being taken down. The lock is the kernel's (flock), so a
server that was killed, even with SIGKILL, holds nothing: the next `serve` starts.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path
from typing import IO

from labgen.core.errors import UsageError
from labgen.workshop.db import room_dir

FILE = "serve.lock"
SERVE, DOWN = "serve", "down"


class Held:
    """The workshop's lock, held by this process until `release()` (or the `with` ends)."""

    def __init__(self, name: str, purpose: str, handle: IO[str]):
        self.name, self.purpose, self._handle = name, purpose, handle
        self.address = ""
        self._write()

    def note(self, address: str) -> None:
        """Say where this server listens, for a second `serve` or `down` to name."""
        self.address = address
        self._write()

    def _write(self) -> None:
        info = {"pid": os.getpid(), "purpose": self.purpose, "address": self.address}
        self._handle.seek(0)
        self._handle.truncate()
        self._handle.write(json.dumps(info) + "\n")
        self._handle.flush()

    def release(self) -> None:
        """Let the lock go (closing the file does); done twice is done once."""
        if not self._handle.closed:
            # Emptied first: a stale address must never be read as a live server's.
            self._handle.seek(0)
            self._handle.truncate()
            self._handle.close()

    def __enter__(self) -> Held:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def lock_path(name: str) -> Path:
    """The file whose lock the workshop's server (or its `down`) holds."""
    return room_dir(name) / FILE


def hold(name: str, purpose: str) -> Held:
    """The workshop's lock for `purpose` (SERVE or DOWN), or a UsageError naming who has it."""
    path = lock_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115  # held past this function
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise _refusal(name, purpose, _holder(path)) from None
    return Held(name, purpose, handle)


def _holder(path: Path) -> dict[str, object]:
    """What the holder wrote; it writes just after taking the lock, so wait a moment."""
    for _ in range(20):
        try:
            text = path.read_text(encoding="utf-8").strip()
        except OSError:
            text = ""
        if text:
            try:
                return dict(json.loads(text))
            except ValueError:
                pass
        time.sleep(0.05)
    return {}


def _refusal(name: str, purpose: str, holder: dict[str, object]) -> UsageError:
    pid = holder.get("pid", "?")
    if holder.get("purpose") == DOWN:
        return UsageError(f"workshop {name!r} is being taken down (labgen process {pid})")
    address = holder.get("address") or "an address it has not printed yet"
    if purpose == SERVE:
        return UsageError(
            f"workshop {name!r} is already served at {address} (labgen process {pid})",
            hint="use that server's URLs, or stop it (Ctrl-C where it runs) and serve again",
        )
    return UsageError(
        f"workshop {name!r} is being served at {address} (labgen process {pid}): "
        "`workshop down` would leave its pages up for machines that are gone",
        hint="stop that server first (Ctrl-C where it runs), then `labgen workshop down` again",
    )
