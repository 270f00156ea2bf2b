"""The error types, one per meaning, and the exit status each maps to.

`labgen --help` promises: 0 success, 1 a machine or check failed, 2 bad input or
a missing prerequisite (nothing was started). cli.main is the one place that
turns these into a message and an exit status; anything else is a bug and stays
loud (a traceback).
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class LabgenError(Exception):
    """An error with a message ready for the user and the exit status it maps to."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint


class UsageError(LabgenError):
    """Bad input: an unknown lab or machine, an invalid lab file, a bad name or option."""


class PrerequisiteError(LabgenError):
    """Something this host lacks (a tool, a running daemon, root): nothing was started."""


class MachineError(LabgenError):
    """A machine, Vagrant, Docker or a hypervisor failed while working (exit 1)."""

    exit_code = EXIT_FAILED
