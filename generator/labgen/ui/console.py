"""The one place rich Consoles are made, and the one escape for text rich must not read.

Every string that comes from a lab, Vagrant, Docker or a user goes through escape_text
before it reaches a rich markup string: `[docker]` would vanish as an unknown style and
`[/tmp/x]` would raise rich's MarkupError, ending a verb in a traceback.
"""

from __future__ import annotations

import os

from rich.console import Console
from rich.markup import escape


def make_console(stderr: bool = False) -> Console:
    """A Console on stdout (or stderr) as every printer wants it: colour only at a
    terminal and never with NO_COLOR (rich's own rules), no guessed highlighting of
    numbers or paths, no :emoji: codes, whole lines in a pipe."""
    console = Console(stderr=stderr, highlight=False, soft_wrap=True, emoji=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        # In a pipe rich would cut tables at 80 columns; a pipe wants whole lines.
        console.width = 1000
    return console


out = make_console()
err = make_console(stderr=True)


def escape_text(text: object) -> str:
    """`text` (anything, made a string) safe inside a rich markup string: shown as it is.

    >>> escape_text("Error: [/tmp/x] missing")
    'Error: \\\\[/tmp/x] missing'
    """
    return escape(str(text))
