"""`trace --kernel`: a command's packets as the kernel saw them (issue 22), first part.

Built on what runs on a kernel without kprobes: tracepoints read with bpftrace
(net:net_dev_queue, net:netif_receive_skb, skb:kfree_skb with its drop reason) and BTF
casts for a packet's network namespace and IPv4 addresses. Measured in a 28.5 machine
(kernel 6.18, Debian's bpftrace 0.27.1): bpftrace 0.27 refuses to start without
/sys/kernel/tracing/available_events, which the machine's sysfs lacks, so the program
runs in a private mount namespace with tracefs mounted there (`unshare -m`); it then
warns about available_filter_functions and RLIMIT_MEMLOCK and attaches. The probes see
the whole host kernel, so `walk` keeps only events in the machine's own namespaces.

Standard library only: machine/render.py copies this folder into the machine.
The script that runs it around a command, and its reader: kernel_run.py.
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, field
from typing import Any

POLICY_FILE = "/etc/labgen/kernel-trace"
"""`off` in this root-owned file turns `--kernel` off for everyone in the machine; a
missing file means on (machines outside a workshop)."""

PROGRAM = r"""
BEGIN { printf("@@ready\n"); }
tracepoint:net:net_dev_queue, tracepoint:net:netif_receive_skb {
  $skb = (struct sk_buff *)args->skbaddr;
  if ($skb->protocol == 0x0008) {
    $ip = (struct iphdr *)($skb->head + $skb->network_header);
    $t = $skb->head + $skb->network_header + ((*(uint8 *)$ip) & 0xf) * 4;
    printf("%s ns=%u dev=%s ifi=%d saddr=%s daddr=%s ipp=%u sport=%u dport=%u f=%u t=%llu\n",
      probe, $skb->dev->nd_net.net->ns.inum, $skb->dev->name, $skb->dev->ifindex,
      ntop($ip->saddr), ntop($ip->daddr), $ip->protocol,
      *(uint16 *)$t, *(uint16 *)($t + 2), *(uint8 *)($t + 13), nsecs);
  }
}
tracepoint:skb:kfree_skb {
  $skb = (struct sk_buff *)args->skbaddr;
  if ($skb->protocol == 0x0008 && $skb->dev != 0) {
    $ip = (struct iphdr *)($skb->head + $skb->network_header);
    printf("%s reason=%d loc=%s ns=%u ifi=%d saddr=%s daddr=%s t=%llu\n", probe, args->reason,
      ksym(args->location), $skb->dev->nd_net.net->ns.inum, $skb->dev->ifindex,
      ntop($ip->saddr), ntop($ip->daddr), nsecs);
  }
}
"""
"""The bpftrace program: one line per IPv4 packet event, `probe key=value ...`."""

_EVENT = re.compile(r"^tracepoint:(\w+):(\w+)\s+(.*)$")
_KINDS = {"net_dev_queue": "out", "netif_receive_skb": "in", "kfree_skb": "drop"}


def _port(raw: str) -> int:
    """A port read as a little-endian u16 from network order.

    >>> _port("34835")
    5000
    """
    value = int(raw)
    return ((value & 0xFF) << 8) | (value >> 8)


@dataclass(frozen=True)
class KernelEvent:
    """One tracepoint hit: a packet leaving (out), arriving (in) or freed with a reason."""

    kind: str
    netns: int
    dev: str
    ifindex: int
    src: str
    dst: str
    sport: int = 0
    dport: int = 0
    reason: int = 0
    location: str = ""
    proto: int = 0  # IP protocol: 6 TCP, 17 UDP
    flags: int = 0  # TCP flags: SYN 2, SYN-ACK 18


def parse_events(text: str) -> list[KernelEvent]:
    """Events from the program's output (or a hand run's), in the order printed.

    >>> parse_events("tracepoint:net:net_dev_queue ns=7 dev=lo ifi=1 len=60 "
    ...              "saddr=127.0.0.1 daddr=127.0.0.1 sport=34835 dport=1")[0].sport
    5000
    """
    events = []
    for line in text.splitlines():
        match = _EVENT.match(line.strip())
        if match is None or match[2] not in _KINDS:
            continue
        fields = dict(w.split("=", 1) for w in match[3].split() if "=" in w)
        events.append(
            KernelEvent(
                _KINDS[match[2]],
                int(fields.get("ns", 0)),
                fields.get("dev", ""),
                int(fields.get("ifi", 0)),
                fields.get("saddr", ""),
                fields.get("daddr", ""),
                _port(fields["sport"]) if "sport" in fields else 0,
                _port(fields["dport"]) if "dport" in fields else 0,
                int(fields.get("reason", 0)),
                fields.get("loc", ""),
                int(fields.get("ipp", 0)),
                int(fields.get("f", 0)) if fields.get("ipp") == "6" else 0,
            )
        )
    return events


@dataclass(frozen=True)
class Hop:
    """A packet crossing one interface of one namespace."""

    netns: str
    dev: str
    direction: str
    src: str
    dst: str


@dataclass
class KernelWalk:
    """The walk a learner reads: each flow's hops through the machine's namespaces."""

    machine: str
    command: str
    flows: list[list[Hop]] = field(default_factory=list)
    drops: list[KernelEvent] = field(default_factory=list)
    hidden: int = 0  # events outside the machine's namespaces, never shown
    status: int = 0  # the command's exit status
    stdout: str = ""
    stderr: str = ""
    reasons: dict[int, str] = field(default_factory=dict)  # drop reasons' names by number
    raw: str = field(default="", repr=False)  # bpftrace's output as printed, for --raw

    def to_json(self) -> dict[str, Any]:
        """Every field but `raw` and `reasons`, each drop with its reason's name, for --json."""
        data = asdict(self)
        del data["raw"], data["reasons"]
        for drop in data["drops"]:
            drop["reason_name"] = self.reasons.get(drop["reason"], "")
        return data


def walk(
    machine: str, command: str, events: list[KernelEvent], names: dict[int, str]
) -> KernelWalk:
    """The walk from `events`, keeping only those in the namespaces `names` lists
    (the machine's own, by inode); each flow's hops in the order they happened,
    repeated packets of a flow on the same interface counted once."""
    result = KernelWalk(machine, command)
    flows: dict[tuple[str, str], list[Hop]] = {}
    for event in events:
        if event.netns not in names:
            result.hidden += 1
            continue
        if event.kind == "drop":
            result.drops.append(event)
            continue
        key = (event.src, event.dst)
        hop = Hop(names[event.netns], event.dev, event.kind, event.src, event.dst)
        hops = flows.setdefault(key, [])
        if hop not in hops:
            hops.append(hop)
    result.flows = list(flows.values())
    return result


def own_flows(events: list[KernelEvent], names: dict[int, str]) -> list[KernelEvent]:
    """The events of the connections the command opened: the TCP flows in which a SYN
    was sent in one of the machine's namespaces (`names`), by either port, and the
    drops of packets between the same addresses. Connections already open (the SSH
    session reading the trace, a lab's background traffic) sent no SYN and are left out;
    so is UDP, which has no SYN to tell the command's own from the rest.

    >>> syn = KernelEvent("out", 1, "lo", 1, "a", "b", 40000, 5000, proto=6, flags=2)
    >>> old = KernelEvent("out", 1, "eth0", 2, "c", "d", 22, 51000, proto=6, flags=16)
    >>> own_flows([syn, old], {1: "machine"}) == [syn]
    True
    """
    ports = {
        port
        for e in events
        if e.netns in names and e.proto == 6 and e.flags == 2 and 22 not in (e.sport, e.dport)
        for port in (e.sport, e.dport)
    }
    kept = [e for e in events if e.kind != "drop" and ports & {e.sport, e.dport}]
    pairs = {frozenset((e.src, e.dst)) for e in kept}
    return [
        e
        for e in events
        if (e.kind != "drop" and ports & {e.sport, e.dport})
        or (e.kind == "drop" and frozenset((e.src, e.dst)) in pairs)
    ]


def host_view(root: str = "/") -> dict[str, bool]:
    """What this kernel offers the probes, from sysfs alone (no tracefs or root needed):
    BTF (the walk reads packets through it), the tracepoint PMU (trace --kernel's
    probes) and the kprobe PMU (pwru's; absent on kernels built without kprobes).

    >>> sorted(host_view("/nonexistent"))
    ['btf', 'kprobes', 'tracepoints']
    """
    base = root.rstrip("/") + "/sys"
    return {
        "btf": os.path.exists(base + "/kernel/btf/vmlinux"),
        "tracepoints": os.path.isdir(base + "/bus/event_source/devices/tracepoint"),
        "kprobes": os.path.isdir(base + "/bus/event_source/devices/kprobe"),
    }


def policy_command(on: bool) -> str:
    """The shell line that turns `--kernel` on or off for everyone in the machine.

    >>> policy_command(False)
    "sudo -n sh -c 'mkdir -p /etc/labgen && echo off > /etc/labgen/kernel-trace'"
    """
    state = "on" if on else "off"
    return f"sudo -n sh -c 'mkdir -p /etc/labgen && echo {state} > {POLICY_FILE}'"


def enabled(text: str | None) -> bool:
    """Whether the policy file's text (None: no file) allows `--kernel`.

    >>> enabled(None), enabled("off\\n")
    (True, False)
    """
    return text is None or text.strip() != "off"


_REASON = re.compile(r'\{\s*(\d+),\s*"([A-Z0-9_]+)"\s*\}')


def drop_reasons(format_text: str) -> dict[int, str]:
    """The drop reasons' names by number, from tracefs's events/skb/kfree_skb/format
    (its __print_symbolic list; the numbers change between kernels, so read, not kept).

    >>> drop_reasons('print fmt: ... { 2, "NOT_SPECIFIED" }, { 12, "NETFILTER_DROP" }')[12]
    'NETFILTER_DROP'
    """
    return {int(n): name for n, name in _REASON.findall(format_text)}


def plain(walk: KernelWalk, reasons: dict[int, str] | None = None) -> str:
    """The walk as plain text: one block per flow (source → destination), one line per
    interface crossed, in order; then the drops with their reason."""
    lines = [f"$ {walk.command}  (on {walk.machine}, exit {walk.status})"]
    if not walk.flows and not walk.drops:
        lines.append(
            "\nNo TCP connection opened by the command was seen in the machine's namespaces."
        )
    for hops in walk.flows:
        lines.append(f"\n{hops[0].src} → {hops[0].dst}")
        lines.extend(
            f"  {'→' if h.direction == 'out' else '←'} {h.dev:<12} {h.netns}" for h in hops
        )
    for drop in walk.drops:
        why = (reasons or walk.reasons).get(drop.reason, str(drop.reason))
        lines.append(f"\ndropped: {drop.src} → {drop.dst} at {drop.location} ({why})")
    lines.append(f"\n({walk.hidden} events of other connections or namespaces not shown)")
    return "\n".join(lines)
