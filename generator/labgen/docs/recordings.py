"""Recorded step outputs: what each step of a lab printed on each Docker engine.

`labgen verify LAB --record` writes one plain-text file a step and engine,
`labs/<lab>/recorded/<engine>/<step>.txt`; every `labgen verify` compares what a step
prints with it (drift), and `labgen docs` shows it under the step's command.

A recording is a header (see `Recording.text`), a line of dashes, then the output
after normalisation, which replaces what changes from one run to the next and teaches
nothing (names Docker draws at random, the host's interface indexes, times, ephemeral
ports, byte counts) with a fixed placeholder, by the rules of `RULES`, a table read in
order. Packet counters are kept: the count steps are about them. The header lists the
rules that matched, so a reviewer knows what a placeholder stands for.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from labgen.core.errors import UsageError
from labgen.core.lab import Lab

RECORDED_DIR = "recorded"
SEPARATOR = "-" * 64


@dataclass(frozen=True)
class Rule:
    """One normalisation: every match of `pattern` (its group `v`, if it has one) becomes
    `placeholder`; `value` rules replace the matched value wherever else it occurs too;
    `width` pads the placeholder to the width of what it replaces, so columns stay
    aligned. `block` rules rewrite a whole output where their pattern matches. A header
    lists the rules that matched (not changed: sorted rows may already be sorted)."""

    name: str
    pattern: str
    placeholder: str
    why: str
    value: bool = False
    width: bool = False
    block: Callable[[str], str] | None = None


def _sort_listeners(text: str) -> str:
    """`ss` lists sockets in the kernel's hash order, which an ephemeral port moves:
    consecutive LISTEN rows are sorted.

    >>> _sort_listeners("State\\nLISTEN b\\nLISTEN a\\nend")
    'State\\nLISTEN a\\nLISTEN b\\nend'
    """
    lines, out, run = text.split("\n"), [], []
    for line in [*lines, None]:
        if line is not None and line.startswith("LISTEN "):
            run.append(line)
            continue
        out.extend(sorted(run))
        run = []
        if line is not None:
            out.append(line)
    return "\n".join(out)


def _drop_curl_meter(text: str) -> str:
    """Drop curl's progress meter: its header, its rows, and a piece glued to the start of
    the body (stdout comes in one piece; the meter, on stderr, in many).

    >>> _drop_curl_meter("  % Total  % Received\\n   Dload  Upload\\n  0   0   <html>\\n"
    ...                  "</html>\\n0 100  639 0 0\\r100  639  12.1k\\n")
    '<html>\\n</html>\\n'
    """
    text = re.sub(r"(?m)^ *% Total +% Received[^<\n]*\n?|^ +Dload +Upload[^<\n]*\n?", "", text)
    text = re.sub(r"(?m)^[ \t\d.:kMG\r-]+(?=<)", "", text)
    return re.sub(r"(?m)^(?=[^\n]*\d)[ \t\d.:kMG\r-]+(?:\n|$)", "", text)


def _docker_ps_columns(text: str) -> str:
    """`docker ps` pads columns to the widest cell, and CREATED/STATUS cells change
    width with time: in its header and rows, column gaps become three spaces.

    >>> _docker_ps_columns("CONTAINER ID   IMAGE      NAMES\\n<container-id>   busybox    nstest")
    'CONTAINER ID   IMAGE   NAMES\\n<container-id>   busybox   nstest'
    """
    return re.sub(
        r"(?m)^(CONTAINER ID|<container-id>) .*$",
        lambda m: re.sub(r" {3,}", "   ", m.group(0)),
        text,
    )


# The rules, in the order they apply. Each names what it replaces and why it changes.
RULES: tuple[Rule, ...] = (
    Rule(
        "curl-progress",
        r"(?m)^ *% Total +% Received",
        "",
        "curl's progress meter (stderr): speeds and times, written in pieces that land "
        "before, after or glued to stdout's body at random; every piece is dropped",
        block=_drop_curl_meter,
    ),
    Rule(
        "container-id",
        r"(?m)\b[0-9a-f]{64}\b|^[0-9a-f]{12}(?= )",
        "<container-id>",
        "Docker gives every container a random id (64 hex digits, 12 in `docker ps`)",
    ),
    Rule(
        "docker-ps-created",
        r"(?:Less than a second|About an? \w+|\d+ \w+) ago\b",
        "<created> ago",
        "`docker ps` CREATED: the time since the container was created",
    ),
    Rule(
        "docker-ps-status",
        r"\bUp (?:Less than a second|About an? \w+|\d+ \w+)",
        "Up <time>",
        "`docker ps` STATUS: the time the container has been up",
    ),
    Rule(
        "docker-ps-columns",
        r"(?m)^CONTAINER ID ",
        "",
        "`docker ps` pads columns to the widest cell: gaps become three spaces",
        block=_docker_ps_columns,
    ),
    Rule(
        "veth-name",
        r"\bveth[0-9a-f]{7}\b",
        "vethXXXXXXX",
        "Docker names a container's host-side veth at random",
        width=True,
    ),
    Rule(
        "bridge-name",
        r"\bbr-[0-9a-f]{12}\b",
        "br-xxxxxxxxxxxx",
        "Docker names a user-defined network's bridge br- and the first 12 digits of the "
        "network's random id",
    ),
    Rule(
        "ping-time",
        r"\btime[=<](?P<v>[\d.]+) ?ms\b",
        "<t>",
        "ping's round-trip time of each reply",
    ),
    Rule(
        "ping-summary",
        r"(?m)^(?:rtt|round-trip) min/avg/max(?:/mdev)? = (?P<v>[\d./]+) ms$",
        "<min/avg/max>",
        "ping's round-trip summary (iputils' rtt line, busybox's round-trip line)",
    ),
    Rule(
        "ping-total-time",
        r"packet loss, time (?P<v>\d+)ms",
        "<t>",
        "how long iputils' ping ran, in its summary",
    ),
    Rule(
        "resolver-servers",
        r"(?m)^# ExtServers: \[(?P<v>.*)\]$",
        "<host resolvers>",
        "the host's resolvers, which Docker 26 and later note in a container's resolv.conf "
        "(the embedded DNS forwards to them)",
    ),
    Rule(
        "wget-progress",
        r"(?P<v>\d+:\d\d:\d\d|--:--:--) ETA\b",
        "<eta>",
        "busybox wget's progress line: its time left",
    ),
    Rule(
        "wget-speed",
        r"\((?P<v>[\d.]+ [KMG]?B/s)\)",
        "<speed>",
        "GNU wget's transfer speed",
    ),
    Rule(
        "interface-index",
        r"(?m)^(?P<v>\d+)(?=: [\w.-]+(?:@[\w-]+)?: <)",
        "N",
        "`ip` numbers interfaces in creation order; the machine's own eth0 gets the "
        "host's next index",
    ),
    Rule(
        "peer-index",
        r"@if(?P<v>\d+)\b",
        "N",
        "`@ifN` names the veth peer's interface index (the host's, for the machine's eth0)",
    ),
    Rule(
        "mac-address",
        r"\b(?!00:00:00:00:00:00|ff:ff:ff:ff:ff:ff)(?:[0-9a-f]{2}:){5}[0-9a-f]{2}\b",
        "xx:xx:xx:xx:xx:xx",
        "MAC addresses are random on Docker 28 and for docker0 everywhere",
    ),
    Rule(
        "bridge-id",
        r"\b[0-9a-f]{4}\.(?P<v>[0-9a-f]{12})\b",
        "xxxxxxxxxxxx",
        "a bridge id is its priority and its MAC address (`brctl show`)",
    ),
    Rule(
        "log-time",
        r"\[\d{2}/\w{3}/\d{4} \d{2}:\d{2}:\d{2}\]",
        "[DD/Mon/YYYY hh:mm:ss]",
        "the time of a request in the Python web server's log",
    ),
    Rule(
        "ephemeral-port",
        r":(?P<v>3[2-9]\d{3}|[4-5]\d{4}|6[0-5]\d{3})\b",
        "<eph>",
        "ports from the ephemeral range (32768-65535), such as the host Docker's "
        "embedded DNS listener on 127.0.0.11",
    ),
    Rule("pid", r"\bpid=(?P<v>\d+)", "<pid>", "process ids (`ss -p`)"),
    Rule(
        "fd",
        r"\bfd=(?P<v>\d+)",
        "<fd>",
        "file descriptor numbers (`ss -p`): dockerd's listening socket gets whichever is free",
    ),
    Rule(
        "trace-time",
        r"\(exit \d+, (?P<v>[\d.]+) s, ",
        "<t>",
        "how long a traced command took (`labgen-lab trace`)",
    ),
    Rule(
        "raw-table-packets",
        r"(?m)^[A-Z]+ +raw [^\n]*? +(?P<v>\+\d+)(?=  )",
        "+N",
        "the raw table sees every packet, not a connection's first: its counts in a trace "
        "follow TCP's acks and retransmissions (seen +16 and +18 for one request); the nat "
        "counts, one a connection, are kept",
        width=True,
    ),
    Rule(
        "trace-background",
        r"\(also (?P<v>\+\d+) with nothing running\)",
        "+N",
        "what a counter also moved while nothing ran: other traffic on the machine",
    ),
    Rule(
        "listener-order",
        r"(?m)^LISTEN ",
        "",
        "`ss` lists sockets in hash order, which an ephemeral port moves: LISTEN rows sorted",
        block=_sort_listeners,
    ),
    Rule(
        "iptables-bytes",
        r"(?m)^ *\d+ (?P<v> *\d+)(?= [A-Z][\w-]* )",
        "B",
        "byte counts of rules in `iptables -L -v` follow packet sizes; the packet "
        "counts, which the count steps are about, are kept",
        width=True,
    ),
    Rule(
        "iptables-policy-bytes",
        r"(?<=packets, )(?P<v>\d+)(?= bytes\))",
        "B",
        "byte counts of chain policies in `iptables -L -v` (packet counts kept)",
    ),
    Rule(
        "eth0-broadcast",
        r"inet (?!172\.17\.)[\d.]+/\d+ brd (?P<v>[\d.]+) scope global eth0",
        "<eth0-broadcast>",
        "the broadcast address of the machine's own subnet",
        value=True,
    ),
    Rule(
        "eth0-address",
        r"inet (?P<v>(?!172\.17\.)[\d.]+)/\d+ brd \S+ scope global eth0",
        "<eth0-address>",
        "the machine's own address is the provider's (labgen picks a free subnet)",
        value=True,
    ),
    Rule(
        "trailing-space",
        r"(?m)[ \t]+$",
        "",
        "column padding at the end of a line (`ss`, `iptables -L`), which follows the widest cell",
    ),
)


def lab_rules(lab: Lab) -> tuple[Rule, ...]:
    """The lab's own rules (lab.yaml `normalise:`), named LAB/1, LAB/2, ... in headers."""
    return tuple(
        Rule(f"{lab.name}/{i}", r.pattern, r.replacement, r.reason)
        for i, r in enumerate(lab.spec.normalise, start=1)
    )


def _apply(rule: Rule, text: str) -> str:
    if rule.block is not None:
        return rule.block(text)
    if rule.value:
        values = {m.group("v") for m in re.finditer(rule.pattern, text)}
        for value in sorted(values, key=len, reverse=True):
            text = re.sub(rf"(?<![\w.]){re.escape(value)}(?![\w]|\.\d)", rule.placeholder, text)
        return text

    def replace(m: re.Match[str]) -> str:
        group = "v" if "v" in m.re.groupindex else None
        if group is None:
            return rule.placeholder
        new = rule.placeholder.rjust(len(m.group(group))) if rule.width else rule.placeholder
        start, end = m.start(group) - m.start(), m.end(group) - m.start()
        return m.group(0)[:start] + new + m.group(0)[end:]

    return re.sub(rule.pattern, replace, text)


def normalise(text: str, lab_rules: Sequence[Rule] = ()) -> tuple[str, list[str]]:
    """`text` with every rule applied, and the names of the rules that changed it: the
    lab's own (lab.yaml's `normalise:`, on what the step printed) first, then RULES.

    Line ends become `\\n` and the text ends with one newline (or is empty).

    >>> normalise("4: veth942b137@if3: <BROADCAST> mtu 1500 \\n")
    ('N: vethXXXXXXX@ifN: <BROADCAST> mtu 1500\\n', ['veth-name', 'interface-index', \
'peer-index', 'trailing-space'])
    >>> normalise('172.17.0.1 - - [25/Nov/2026 09:51:18] "GET / HTTP/1.1" 200 -')[0]
    '172.17.0.1 - - [DD/Mon/YYYY hh:mm:ss] "GET / HTTP/1.1" 200 -\\n'
    >>> normalise("       2      120 DNAT       6    --  *  *")[0]
    '       2        B DNAT       6    --  *  *\\n'
    """
    text = text.replace("\r\n", "\n")
    applied = []
    for rule in (*lab_rules, *RULES):
        if re.search(rule.pattern, text):
            applied.append(rule.name)
            text = _apply(rule, text)
    text = text.strip("\n")
    return (text + "\n" if text else ""), applied


@dataclass(frozen=True)
class Recording:
    """One recorded step output and where it came from."""

    lab: str
    step: str
    engine: str
    docker: str  # the engine's exact version, as `docker version` says
    labgen: str
    date: str  # YYYY-MM-DD
    rules: tuple[str, ...]
    output: str  # normalised

    def text(self) -> str:
        """The file's text.

        >>> print(Recording("l", "s", "20.10", "20.10.24", "0.2.0", "2026-11-25", (), "hi\\n")
        ...       .text(), end="")
        labgen recording: lab l, step s
        engine: 20.10 (Docker 20.10.24)
        labgen: 0.2.0
        date: 2026-11-25
        normalised: nothing (labgen/recordings.py)
        ----------------------------------------------------------------
        hi
        """
        return (
            f"labgen recording: lab {self.lab}, step {self.step}\n"
            f"engine: {self.engine} (Docker {self.docker})\n"
            f"labgen: {self.labgen}\n"
            f"date: {self.date}\n"
            f"normalised: {', '.join(self.rules) or 'nothing'} (labgen/recordings.py)\n"
            f"{SEPARATOR}\n{self.output}"
        )


_HEADER = re.compile(
    r"labgen recording: lab (?P<lab>\S+), step (?P<step>\S+)\n"
    r"engine: (?P<engine>\S+) \(Docker (?P<docker>[^)]*)\)\n"
    r"labgen: (?P<labgen>\S+)\n"
    r"date: (?P<date>\S+)\n"
    r"normalised: (?P<rules>.*?) \(labgen/recordings\.py\)\n" + re.escape(SEPARATOR) + r"\n"
)


class RecordingError(UsageError):
    """A recording file that is not one (exit 2: bad input, found before a machine starts)."""


def parse(text: str, path: Path | str = "<recording>") -> Recording:
    """A recording file's text, read back (`Recording.text` the other way)."""
    m = _HEADER.match(text)
    if m is None:
        raise RecordingError(
            f"{path}: not a labgen recording (header missing or changed)",
            hint="`labgen verify LAB --record` writes it again; or delete the file",
        )
    rules = () if m["rules"] == "nothing" else tuple(m["rules"].split(", "))
    return Recording(
        m["lab"],
        m["step"],
        m["engine"],
        m["docker"],
        m["labgen"],
        m["date"],
        rules,
        text[m.end() :],
    )


def path_of(lab_dir: Path, engine: str, step: str) -> Path:
    """Where a lab's recording of one step on one engine lives."""
    return lab_dir / RECORDED_DIR / engine / f"{step}.txt"


def engines_recorded(lab_dir: Path) -> list[str]:
    """The engines a lab has recordings for (folders with at least one file)."""
    root = lab_dir / RECORDED_DIR
    return sorted(p.name for p in root.glob("*") if p.is_dir() and any(p.glob("*.txt")))


def load(lab_dir: Path, engine: str) -> dict[str, Recording]:
    """The recordings of a lab on an engine, by step (empty: none)."""
    found = {}
    for path in sorted((lab_dir / RECORDED_DIR / engine).glob("*.txt")):
        found[path.stem] = parse(path.read_text(encoding="utf-8"), path)
    return found


def diff(recorded: str, now: str, label: str) -> str:
    """A unified diff from the recorded output to the normalised output of now; empty:
    no drift. `label` names lab, engine and step in the diff's file names.

    >>> print(diff("a\\nb\\n", "a\\nc\\n", "lab@20.10 step"), end="")
    --- recorded lab@20.10 step
    +++ now lab@20.10 step
    @@ -1,2 +1,2 @@
     a
    -b
    +c
    """
    old, new = recorded.splitlines(), now.splitlines()
    lines = difflib.unified_diff(old, new, f"recorded {label}", f"now {label}", lineterm="")
    return "".join(line + "\n" for line in lines)


@dataclass(frozen=True)
class Comparison:
    """How one step's recording on an engine compares with the default engine's.

    `state` is "same" (the two normalised outputs are equal, and only then), "differs"
    (then `diff` is a unified diff from the default's output to this engine's, and
    `added`/`removed` count its lines), or "not recorded" (one of the two is missing,
    so nothing was compared: never "same").
    """

    engine: str
    state: str
    diff: str = ""
    added: int = 0
    removed: int = 0


def compare(
    default: Recording | None, other: Recording | None, default_engine: str, engine: str
) -> Comparison:
    r"""`other` (a step's recording on `engine`) against the default engine's recording.

    >>> def rec(engine, output):
    ...     return Recording("l", "s", engine, engine, "0.2.0", "2026-12-02", (), output)
    >>> compare(rec("20.10", "a\n"), rec("28.5", "a\n"), "20.10", "28.5").state
    'same'
    >>> found = compare(rec("20.10", "a\nb\n"), rec("28.5", "a\nc\nd\n"), "20.10", "28.5")
    >>> (found.state, found.added, found.removed)
    ('differs', 2, 1)
    >>> print(found.diff, end="")
    --- Docker 20.10
    +++ Docker 28.5
    @@ -1,2 +1,3 @@
     a
    -b
    +c
    +d
    >>> compare(rec("20.10", "a\n"), None, "20.10", "28.5").state
    'not recorded'
    """
    if default is None or other is None:
        return Comparison(engine, "not recorded")
    if default.output == other.output:
        return Comparison(engine, "same")
    lines = list(
        difflib.unified_diff(
            default.output.splitlines(),
            other.output.splitlines(),
            f"Docker {default_engine}",
            f"Docker {engine}",
            n=1,
            lineterm="",
        )
    )
    body = lines[2:]  # the two file-name lines start with --- and +++ too
    added = sum(1 for line in body if line.startswith("+"))
    removed = sum(1 for line in body if line.startswith("-"))
    return Comparison(engine, "differs", "".join(f"{line}\n" for line in lines), added, removed)


def write(lab_dir: Path, recording: Recording) -> bool:
    """Write a recording; returns False (and writes nothing) when the file already holds
    the same output from the same Docker version, so re-recording gives no diff."""
    path = path_of(lab_dir, recording.engine, recording.step)
    if path.is_file():
        try:
            old = parse(path.read_text(encoding="utf-8"), path)
        except RecordingError:
            old = None
        if old is not None and (old.output, old.docker) == (recording.output, recording.docker):
            return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(recording.text(), encoding="utf-8")
    return True


def remove_stale(lab_dir: Path, engine: str, steps: list[str]) -> list[Path]:
    """Remove the recordings of steps the lab no longer has (or that did not run)."""
    stale = [p for p in (lab_dir / RECORDED_DIR / engine).glob("*.txt") if p.stem not in steps]
    for path in stale:
        path.unlink()
    return stale


# -- recorded wirings ------------------------------------------------------------------
# After each step marked `draw: true`, verify --record keeps the machine's wiring
# (network/wiring.py, normalised) beside the step's text: the lab's page draws it.
WIRING_SUFFIX = ".wiring.json"


def wiring_path(lab_dir: Path, engine: str, step: str) -> Path:
    """Where a lab's recorded wiring after one step on one engine lives."""
    return lab_dir / RECORDED_DIR / engine / f"{step}{WIRING_SUFFIX}"


def load_wirings(lab_dir: Path, engine: str) -> dict[str, str]:
    """The recorded wirings of a lab on an engine (JSON text), by step; empty: none."""
    folder = lab_dir / RECORDED_DIR / engine
    return {
        p.name[: -len(WIRING_SUFFIX)]: p.read_text(encoding="utf-8")
        for p in sorted(folder.glob(f"*{WIRING_SUFFIX}"))
    }


def write_wiring(lab_dir: Path, engine: str, step: str, text: str) -> bool:
    """Write a recorded wiring; False (nothing written) when the file holds it already."""
    path = wiring_path(lab_dir, engine, step)
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return True


def remove_stale_wirings(lab_dir: Path, engine: str, steps: Iterable[str]) -> list[Path]:
    """Remove the recorded wirings of steps not drawn in this run (no longer draw: true,
    gone, or not run on this engine)."""
    keep = set(steps)
    folder = lab_dir / RECORDED_DIR / engine
    stale = [
        p for p in folder.glob(f"*{WIRING_SUFFIX}") if p.name[: -len(WIRING_SUFFIX)] not in keep
    ]
    for path in stale:
        path.unlink()
    return stale
