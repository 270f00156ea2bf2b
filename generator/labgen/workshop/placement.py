"""Where a workshop's seats go when it spans several Docker hosts (`up --hosts a,b`).

The rule: seats go one at a time to the host with the most free memory left after the
seats already placed there, each seat counted at SEAT_MIB, and never past a host's
cores x SEATS_PER_CORE. A host that did not answer, or lacks the base image, is refused
before any seat starts. Pure: it reads probe reports (hosts/probe.py) and decides.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from labgen.core.errors import UsageError
from labgen.hosts.probe import HostReport

# A pooled or seat machine measured 90-135 MiB (README, the warm pool): the upper figure,
# so that a host is never filled past what it holds.
SEAT_MIB = 135
# The workshop server keeps about 10 typing seats per core rechecked every 15 s (README,
# the watch's bench); a host's machines are held to the same ratio.
SEATS_PER_CORE = 10


@dataclass(frozen=True)
class Placement:
    """Each seat's host, in seat order (seat number i -> hosts[i-1])."""

    hosts: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """host -> how many seats it takes, in the order hosts first appear."""
        out: dict[str, int] = {}
        for host in self.hosts:
            out[host] = out.get(host, 0) + 1
        return out


def refusals(reports: list[HostReport], engine: str) -> list[str]:
    """What keeps each host from taking seats of `engine` ("" when nothing): no answer,
    or no base image for it, each with its fix.

    >>> r = HostReport("b", "ssh://b", "docker", answers=True, cores=2, engines=["28.5"])
    >>> refusals([r], "28.5")
    []
    >>> refusals([r], "20.10")
    ['host b lacks the base image of engine 20.10: `labgen hosts push b --engine 20.10`']
    """
    out = []
    for r in reports:
        if not r.answers:
            why = r.problems[0][0] if r.problems else "no answer"
            out.append(f"host {r.name} does not answer: {why}")
        elif r.kind != "local" and engine not in r.engines:
            out.append(
                f"host {r.name} lacks the base image of engine {engine}: "
                f"`labgen hosts push {r.name} --engine {engine}`"
            )
    return out


def place(reports: list[HostReport], n: int) -> Placement:
    """Place `n` seats over the hosts of `reports` (all answering, images present).

    >>> a = HostReport("a", "", "docker", answers=True, cores=1, free_memory_mib=1000)
    >>> b = HostReport("b", "", "docker", answers=True, cores=4, free_memory_mib=600)
    >>> p = place([a, b], 4)
    >>> p.hosts
    ['a', 'a', 'a', 'b']
    >>> p.counts()
    {'a': 3, 'b': 1}
    """
    if not reports:
        raise UsageError("--hosts names no host: give at least one (e.g. --hosts local)")
    left = {r.name: r.free_memory_mib for r in reports}
    room = {r.name: max(1, r.cores) * SEATS_PER_CORE for r in reports}
    placed: list[str] = []
    for _ in range(n):
        open_hosts = [r.name for r in reports if room[r.name] > 0]
        if not open_hosts:
            total = sum(max(1, r.cores) * SEATS_PER_CORE for r in reports)
            raise UsageError(
                f"--seats {n} is more than the hosts hold: {total} seats "
                f"({SEATS_PER_CORE} per core)",
                hint="add a host to --hosts or ask for fewer --seats",
            )
        # max() keeps the first of equals: ties go to the host named first in --hosts.
        best = max(open_hosts, key=lambda h: left[h])
        placed.append(best)
        left[best] -= SEAT_MIB
        room[best] -= 1
    return Placement(placed)
