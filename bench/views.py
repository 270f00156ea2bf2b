#!/usr/bin/env python3
"""Figures for `labgen trace` and `labgen draw` on this machine; asserts nothing.

    python bench/views.py [--rounds N]

- time to trace a request to the machine's eth0 address on port-forwarding (whole CLI
  call, and the command's own time; the trace includes a 1 s idle interval);
- the same with --packets;
- the same with --kernel (bpftrace started, attached and stopped around the command:
  the walk's cost beside the counters');
- time and size to draw netns after its last step, as SVG and as PNG.

Runs in a labgen home of its own and destroys every machine it makes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ETH0 = "$(ip -4 -br addr show dev eth0 | awk '{print $3}' | cut -d/ -f1)"


def labgen(*args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    began = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "labgen", *args], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise SystemExit(f"labgen {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return time.monotonic() - began, proc


def median(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} s (min {min(values):.2f}, max {max(values):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    rounds = parser.parse_args().rounds
    home = Path(tempfile.mkdtemp(prefix="labgen-bench-views-"))
    os.environ["LABGEN_HOME"] = str(home)
    os.environ["VAGRANT_CHECKPOINT_DISABLE"] = "1"
    try:
        labgen("up", "port-forwarding")
        labgen("run", "port-forwarding", "nat-baseline", "publish-port")
        for packets in ([], ["--packets"]):
            walls, own = [], []
            for _ in range(rounds):
                wall, proc = labgen(
                    "trace",
                    "port-forwarding",
                    "--json",
                    *packets,
                    "--",
                    f"curl -s -o /dev/null http://{ETH0}:5000",
                )
                walls.append(wall)
                own.append(json.loads(proc.stdout)["seconds"])
            label = "trace --packets" if packets else "trace"
            print(f"{label} eth0 request: {median(walls)}; the command itself {median(own)}")
        kernel = []
        for _ in range(rounds):
            wall, proc = labgen(
                "trace",
                "port-forwarding",
                "--kernel",
                "--json",
                "--",
                f"curl -s -o /dev/null http://{ETH0}:5000",
            )
            if not json.loads(proc.stdout)["flows"]:  # a walk of nothing is no figure
                raise SystemExit(f"trace --kernel walked no connection:\n{proc.stdout}")
            kernel.append(wall)
        print(f"trace --kernel eth0 request: {median(kernel)}")
        labgen("up", "netns")
        labgen("run", "netns", "--all")
        out = home / "pictures"
        out.mkdir()
        for fmt in ("svg", "png"):
            walls, size = [], 0
            for n in range(rounds):
                file = out / f"netns-{n}.{fmt}"
                wall, _ = labgen("draw", "netns", "-o", str(file))
                walls.append(wall)
                size = file.stat().st_size
            print(f"draw netns after its steps, {fmt}: {median(walls)}; {size:,} bytes")
    finally:
        subprocess.run(
            [sys.executable, "-m", "labgen", "destroy", "--all"], check=False, capture_output=True
        )
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
