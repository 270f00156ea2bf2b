"""What every verb is handed: where labs are, which provider, how to report progress.

cli.py builds one from the command line (and the environment a user sets); verbs
never read options from the environment themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

Say = Callable[[str], None]
"""A progress callback: one line of what is happening now."""


def _quiet(line: str) -> None:
    """Progress that goes nowhere."""


@dataclass(frozen=True)
class Context:
    """A verb's inputs beyond its own arguments.

    >>> Context().with_say(print).say("hello")
    hello
    """

    labs_path: tuple[Path, ...] = ()  # searched before the bundled labs
    provider: str | None = None  # --provider / $LABGEN_PROVIDER; None: the first ready
    say: Say = field(default=_quiet, compare=False)
    engine: str | None = None  # --engine / $LABGEN_ENGINE; None: the lab's default
    # --host: the registered host a new machine goes on (labgen.hosts.registry);
    # None or "local": this machine. The one way to ask for a host.
    host: str | None = None

    def with_say(self, say: Say) -> Context:
        """The same context, reporting progress to `say`."""
        return replace(self, say=say)
