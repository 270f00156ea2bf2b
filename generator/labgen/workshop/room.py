"""A workshop's record: its lab, its seats (machine names) and the token of each page.

Kept in the labgen home as workshops/NAME.json (mode 0600: the tokens are the keys to
the pages), written when the seats are first brought up, so that a server started again
prints the same URLs and `workshop down` knows what to remove.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pydantic import ConfigDict

from labgen.core import resources
from labgen.core.errors import UsageError
from labgen.machine.instance import validated, write_json_atomic

MAX_SEATS = 99  # seat names carry two digits: W-01 .. W-99
TOKEN_BYTES = 24  # 192 bits from `secrets`: not guessable, short enough for a URL


def workshops_dir() -> Path:
    """Where workshop records live."""
    return resources.labgen_home() / "workshops"


def seat_name(workshop: str, number: int) -> str:
    """The machine name of seat `number` (1-based).

    >>> seat_name("pf", 3)
    'pf-03'
    """
    return f"{workshop}-{number:02d}"


def validate_workshop_name(name: str) -> str:
    """A workshop name that leaves room for the seat suffix in a machine name."""
    resources.validate_name(name, "workshop name")
    # Machine names are at most 40 characters; "-NN" takes three.
    if len(name) > 37:
        raise UsageError(f"workshop name {name!r} is too long: at most 37 characters")
    return name


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


@dataclass
class Room:
    """A workshop: its name, lab, seats and the tokens of its pages."""

    # A key this labgen does not know is a file it did not write: refuse it.
    __pydantic_config__ = ConfigDict(extra="forbid")

    name: str
    lab: str
    lab_path: str  # the lab's folder: seats of a lab from --labs come up from it again
    seats: list[str]
    created: str
    instructor_token: str = field(default_factory=new_token)
    # seat name -> that seat's token
    seat_tokens: dict[str, str] = field(default_factory=dict)
    # Pooled machines kept ready for resets (`workshop up --spares K`): a reset claims one.
    spares: int = 0
    # seat name -> the registered host it runs on (`up --hosts`); absent: this machine,
    # as in records from before several hosts.
    seat_hosts: dict[str, str] = field(default_factory=dict)
    # `labgen-lab trace --kernel` in the seats (`up --kernel-trace`): off unless the
    # instructor allows it, since under the docker provider its probes load into the
    # host's kernel and see every seat's packets (docs/security.md).
    kernel_trace: bool = False

    def host_of(self, seat: str) -> str:
        """The host seat `seat` runs on ("local" for this machine)."""
        return self.seat_hosts.get(seat) or "local"

    @property
    def path(self) -> Path:
        return workshops_dir() / f"{self.name}.json"

    def save(self) -> None:
        """Write the record atomically, readable by its owner only."""
        write_json_atomic(self.path, asdict(self))
        os.chmod(self.path, 0o600)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)

    def grow(self, seats: int) -> None:
        """Make sure seats 1..`seats` exist in the record, each with its own token."""
        for number in range(1, seats + 1):
            name = seat_name(self.name, number)
            if name not in self.seats:
                self.seats.append(name)
            self.seat_tokens.setdefault(name, new_token())


def create(
    name: str,
    lab: str,
    lab_path: str,
    seats: int,
    spares: int | None = None,
    kernel_trace: bool | None = None,
) -> Room:
    """The record of workshop `name` with `seats` seats: loaded if it exists, else new.

    An existing workshop keeps its tokens (URLs already handed out stay valid); it may
    grow, not shrink, and must be of the same lab.
    """
    validate_workshop_name(name)
    if not 1 <= seats <= MAX_SEATS:
        raise UsageError(f"--seats must be between 1 and {MAX_SEATS}, not {seats}")
    if (workshops_dir() / f"{name}.json").is_file():
        room = load(name)
        if room.lab != lab:
            raise UsageError(
                f"workshop {name!r} already exists for lab {room.lab!r}",
                hint=f"`labgen workshop down {name}` first, or pick another --name",
            )
        if len(room.seats) > seats:
            raise UsageError(
                f"workshop {name!r} has {len(room.seats)} seats; it cannot shrink to {seats}",
                hint=f"`labgen workshop down {name}` and bring it up again",
            )
    else:
        created = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        room = Room(name=name, lab=lab, lab_path=lab_path, seats=[], created=created)
    room.grow(seats)
    if spares is not None:
        room.spares = spares
    if kernel_trace is not None:
        room.kernel_trace = kernel_trace
    room.save()
    return room


def load(name: str) -> Room:
    """The record of workshop `name`, or a UsageError naming the ones that exist."""
    validate_workshop_name(name)
    path = workshops_dir() / f"{name}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        known = ", ".join(all_names()) or "none"
        raise UsageError(
            f"no workshop called {name!r} (workshops: {known})",
            hint="`labgen workshop up LAB --seats N` makes one",
        ) from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: unreadable workshop record: {exc}") from None
    return validated(Room, data, path, "workshop record")


def all_names() -> list[str]:
    """The workshops recorded in this labgen home."""
    folder = workshops_dir()
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.glob("*.json") if not p.name.startswith("."))
