"""One `trace --kernel` run: the shell script that runs bpftrace around a command on the
machine, and the reader of what it printed (issue 22).

Standard library only: `labgen trace --kernel` runs the script over SSH and
`labgen-lab trace --kernel` runs it inside the machine; both read it with `read_run`.
"""

from __future__ import annotations

import shlex

from .kernel import PROGRAM, KernelEvent, KernelWalk, drop_reasons, own_flows, parse_events, walk
from .trace_run import RUN_MARK, split_run

READY_SECONDS = 90
"""How long bpftrace may take to compile and attach (slow on a loaded 2-core host)."""

MISSING = 93
"""The script's exit status when the machine lacks what the probes need (its stderr
says what): the caller's exit 2, nothing was traced."""

# Root's side, in a private mount namespace so the tracefs mount dies with bpftrace
# (the machine's /sys/kernel/tracing stays empty, as it was). $$ is bpftrace's pid after
# exec: the script stops it with SIGINT by that pid. The watcher stops it too when the
# script ($2) is gone however it ended (killed, its SSH connection dropped), so that no
# probe (nor its folder) outlives the trace.
_BPFTRACE = """\
mount -t tracefs tracefs /sys/kernel/tracing 2>"$1/mount.err" || exit 97
cat /sys/kernel/tracing/events/skb/kfree_skb/format > "$1/format" 2>/dev/null
echo $$ > "$1/pid"
( while [ -e "/proc/$2" ]; do sleep 1; done; kill -INT $$ 2>/dev/null; rm -rf "$1" ) &
exec bpftrace "$1/prog.bt"
"""

# Root's side: every namespace in use while the command runs, `inode pid` or
# `inode netns:NAME`, polled because a `docker run --rm`'s namespace is gone afterwards.
_POLL = """\
while :; do
  for f in /proc/[0-9]*/ns/net; do
    i=$(stat -L -c %i "$f" 2>/dev/null) && p=${f#/proc/} && echo "$i ${p%%/*}"
  done
  for f in /run/netns/*; do
    [ -e "$f" ] && echo "$(stat -L -c %i "$f") netns:${f##*/}"
  done
  [ -e "$1/done" ] && break
  sleep 0.2
done | sort -u > "$1/ns.tmp"
mv "$1/ns.tmp" "$1/ns"
"""


def script(command: str) -> str:
    """The shell script that traces `command` (run as the lab user) with bpftrace.

    Checks what the probes need first (BTF, bpftrace, `sudo -n`) and exits MISSING
    saying which is absent; starts the program, waits for its ready line (exit MISSING
    with bpftrace's own words when it fails to attach), runs the command while the
    namespaces in use are polled, stops bpftrace, and prints every part in sections.

    >>> "unshare -m" in script("true") and "@@ready" in script("true")
    True
    """
    q = shlex.quote
    return f"""\
d=$(mktemp -d) || exit 90
bt=; poll=
cleanup() {{
  [ -s "$d/pid" ] && sudo -n kill -INT "$(cat "$d/pid")" 2>/dev/null
  [ -n "$poll" ] && {{ touch "$d/done"; wait "$poll" 2>/dev/null; }}
  rm -rf "$d"
}}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP PIPE
missing() {{ echo "$*" >&2; exit {MISSING}; }}
[ -r /sys/kernel/btf/vmlinux ] || missing "this kernel has no BTF (/sys/kernel/btf/vmlinux): \
the probes read a packet's addresses through it"
command -v bpftrace >/dev/null || missing "bpftrace is not installed in the machine"
sudo -n true 2>/dev/null || missing "the lab user cannot run sudo -n (bpftrace needs root)"
printf '%s' {q(PROGRAM)} > "$d/prog.bt"
sudo -n unshare -m sh -c {q(_BPFTRACE)} sh "$d" $$ > "$d/events" 2> "$d/bpftrace.err" &
bt=$!
n=0
until grep -q '^@@ready' "$d/events" 2>/dev/null; do
  if ! [ -e /proc/$bt ]; then
    wait $bt; rc=$?
    [ $rc = 97 ] && missing "tracefs cannot be mounted at /sys/kernel/tracing: \
$(cat "$d/mount.err")"
    missing "bpftrace failed to attach (exit $rc): $(tail -5 "$d/bpftrace.err")"
  fi
  n=$((n + 1)); [ $n -gt {READY_SECONDS * 10} ] && missing "bpftrace did not attach \
in {READY_SECONDS} s: $(tail -5 "$d/bpftrace.err")"
  sleep 0.1
done
sudo -n sh -c {q(_POLL)} sh "$d" & poll=$!
sh -c {q(command)} > "$d/stdout" 2> "$d/stderr" < /dev/null
echo $? > "$d/status"
sleep 0.3
touch "$d/done"; wait "$poll"; poll=
sudo -n kill -INT "$(cat "$d/pid")"; wait $bt; rm -f "$d/pid"
sudo -n docker ps -q 2>/dev/null | xargs -r sudo -n docker inspect \
  -f '{{{{.State.Pid}}}} {{{{.Name}}}}' > "$d/containers" 2>/dev/null
stat -L -c %i /proc/self/ns/net > "$d/own"
while read -r i w; do
  case $w in
    netns:*) sudo -n ip netns exec "${{w#netns:}}" ip -j link ;;
    *) sudo -n nsenter -t "$w" -n ip -j link ;;
  esac 2>/dev/null | sed "s/^/$i /"
done < "$d/ns" > "$d/links"
for f in events ns own containers links format stdout stderr status bpftrace.err; do
  [ -e "$d/$f" ] || continue
  echo "{RUN_MARK} begin $f"; cat "$d/$f"; echo; echo "{RUN_MARK} end $f"
done
"""


def names(ns: str, own: str, containers: str) -> dict[int, str]:
    """The machine's namespaces by inode, named: `machine` (the script's own), a
    container's name (by the pid docker inspect gave), `netns NAME`, else `pid N`.
    Namespaces of processes outside the machine are never listed: the machine's /proc
    shows its own only.

    >>> names("7 1\\n8 40\\n8 41\\n9 77\\n9 netns:lab2\\n", "7", "40 /web\\n")
    {7: 'machine', 8: 'web', 9: 'netns lab2'}
    """
    by_pid = {}
    for line in containers.splitlines():
        pid, _, name = line.partition(" ")
        by_pid[pid] = name.lstrip("/")
    # One inode, several processes and maybe a name: a container's name first, then the
    # netns's (`ip netns exec` runs its command there too), then the lowest pid.
    ranked: dict[int, tuple[int, str]] = {}
    for line in ns.splitlines():
        inode, _, who = line.partition(" ")
        if not inode.isdigit():
            continue
        if who in by_pid:
            rank = (0, by_pid[who])
        elif who.startswith("netns:"):
            rank = (1, "netns " + who[len("netns:") :])
        else:
            rank = (2, f"pid {who}")
        if int(inode) not in ranked or rank < ranked[int(inode)]:
            ranked[int(inode)] = rank
    result = {inode: label for inode, (_, label) in ranked.items()}
    if own.strip().isdigit():
        result[int(own.strip())] = "machine"
    return result


def read_run(raw: str, machine: str, command: str) -> KernelWalk:
    """The `KernelWalk` from what `script` printed (pure: recorded runs test it). Raises
    ValueError when a part is missing: a walk that did not run is never shown empty."""
    sections = split_run(raw)
    missing = [s for s in ("events", "ns", "own", "status") if s not in sections]
    if missing or "@@ready" not in sections.get("events", ""):
        raise ValueError(f"the kernel trace printed no {', '.join(missing) or 'ready line'}")
    named = names(sections["ns"], sections["own"], sections.get("containers", ""))
    events: list[KernelEvent] = parse_events(sections["events"])
    kept = own_flows(events, named)
    result = walk(machine, command, kept, named)
    result.hidden += len(events) - len(kept)
    result.status = int(sections["status"].strip() or 255)
    result.stdout, result.stderr = sections.get("stdout", ""), sections.get("stderr", "")
    result.raw = sections["events"]
    result.reasons = drop_reasons(sections.get("format", ""))
    return result
