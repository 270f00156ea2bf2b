"""The one exception type for everything a user can cause."""

from __future__ import annotations

# Exit statuses, as documented in `labgen --help`.
EXIT_OK = 0
EXIT_FAILED = 1  # the machine or a check said no
EXIT_USAGE = 2  # bad input or a missing prerequisite: nothing was started


class LabgenError(Exception):
    """An error with a message ready for the user and the exit status it maps to."""

    def __init__(self, message: str, exit_code: int = EXIT_USAGE, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
        self.hint = hint


class UsageError(LabgenError):
    """Bad input: an unknown lab, an invalid lab file, a bad name, a missing tool."""


class MachineError(LabgenError):
    """Something went wrong on the machine side (Vagrant, Docker, SSH)."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message, exit_code=EXIT_FAILED, hint=hint)
