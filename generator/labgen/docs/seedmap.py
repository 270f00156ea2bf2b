"""The seed map: every command the seed tutorial shows, and the lab steps that carry it.

The tutorial is read as Markdown (markdown-it-py): its fenced blocks and the heading each
sits under. listings.py reads the same blocks for what the commands printed.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass, field

from markdown_it import MarkdownIt

from labgen.core.lab import Lab


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
        """The seed's lines that show the command, in order."""
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
    """A seed command and the lab steps that carry it (none: the labs do not show it)."""

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
        """The seed commands no lab step carries."""
        return [e.command for e in self.entries if not e.steps]

    @property
    def mapped(self) -> list[SeedCommand]:
        """The seed commands some lab step carries."""
        return [e.command for e in self.entries if e.steps]


# zsh's right prompt, copied along with a command: many spaces, then one short word.
_RIGHT_PROMPT = re.compile(r"\s{8,}\S{1,40}$")
# The languages of the fenced blocks whose `$ ` lines are commands.
SHELL_LANGUAGES = ("bash", "sh", "shell", "console")
_MARKDOWN = MarkdownIt("commonmark")


@dataclass(frozen=True)
class FencedBlock:
    """A fenced code block of the seed: its language (the first word of the fence's
    info, or ""), the heading above it, and its lines with their 1-based numbers."""

    language: str
    section: str
    lines: tuple[tuple[int, str], ...]


def fenced_blocks(seed_text: str) -> list[FencedBlock]:
    """The fenced code blocks of a Markdown text, in order, each with the heading above it.

    >>> [(b.language, b.section, b.lines) for b in fenced_blocks("# S\\n```bash\\n$ a\\n```\\n")]
    [('bash', 'S', ((3, '$ a'),))]
    """
    blocks = []
    section = ""
    tokens = _MARKDOWN.parse(seed_text)
    for index, token in enumerate(tokens):
        if token.type == "heading_open":
            section = tokens[index + 1].content
        elif token.type == "fence" and token.map is not None:
            # map[0] is the opening fence's line, counted from 0: content starts below it.
            first = token.map[0] + 2
            lines = token.content.removesuffix("\n").split("\n") if token.content else []
            language = token.info.split()[0] if token.info.strip() else ""
            blocks.append(FencedBlock(language, section, tuple(enumerate(lines, start=first))))
    return blocks


def prompt_command(line: str) -> str:
    """The command of a seed line that starts with the prompt `$ `: the prompt and a
    copied right prompt (a long run of spaces then one short word) dropped, whitespace
    normalised."""
    return normalise(_RIGHT_PROMPT.sub("", line[2:].rstrip()))


def seed_commands(seed_text: str) -> list[SeedCommand]:
    """The commands of the seed's ```bash blocks: lines starting with `$ `, in order.

    The prompt is stripped, whitespace normalised, a copied right prompt (a
    long run of spaces then `~`) dropped; a command shown twice is one entry
    with both places.
    """
    found: dict[str, list[SeedPlace]] = {}
    for block in fenced_blocks(seed_text):
        if block.language.lower() not in SHELL_LANGUAGES:
            continue
        for number, line in block.lines:
            text = prompt_command(line) if line.startswith("$ ") else ""
            if text:
                found.setdefault(text, []).append(SeedPlace(line=number, section=block.section))
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
