"""The tutorial's listings (what it shows a command printing) and the steps whose
recordings stand beside them in the seed map, with why the two differ; the tutorial's
typos. The seed is read as seedmap.py reads it: its fenced blocks, as Markdown.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from labgen.docs.seedmap import SeedPlace, fenced_blocks, prompt_command


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
        """The listing as a recording is compared with: without the `# ` annotations."""
        kept = [x for x in self.text.split("\n") if not (x + " ").startswith("# ")]
        return "\n".join(kept).strip("\n") + "\n"


def seed_listings(seed_text: str) -> list[SeedListing]:
    """Every command of the seed's fenced blocks that is followed by output, in order.

    >>> text = "# S\\n```bash\\n$ a\\n# start\\n$ b\\nout 1\\n# note\\n```\\n"
    >>> [(x.command, x.place.line, x.text) for x in seed_listings(text)]
    [('b', 5, 'out 1\\n# note\\n')]
    """
    return [
        SeedListing(command, SeedPlace(number, block.section), "\n".join(output) + "\n")
        for block in fenced_blocks(seed_text)
        for number, command, output in _commands_and_output(block.lines)
        # A command with only the tutorial's `#` annotations below it printed nothing.
        if any(line.strip() and not line.startswith("#") for line in output)
    ]


def _commands_and_output(lines: Iterable[tuple[int, str]]) -> list[tuple[int, str, list[str]]]:
    """Each `$ ` line of a block (its number and command) with the lines below it, up to
    the next `$ ` line or the block's end."""
    found: list[tuple[int, str, list[str]]] = []
    for number, line in lines:
        if line.startswith("$ "):
            found.append((number, prompt_command(line), []))
        elif found:
            found[-1][2].append(line.rstrip())
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
