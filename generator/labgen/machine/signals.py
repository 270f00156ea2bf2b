"""Ctrl-C and SIGTERM where labgen must not stop half way (a teardown, a network being made)."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator


@contextlib.contextmanager
def uninterrupted() -> Iterator[None]:
    """Defer Ctrl-C and SIGTERM until the block is done (a teardown must not stop half
    way); a signal that came meanwhile is raised after it. Main thread only."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = {s: signal.signal(s, lambda n, f: caught.append(n)) for s in _SIGNALS}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        if caught:
            raise KeyboardInterrupt


_SIGNALS = (signal.SIGINT, signal.SIGTERM)
