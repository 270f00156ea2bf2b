"""The seed map: every command the seed tutorial shows, and the lab steps that carry it."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass, field

from .lab import Lab


@dataclass(frozen=True)
class SeedPlace:
    """Where the seed shows a command: its 1-based line and the heading above it."""

    line: int
    section: str

    @property
    def short_section(self) -> str:
        """`§3.1` for a numbered heading like "3.1. Port forwarding", else the heading."""
        numbered = re.match(r"^(\d+(?:\.\d+)*)\.?\s", self.section)
        return f"§{numbered.group(1)}" if numbered else self.section


@dataclass(frozen=True)
class SeedCommand:
    """A command the seed shows (prompt stripped, whitespace normalised), and where."""

    text: str
    places: tuple[SeedPlace, ...]  # every place the seed shows it, in order

    @property
    def lines(self) -> tuple[int, ...]:
        return tuple(place.line for place in self.places)


@dataclass(frozen=True)
class StepRef:
    """A step of a lab, as the seed map names it."""

    lab: str
    step: str
    number: int
    title: str


@dataclass(frozen=True)
class SeedMapEntry:
    command: SeedCommand
    steps: tuple[StepRef, ...]


@dataclass(frozen=True)
class SeedMap:
    """Every seed command with the lab steps whose documented command carries it."""

    entries: tuple[SeedMapEntry, ...]
    # Steps none of whose command lines is a seed command: what the labs add.
    extra_steps: tuple[StepRef, ...] = field(default=())

    @property
    def unmapped(self) -> list[SeedCommand]:
        return [e.command for e in self.entries if not e.steps]

    @property
    def mapped(self) -> list[SeedCommand]:
        return [e.command for e in self.entries if e.steps]


_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(`{3,}|~{3,})\s*([\w+-]*)")
# zsh's right prompt, copied along with a command: many spaces, then one short word.
_RIGHT_PROMPT = re.compile(r"\s{8,}\S{1,40}$")


def seed_commands(seed_text: str) -> list[SeedCommand]:
    """The commands of the seed's ```bash blocks: lines starting with `$ `, in order.

    The prompt is stripped, whitespace normalised, a copied right prompt (a
    long run of spaces then `~`) dropped; a command shown twice is one entry
    with both places.
    """
    found: dict[str, list[SeedPlace]] = {}
    section = ""
    fence: str | None = None
    is_bash = False
    for number, line in enumerate(seed_text.splitlines(), start=1):
        opening = _FENCE.match(line)
        if fence is None:
            if opening:
                fence = opening.group(1)
                is_bash = opening.group(2).lower() in ("bash", "sh", "shell", "console")
                continue
            heading = _HEADING.match(line)
            if heading:
                section = heading.group(2)
            continue
        if opening and line.strip().startswith(fence) and not opening.group(2):
            fence = None
            continue
        if not is_bash or not line.startswith("$ "):
            continue
        text = _RIGHT_PROMPT.sub("", line[2:].rstrip())
        text = normalise(text)
        if not text:
            continue
        found.setdefault(text, []).append(SeedPlace(line=number, section=section))
    return [SeedCommand(text=text, places=tuple(places)) for text, places in found.items()]


def normalise(command: str) -> str:
    """One line, single spaces."""
    return " ".join(command.split())


def command_lines(command: str) -> list[str]:
    """The shell lines of a step's `command`: continuations joined, comments and
    blank lines dropped, a leading `$ ` prompt stripped, whitespace normalised."""
    joined = re.sub(r"\\\n", " ", command)
    out = []
    for raw in joined.splitlines():
        line = raw.strip()
        if line.startswith("$ "):
            line = line[2:]
        line = normalise(line)
        if line and not line.startswith("#"):
            out.append(line)
    return out


_SEPARATORS = {"&&", "||", ";", "|", "&", "(", ")", ";;", "|&"}
_REDIRECT = re.compile(r"^(\d*>|&>|<$|<<)")


def _tokens(text: str) -> list[str]:
    """Shell words and control operators, as the shell splits them (comments dropped).

    >>> _tokens("sudo ip netns; date # today")
    ['sudo', 'ip', 'netns', ';', 'date']
    """
    lexer = shlex.shlex(text, posix=True, punctuation_chars=";&|()")
    lexer.whitespace_split = True
    try:
        return list(lexer)
    except ValueError:  # an unclosed quote: the shell would not run it either
        return text.split()


def contains_command(command: str, seed_command: str) -> bool:
    """Does a step's `command` carry `seed_command` (whitespace normalised)?

    The seed command must appear in one of the command's lines as whole shell
    words, starting the line or right after a separator (`;`, `&&`, `|`, ...) and
    ending the line or followed by a separator, a redirection or a comment. So
    `sudo ip netns` is carried by `sudo ip netns` and `sudo ip netns; date`, not
    by `sudo ip netns list`.
    """
    wanted = _tokens(normalise(seed_command))
    if not wanted:
        return False
    size = len(wanted)
    for line in command_lines(command):
        have = _tokens(line)
        for start in range(len(have) - size + 1):
            if have[start : start + size] != wanted:
                continue
            before_ok = start == 0 or have[start - 1] in _SEPARATORS
            end = start + size
            after_ok = (
                end == len(have)
                or have[end] in _SEPARATORS
                or have[end].startswith("#")
                or bool(_REDIRECT.match(have[end]))
            )
            if before_ok and after_ok:
                return True
    return False


def seed_command_map(seed_text: str, labs: Iterable[Lab]) -> SeedMap:
    """Map every command the seed shows to the lab steps whose `command` carries it.

    Only the documented `command` counts (not a robot's `run`). Labs are taken
    in name order, steps in lab order.
    """
    ordered = sorted(labs, key=lambda lab: lab.name)
    refs = [
        (StepRef(lab=lab.name, step=step.id, number=n, title=step.title), step.command)
        for lab in ordered
        for n, step in enumerate(lab.steps, start=1)
    ]
    commands = seed_commands(seed_text)
    entries = tuple(
        SeedMapEntry(
            command=cmd,
            steps=tuple(ref for ref, command in refs if contains_command(command, cmd.text)),
        )
        for cmd in commands
    )
    used = {ref for entry in entries for ref in entry.steps}
    extra = tuple(ref for ref, _ in refs if ref not in used)
    return SeedMap(entries=entries, extra_steps=extra)
