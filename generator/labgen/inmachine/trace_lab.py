"""`labgen-lab trace -- CMD`: the trace inside the lab machine, in plain text.

The lab's steps run in the machine (`labgen-lab run STEP`), so a step that shows which
rules a request met needs the trace there. This module runs the same script as
`labgen trace` (trace_run.py beside it) with the same reading of the dumps (trace.py),
prints the result as plain text (Debian's python3 in the machine has no rich), and
appends it as one JSON line to TRACE_LOG, where a lab's checks read what the learner's
trace showed. Standard library only: machine/render.py ships it into the
machine's lab/labgen/.

    $ labgen-lab trace -- curl -s -o /dev/null http://localhost:5000
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import socket
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .trace import OWN_CHAIN, TraceError, TraceResult
from .trace_run import IDLE_SECONDS, TRACE_OFF, read_run, script

TRACE_LOG = "/var/tmp/labgen-trace/traces.jsonl"
"""Every trace run in the machine, one JSON object a line (trace_json), oldest first.
/var/tmp: writable by the lab user, kept across reboots; checks read it with sudo."""

DESCRIPTION = """\
Run CMD and show which iptables rules its packets met: every table's counters are read
before and after it (never zeroed), and the rules and chain policies that moved are
listed in the order the kernel's hooks visit them. One word after -- is a shell line
('curl -s localhost:5000 | head -1'); several are the command and its arguments, as
typed. Exits with CMD's exit status; 1 when the trace itself failed, 2 on bad usage.
"""


def parser() -> argparse.ArgumentParser:
    """The options before `--`; the command after it is never parsed as options."""
    options = argparse.ArgumentParser(
        prog="labgen-lab trace",
        usage="%(prog)s [--packets | --kernel [--raw]] [--json] -- CMD [ARG...]",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    options.add_argument(
        "--packets", action="store_true", help="also each packet's walk (xtables-monitor --trace)"
    )
    options.add_argument(
        "--kernel",
        action="store_true",
        help="the kernel's view instead: interfaces and namespaces crossed, drops (bpftrace)",
    )
    options.add_argument("--raw", action="store_true", help="with --kernel: bpftrace's events")
    options.add_argument("--json", dest="as_json", action="store_true", help="the result as JSON")
    return options


def trace_json(result: TraceResult) -> dict[str, Any]:
    """The trace for tools: every field, and each hit's `where` as people read it."""
    data = asdict(result)
    data["path"]["hits"] = [asdict(h) | {"where": h.where} for h in result.path.hits]
    return data


def plain(result: TraceResult) -> str:
    """The trace as plain text: the command's outcome, then one line per rule or policy
    whose counters moved, in hook order, a jump's rules indented under it."""
    lines = [
        f"$ {result.command}  (exit {result.status}, {result.seconds:.2f} s, "
        f"iptables {result.iptables})"
    ]
    for name, text in (("stdout", result.stdout), ("stderr", result.stderr)):
        if text.strip():
            lines.append(f"{name}: {_clip(text)}")
    hits = result.path.hits
    if not hits:
        lines.append(
            "\nNo rule or policy counter moved: its packets met no rule "
            "(a socket on this machine answered, or nothing was sent)."
        )
    else:
        rows = [("hook", "where", "rule", "packets")]
        for hit in hits:
            rule = hit.rule if hit.rule is not None else f"policy {hit.policy}"
            text = "  " * hit.depth + ("└ " if hit.depth else "") + rule
            if hit.note:
                text += f"  ({hit.note})"
            if hit.background:
                text += f"  (also +{hit.background} with nothing running)"
            rows.append((hit.hook, hit.where, text, f"+{hit.packets}"))
        widths = [max(len(row[i]) for row in rows) for i in range(2)]
        lines.append("")
        for hook, where, text, count in rows:
            lines.append(f"{hook:<{widths[0]}}  {where:<{widths[1]}}  {count:>7}  {text}")
    lines.extend(f"note: {note}" for note in result.path.notes)
    if result.packets is not None:
        met = [w for w in result.packets if w.met_rules(OWN_CHAIN)]
        lines.append(f"\nPackets that met a rule ({len(met)} of {len(result.packets)}):")
        for walk in met:
            lines.append(f"  {walk.header}")
            lines.extend(
                f"    {s.table}:{s.chain} -> {s.verdict}  {s.rule or s.kind}" for s in walk.steps
            )
    return "\n".join(lines)


def _clip(text: str, limit: int = 2000) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[:limit] + f"... ({len(text) - limit} more)"


def parse_args(argv: list[str]) -> tuple[str, bool, bool]:
    """(command line, packets, as_json) from `[--packets] [--json] -- CMD...`.

    `--help` exits 0 and bad usage exits 2 (SystemExit, as argparse does).

    >>> parse_args(["--json", "--", "curl", "-s", "http://x/?a=1&b=2"])
    ("curl -s 'http://x/?a=1&b=2'", False, True)
    >>> parse_args(["--", "curl -s localhost:5000 | head -1"])[0]
    'curl -s localhost:5000 | head -1'
    """
    options = parser()
    # Split at the first `--` here, not in argparse: a word before it that is not an
    # option is a mistake (the command goes after --), and a command's own `--help` or
    # `--` after it must reach the command.
    split = argv.index("--") if "--" in argv else len(argv)
    args, unknown = options.parse_known_args(argv[:split])
    if unknown:
        options.error(f"unknown option {' '.join(unknown)} (the command goes after --)")
    command = argv[split + 1 :]
    if not command or not "".join(command).strip():
        options.error("which command? `labgen-lab trace -- CMD`")
    # One word is a shell line; several are argv, quoted so the shell keeps them as typed.
    line = command[0] if len(command) == 1 else shlex.join(command)
    return line, args.packets, args.as_json


def record(result: TraceResult, log: Path) -> None:
    """Append the trace to `log` (one JSON line), making its folder if needed."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a", encoding="utf-8") as out:
        out.write(json.dumps(trace_json(result)) + "\n")


def kernel_flags(argv: list[str]) -> tuple[list[str], bool, bool]:
    """`argv` without --kernel and --raw before its `--`, and whether each was there.

    >>> kernel_flags(["--kernel", "--", "curl", "--raw"])
    (['--', 'curl', '--raw'], True, False)
    """
    split = argv.index("--") if "--" in argv else len(argv)
    head = argv[:split]
    rest = [w for w in head if w not in ("--kernel", "--raw")] + argv[split:]
    return rest, "--kernel" in head, "--raw" in head


def kernel_main(command: str, as_json: bool, raw: bool) -> int:
    """`--kernel`: the walk of the command's connections, unless the instructor turned it
    off (POLICY_FILE); 2 when off or when the machine lacks what the probes need."""
    from . import kernel, kernel_run  # only --kernel needs them (render.py ships them all)

    try:
        policy: str | None = Path(kernel.POLICY_FILE).read_text()
    except FileNotFoundError:
        policy = None
    except OSError as exc:
        policy = f"unreadable: {exc}"
    if not kernel.enabled(policy):
        print(
            f"labgen-lab trace: --kernel is turned off on this machine by the instructor "
            f"({kernel.POLICY_FILE}); without --kernel the trace reads iptables' counters",
            file=sys.stderr,
        )
        return 2
    proc = subprocess.run(
        ["bash", "-c", kernel_run.script(command)],
        capture_output=True,
        text=True,
        errors="replace",
        check=False,
    )
    if proc.returncode == kernel_run.MISSING:
        print(f"labgen-lab trace: --kernel cannot run here: {proc.stderr.strip()}", file=sys.stderr)
        return 2
    if proc.returncode != 0:
        print(
            f"labgen-lab trace: the kernel trace failed (exit {proc.returncode}): "
            f"{proc.stderr.strip()}",
            file=sys.stderr,
        )
        return 1
    try:
        walk = kernel_run.read_run(proc.stdout, socket.gethostname(), command)
    except ValueError as exc:
        print(f"labgen-lab trace: the kernel trace's output is unreadable: {exc}", file=sys.stderr)
        return 1
    if raw:
        print(walk.raw)
    else:
        print(json.dumps(walk.to_json(), indent=2) if as_json else kernel.plain(walk))
    return walk.status


def main(argv: list[str]) -> int:
    """Trace a command here; the exit status is the command's (0 after --help, 2: bad
    usage, 1: the trace itself failed)."""
    argv, with_kernel, raw = kernel_flags(argv)
    try:
        command, packets, as_json = parse_args(argv)
    except SystemExit as exc:  # argparse has printed the help or the usage error
        return exc.code if isinstance(exc.code, int) else 2
    if with_kernel or raw:
        if packets or not with_kernel:
            print(
                "labgen-lab trace: --raw goes with --kernel, --packets without it", file=sys.stderr
            )
            return 2
        return kernel_main(command, as_json, raw)
    try:
        proc = subprocess.run(
            ["bash", "-c", script(command, IDLE_SECONDS, packets)],
            capture_output=True,
            text=True,
            errors="replace",
            check=False,
        )
    finally:
        if packets:  # the script's trap removes the TRACE rules; this covers a kill
            subprocess.run(["sudo", "-n", "sh", "-c", TRACE_OFF], capture_output=True)
    if proc.returncode != 0:
        print(
            f"labgen-lab trace: tracing failed (exit {proc.returncode}): "
            f"{proc.stderr.strip()}\n(the trace needs `sudo -n` and iptables-save)",
            file=sys.stderr,
        )
        return 1
    try:
        result = read_run(proc.stdout, socket.gethostname(), command, IDLE_SECONDS, packets)
    except TraceError as exc:
        print(f"labgen-lab trace: the trace's output is unreadable: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(trace_json(result), indent=2) if as_json else plain(result))
    log = Path(os.environ.get("LABGEN_TRACE_LOG", TRACE_LOG))
    try:
        record(result, log)
    except OSError as exc:
        print(f"labgen-lab trace: not recorded in {log}: {exc}", file=sys.stderr)
    return result.status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
