"""One trace run: the shell script that reads the counters around a command, and the
reader of what it printed.

Standard library only: it runs on the host (`labgen trace`, over SSH) and inside the lab
machine (`labgen-lab trace`, with Debian's python3), so both read the same script's
output the same way. Pure functions, so recorded runs test them.
"""

from __future__ import annotations

import re
import shlex

from . import trace
from .trace import OWN_CHAIN, PacketWalk, TraceError, TraceResult, TraceStep, parse_save

IDLE_SECONDS = 1.0
"""How long the idle interval lasts: counters that move in it move without the command."""

_TRACE = re.compile(r"^TRACE:\s+\d+\s+(\S+)\s+(\w+):([^:]+):(\w+)(?::(\S+))?(?:\s+(.*))?$")
_PACKET = re.compile(r"^PACKET:\s+\d+\s+(\S+)\s+(.*)$")


def parse_monitor(text: str, own_chain: str = "") -> list[PacketWalk]:
    """Packets from `xtables-monitor --trace` output; steps in `own_chain` (the tracer's
    own rules) and the jumps into it are left out.

    >>> walks = parse_monitor('''PACKET: 2 1a OUT=lo SRC=127.0.0.1 DST=127.0.0.1 SYN
    ...  TRACE: 2 1a nat:OUTPUT:policy:ACCEPT ''')
    >>> walks[0].steps[0]
    TraceStep(table='nat', chain='OUTPUT', kind='policy', verdict='ACCEPT', rule='')
    """
    walks: list[PacketWalk] = []
    current: tuple[str, str] | None = None
    steps: list[TraceStep] = []

    def close() -> None:
        if current is not None:
            walks.append(PacketWalk(current[0], current[1], tuple(steps)))

    for raw in text.splitlines():
        line = raw.strip()
        packet = _PACKET.match(line)
        if packet:
            close()
            current, steps = (packet[1], packet[2].strip()), []
            continue
        step = _TRACE.match(line)
        if step is None or current is None:
            continue
        table, chain, kind = step[2], step[3], step[4]
        # rule:HANDLE:VERDICT[:CHAIN] for rules; policy:VERDICT and return:... otherwise.
        rest = (step[5] or "").split(":")
        verdict = ":".join(rest[1:] if kind == "rule" else rest)
        rule = (step[6] or "").strip()
        # "-4 -t nat -A ..." (iptables 1.8.9), "iptables -t nat -A ..." (1.8.13): the
        # rule as iptables-save writes it, so both readings name a rule the same way.
        rule = re.sub(r"^(?:-4\s+|iptables\s+)?-t\s+\S+\s+", "", rule)
        if own_chain and (chain == own_chain or verdict.endswith(":" + own_chain)):
            continue
        steps.append(TraceStep(table, chain, kind, verdict, rule))
    close()
    return walks


# -- one trace run on a machine: the script, and reading what it printed ------------------

RUN_MARK = "@@labgen-trace"

# The TRACE rules: every packet but the SSH connection's (port 22 either way) gets
# traced. A user chain, so that RETURN hands the packet back to PREROUTING/OUTPUT and the
# raw table's own rules (28.5's DROP) still see every packet as before.
TRACE_ON = f"""\
iptables -t raw -N {OWN_CHAIN}
iptables -t raw -A {OWN_CHAIN} -p tcp -m tcp --sport 22 -j RETURN
iptables -t raw -A {OWN_CHAIN} -p tcp -m tcp --dport 22 -j RETURN
iptables -t raw -A {OWN_CHAIN} -j TRACE
iptables -t raw -I PREROUTING 1 -j {OWN_CHAIN}
iptables -t raw -I OUTPUT 1 -j {OWN_CHAIN}
"""

TRACE_OFF = f"""\
while iptables -t raw -D PREROUTING -j {OWN_CHAIN} 2>/dev/null; do :; done
while iptables -t raw -D OUTPUT -j {OWN_CHAIN} 2>/dev/null; do :; done
iptables -t raw -F {OWN_CHAIN} 2>/dev/null
iptables -t raw -X {OWN_CHAIN} 2>/dev/null
true
"""
"""Removes the TRACE rules; harmless when there are none (run again after every trace)."""


def script(command: str, idle: float = 1.0, packets: bool = False) -> str:
    """The shell script that traces `command` on the machine (run as the lab user).

    Everything goes to files until the end, so that no output crosses the SSH connection
    while counters are read: two dumps around `idle` seconds with nothing running, then
    dumps before and after the command, its output and exit status, and with `packets`
    xtables-monitor's trace. A trap removes the TRACE rules however the script ends.

    >>> "iptables-save -c" in script("true") and "xtables-monitor" not in script("true")
    True
    """
    q = shlex.quote
    on = f"sudo -n sh -c {q(TRACE_OFF + TRACE_ON)}" if packets else ":"
    off = f"sudo -n sh -c {q(TRACE_OFF)}" if packets else ":"
    monitor_start = (
        'sudo -n xtables-monitor --trace > "$d/monitor" 2>&1 & mon=$!; sleep 0.5'
        if packets
        else ":"
    )
    # The monitor reads events from a netlink socket: give the last ones time to arrive.
    monitor_stop = 'sleep 0.3; sudo -n kill "$mon"; wait "$mon" 2>/dev/null' if packets else ":"
    return f"""\
d=$(mktemp -d) || exit 90
cleanup() {{ {off}; rm -rf "$d"; }}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
save() {{
  sudo -n iptables-save -c > "$d/$1" 2> "$d/$1.err" || {{ cat "$d/$1.err" >&2; exit 91; }}
}}
save idle-before
sleep {idle:.2f}
save idle-after
save before
{on} || exit 92
{monitor_start}
date +%s.%N > "$d/started"
sh -c {q(command)} > "$d/stdout" 2> "$d/stderr" < /dev/null
echo $? > "$d/status"
date +%s.%N > "$d/ended"
{monitor_stop}
{off}
save after
for f in idle-before idle-after before after monitor stdout stderr status started ended; do
  [ -e "$d/$f" ] || continue
  echo "{RUN_MARK} begin $f"; cat "$d/$f"; echo; echo "{RUN_MARK} end $f"
done
"""


def split_run(raw: str) -> dict[str, str]:
    """The sections the trace script printed, by name.

    >>> split_run("@@labgen-trace begin status\\n0\\n\\n@@labgen-trace end status\\n")
    {'status': '0\\n'}
    """
    sections: dict[str, str] = {}
    name: str | None = None
    body: list[str] = []
    for line in raw.splitlines(keepends=True):
        words = line.split()
        if len(words) == 3 and words[0] == RUN_MARK and words[1] in ("begin", "end"):
            if words[1] == "begin":
                name, body = words[2], []
            elif name == words[2]:
                text = "".join(body)
                sections[name] = text[:-1] if text.endswith("\n") else text
                name = None
            continue
        if name is not None:
            body.append(line)
    return sections


def read_run(raw: str, machine: str, command: str, idle: float, packets: bool) -> TraceResult:
    """A `TraceResult` from what `script` printed (pure: recorded runs test it)."""
    sections = split_run(raw)
    missing = [
        s for s in ("idle-before", "idle-after", "before", "after", "status") if s not in sections
    ]
    if missing:
        raise TraceError(f"the trace printed no {', '.join(missing)}")
    before, after = parse_save(sections["before"]), parse_save(sections["after"])
    found = trace.path(
        before, after, parse_save(sections["idle-before"]), parse_save(sections["idle-after"])
    )
    try:
        seconds = float(sections["ended"]) - float(sections["started"])
    except (KeyError, ValueError):
        seconds = 0.0
    version = ".".join(map(str, after.version)) if after.version else "?"
    walks = None
    if packets:
        walks = tuple(parse_monitor(sections.get("monitor", ""), OWN_CHAIN))
    return TraceResult(
        machine,
        command,
        int(sections["status"].strip() or 255),
        sections.get("stdout", ""),
        sections.get("stderr", ""),
        round(seconds, 3),
        idle,
        found,
        f"{version} ({after.backend or '?'})",
        walks,
    )
