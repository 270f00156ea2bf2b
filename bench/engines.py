#!/usr/bin/env python3
"""labgen's benchmark per Docker engine: prints figures for this machine, asserts nothing.

    python bench/engines.py [--rounds N] [--engines 20.10,26.1,28.5] [--no-build] [--no-verify]

For each engine: the base image's build time (--force; skipped with --no-build) and size,
`labgen up port-forwarding` (median of N rounds), and `labgen verify --all` on that engine,
sequential and with -j 2. Runs in a labgen home of its own and destroys what it makes.
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

LAB = "port-forwarding"


def labgen(*args: str, env: dict[str, str]) -> tuple[float, str]:
    """Run labgen, fail loudly; (wall time in seconds, stdout)."""
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "labgen", *args], env=env, capture_output=True, text=True
    )
    if proc.returncode != 0:
        sys.exit(f"bench: labgen {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return time.monotonic() - started, proc.stdout


def image_size(tag: str) -> str:
    out = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{.Size}}", tag],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return f"{int(out) / 1e6:.0f} MB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--engines", default="20.10,26.1,28.5")
    parser.add_argument("--no-build", action="store_true", help="do not time a forced build")
    parser.add_argument("--no-verify", action="store_true", help="skip the verify timings")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="labgen-bench-engines-"))
    env = dict(os.environ, LABGEN_HOME=str(home), VAGRANT_CHECKPOINT_DISABLE="1")
    print(f"machine: {os.cpu_count()} cores; lab: {LAB}; rounds: {args.rounds}")
    print(f"{'engine':<7} {'build':>7} {'size':>7} {'up median':>10} {'verify':>8} {'-j 2':>7}")
    try:
        for engine in args.engines.split(","):
            build_args = ["box", "build", "--engine", engine]
            built, out = labgen(*build_args, *([] if args.no_build else ["--force"]), env=env)
            tag = out.split()[0]
            ups = []
            for _ in range(args.rounds):
                ups.append(labgen("up", LAB, "--engine", engine, env=env)[0])
                labgen("destroy", LAB, env=env)
            verify = parallel = float("nan")
            if not args.no_verify:
                verify = labgen("verify", "--all", "--engine", engine, env=env)[0]
                parallel = labgen("verify", "--all", "--engine", engine, "-j", "2", env=env)[0]
            build = "-" if args.no_build else f"{built:.0f} s"
            rounds = json.dumps([round(u, 1) for u in ups])
            print(
                f"{engine:<7} {build:>7} {image_size(tag):>7} {statistics.median(ups):8.1f} s"
                f" {verify:6.0f} s {parallel:5.0f} s   ups {rounds}",
                flush=True,
            )
    finally:
        subprocess.run(
            [sys.executable, "-m", "labgen", "destroy", "--all", "--yes"],
            env=env,
            capture_output=True,
        )
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
