"""The seed map: every command the seed tutorial shows, and the lab steps that carry it."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass, field

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


# ---- The tutorial's listings beside labgen's recordings -------------------------------
@dataclass(frozen=True)
class SeedListing:
    """What the seed shows a command printing: the lines after its `$ ` line, up to
    the next command or the block's end. The tutorial's own `#` annotations are kept
    in `text` and left out of `compared`."""

    command: str
    place: SeedPlace
    text: str

    @property
    def compared(self) -> str:
        kept = [x for x in self.text.split("\n") if not (x + " ").startswith("# ")]
        return "\n".join(kept).strip("\n") + "\n"


def seed_listings(seed_text: str) -> list[SeedListing]:
    """Every command of the seed's bash blocks that is followed by output, in order.

    >>> text = "# S\\n```bash\\n$ a\\n# start\\n$ b\\nout 1\\n# note\\n```\\n"
    >>> [(x.command, x.place.line, x.text) for x in seed_listings(text)]
    [('b', 5, 'out 1\\n# note\\n')]
    """
    found: list[SeedListing] = []
    section, fence, current = "", None, None
    output: list[str] = []

    def flush() -> None:
        shown = [line for line in output if line.strip() and not line.startswith("#")]
        if current is not None and shown:
            found.append(SeedListing(current[0], current[1], "\n".join(output) + "\n"))

    for number, line in enumerate(seed_text.splitlines(), start=1):
        opening = _FENCE.match(line)
        if fence is None:
            heading = _HEADING.match(line)
            if opening:
                fence, current, output = opening.group(1), None, []
            elif heading:
                section = heading.group(2)
            continue
        if opening and line.strip().startswith(fence) and not opening.group(2):
            flush()
            fence, current = None, None
            continue
        if line.startswith("$ "):
            flush()
            command = normalise(_RIGHT_PROMPT.sub("", line[2:].rstrip()))
            current, output = (command, SeedPlace(number, section)), []
        elif current is not None:
            output.append(line.rstrip())
    return found


@dataclass(frozen=True)
class ListingSource:
    """The step whose recording stands beside a seed listing, and why the two differ."""

    lab: str
    step: str
    why: tuple[str, ...]


_IPTABLES_HOST = (
    "The tutorial's host had more networks than a lab machine: Docker's "
    "`docker_gwbridge` (172.19.0.0/16, its MASQUERADE rule and the DOCKER chain's second "
    "RETURN) and its VM manager's (`LIBVIRT_PRT`). A lab machine has docker0 only."
)
_IPTABLES_PROTO = (
    "Debian bookworm's iptables 1.8.9 (the 20.10 machine) prints the protocol as a number "
    "(`0` for all, `6` for tcp); trixie's and sid's print `all` and `tcp` as the tutorial's did."
)
_LOG_DATES = "Dates and times are the requests' own (normalised in recordings)."

# Which step's recording stands beside which listing: (command, seed section) -> source.
# A command the seed shows in several sections is a different listing in each.
LISTING_SOURCES: dict[tuple[str, str], ListingSource] = {
    ("sudo ip netns", "2"): ListingSource(
        "netns",
        "ip-netns",
        (
            "The id (nsid) is handed out in order: the tutorial's busy host was at 4, a fresh "
            "lab machine is at 1.",
        ),
    ),
    ("sudo ip netns exec nstest ip a", "2"): ListingSource(
        "netns",
        "netns-exec",
        (
            "Interface indexes (139912, 139913) were the tutorial host's; a fresh machine's "
            "are small (3 and 4 on 20.10 and 26.1, 2 and 3 on 28.5) and recordings show N.",
            "20.10 derives the container's MAC address from its IP (02:42:ac:11:00:02, as in "
            "the tutorial); 28.5 draws it at random. Recordings show xx:xx:xx:xx:xx:xx.",
            "26.1 and 28.5 also give lo `inet6 ::1/128`; 28.5 prints `qlen 0` on eth0.",
        ),
    ),
    ("ip a | grep docker", "2"): ListingSource(
        "bridge",
        "ip-a",
        (
            "The tutorial's host also ran Docker swarm: its `docker_gwbridge` and that "
            "bridge's veth are not on a lab machine. Veth names are random (vethXXXXXXX).",
        ),
    ),
    ("ip a | grep 139913", "2"): ListingSource(
        "netns",
        "host-veth",
        (
            "139913 was the tutorial host's index of the veth: the lab's step asks nstest's "
            "eth0 for its peer's index (iflink) and greps for that, saying so in a `#` line; "
            "its output starts with `ip a | grep docker`'s.",
        ),
    ),
    ("brctl show", "2"): ListingSource(
        "bridge",
        "brctl-show",
        (
            "`docker_gwbridge` (Docker swarm) and `virbr0` (its VM manager's) were the tutorial "
            "host's bridges; a lab machine has docker0 only.",
            "A bridge id is its priority and MAC address: `8000.0242…` (Docker's 02:42 prefix) "
            "on 20.10 and 26.1, random on 28.5; recordings show 8000.xxxxxxxxxxxx.",
        ),
    ),
    ("sudo iptables -t nat -L -n", "3"): ListingSource(
        "port-forwarding", "nat-baseline", (_IPTABLES_HOST, _IPTABLES_PROTO)
    ),
    ("sudo iptables -t nat -L -n", "3.1"): ListingSource(
        "port-forwarding",
        "publish-port",
        (
            "The lab runs the server detached, so the step's output starts with the "
            "container's id (`docker run -d`), then the listing.",
            "Docker 28 writes no hairpin `MASQUERADE tcp -- 172.17.0.2 172.17.0.2 tcp "
            "dpt:5000` with the userland proxy on: docker-proxy serves a container that "
            "reaches its own published port. 20.10 and 26.1 still write it.",
            _IPTABLES_HOST,
            _IPTABLES_PROTO,
        ),
    ),
    ("docker logs -f <python3.7-container-name>", "3.1"): ListingSource(
        "port-forwarding",
        "logs",
        (
            "Both show 172.17.0.1, but not for the tutorial's reason: the nat OUTPUT jump to "
            "DOCKER skips 127.0.0.0/8, so localhost:5000 is served by docker-proxy, which "
            "connects from the bridge's address (the lab's count steps show it).",
            "labgen's second request is its own check's.",
            _LOG_DATES,
        ),
    ),
    ("sudo iptables -t nat -L -n", "3.2"): ListingSource(
        "host-networking",
        "nat-table",
        (
            "No rule for port 5000 on any engine. The tutorial's next line says 'the "
            "MASQUERADE rule for IP 127.17.0.2 is eliminated': 172.17.0.2 (a typo).",
            _IPTABLES_HOST,
            _IPTABLES_PROTO,
        ),
    ),
    ("docker logs -f <python3.7-container-name>", "3.2"): ListingSource(
        "host-networking",
        "logs",
        (
            "127.0.0.1 on both: no NAT, no proxy, the server shares the machine's network "
            "namespace. labgen's second request is its own check's.",
            _LOG_DATES,
        ),
    ),
}
# The tutorial's typos, and what it means: the seed map lists where each occurs.
TYPOS: dict[str, str] = {"127.17.0.2": "172.17.0.2", "kernetl": "kernel"}


def listing_source(listing: SeedListing) -> ListingSource | None:
    """The step whose recording stands beside `listing`, by command and section number."""
    return LISTING_SOURCES.get((listing.command, listing.place.short_section.lstrip("§")))


def typo_places(seed_text: str) -> list[tuple[str, str, int]]:
    """(typo, meant, line) for each line of the seed that carries one of `TYPOS`.

    >>> typo_places("a\\nthe kernetl\\n")
    [('kernetl', 'kernel', 2)]
    """
    return [
        (typo, meant, number)
        for number, line in enumerate(seed_text.splitlines(), start=1)
        for typo, meant in TYPOS.items()
        if typo in line
    ]
