#!/usr/bin/env python3
"""The warm pool's figures for this machine: prints them, asserts nothing.

    python bench/pool.py [--rounds N] [--lab LAB] [--verify]

In one run, alternating round by round so that the machine's load falls on all three:
- `pool fill -n 1`: the time to make one pooled machine;
- `labgen up LAB` claiming that pooled machine (command to "Machine LAB is up");
- `labgen up LAB` with the pool empty (a fresh machine);
- a raw `vagrant up` of the same rendered Vagrantfile;
then their medians and ratios, and what one pooled machine costs (memory, as Docker's
stats see the container with its tmpfs, and disk: its writable layer); a workshop seat's
reset with a spare in the pool (to the seat's ready event, and to the old machine gone).
With --verify: `verify --all --engine all -j 2`, its runs' machines made ahead in the
pool (the default) against `--no-ahead`, both from an empty pool. --rounds 0 skips the
rounds of up.

Runs in a labgen home of its own and destroys every machine it makes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench import labgen, raw_vagrant_round  # noqa: E402  (the sibling script's helpers)


def median(values: list[float]) -> str:
    return f"median {statistics.median(values):6.2f} s  of {[round(v, 2) for v in values]}"


def pooled_cost(env: dict[str, str]) -> str:
    """Memory and disk of the one pooled machine there is now."""
    home_tag = subprocess.run(
        [sys.executable, "-c", "from labgen.core import resources; print(resources.home_tag())"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    label = ["--filter", f"label=org.labgen.home={home_tag}"]
    names = subprocess.run(
        ["docker", "ps", *label, "--format", "{{.Names}}"], capture_output=True, text=True
    ).stdout.split()
    if not names:
        return "no pooled machine to measure"
    memory = subprocess.run(
        ["docker", "stats", "--no-stream", "--format", "{{.MemUsage}}", names[0]],
        capture_output=True,
        text=True,
    ).stdout.strip()
    size = subprocess.run(
        ["docker", "ps", *label, "--size", "--format", "{{.Size}}"], capture_output=True, text=True
    ).stdout.split("\n")[0]
    return f"memory {memory}; disk (writable layer) {size}"


def reset_round(env: dict[str, str]) -> tuple[float, float]:
    """A one-seat workshop with one spare: the reset's time to the seat's ready event
    (what the grid shows), and to the end (the old machine destroyed behind it)."""
    import time

    from labgen.core import resources
    from labgen.core.context import Context
    from labgen.workshop import seats

    os.environ["LABGEN_HOME"] = env["LABGEN_HOME"]
    labgen("workshop", "up", "bridge", "--name", "bench", "--seats", "1", "--spares", "1", env=env)
    started = time.monotonic()
    ready: list[float] = []

    def report(event: seats.SeatEvent) -> None:
        if event.state == seats.READY:
            ready.append(time.monotonic() - started)

    lab_path = str(resources.labs_dir() / "bridge")
    seats.reset_seat(Context(), lab_path, "bench-01", report)
    done = time.monotonic() - started
    labgen("workshop", "down", "bench", env=env)
    labgen("pool", "drain", env=env)
    return ready[0], done


def up_rounds(env: dict[str, str], lab: str, rounds: int) -> None:
    """The fill, claim, fresh and raw rounds, their medians and ratios; resets."""
    fills, claims, fresh, raws = [], [], [], []
    cost = ""
    for _ in range(rounds):
        fills.append(labgen("pool", "fill", "-n", "1", env=env))
        cost = cost or pooled_cost(env)
        claims.append(labgen("up", lab, env=env))
        labgen("destroy", lab, env=env)
        fresh.append(labgen("up", lab, env=env))
        labgen("destroy", lab, env=env)
        raws.append(raw_vagrant_round(env))
    print(f"pool fill -n 1           {median(fills)}")
    print(f"up, claimed from pool    {median(claims)}")
    print(f"up, fresh machine        {median(fresh)}")
    print(f"raw vagrant up           {median(raws)}")
    claim_med, fresh_med = statistics.median(claims), statistics.median(fresh)
    raw_med = statistics.median(raws)
    print(f"ratio claimed/fresh      {claim_med / fresh_med:6.2f}")
    print(f"ratio claimed/raw        {claim_med / raw_med:6.2f}")
    print(f"ratio fresh/raw          {fresh_med / raw_med:6.2f}")
    print(f"one pooled machine       {cost}")
    resets = [reset_round(env) for _ in range(rounds)]
    print(f"workshop reset, ready    {median([r[0] for r in resets])}")
    print(f"workshop reset, all done {median([r[1] for r in resets])}  (old one destroyed)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds of each kind of up (0: none)")
    parser.add_argument("--lab", default="port-forwarding")
    parser.add_argument("--verify", action="store_true", help="also time the verify matrix")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="labgen-bench-pool-"))
    env = dict(os.environ, LABGEN_HOME=str(home), VAGRANT_CHECKPOINT_DISABLE="1")
    try:
        labgen("box", "build", env=env)  # not timed: built once per recipe
        print(f"machine: {os.cpu_count()} cores; lab: {args.lab}; rounds: {args.rounds}")
        if args.rounds > 0:
            up_rounds(env, args.lab, args.rounds)
        if args.verify:
            labgen("box", "build", "--engine", "all", env=env)
            matrix = ["verify", "--all", "--engine", "all", "-j", "2"]
            cold = labgen(*matrix, "--no-ahead", env=env)
            ahead = labgen(*matrix, env=env)
            print(f"verify matrix, no pool      {cold:6.1f} s")
            print(f"verify matrix, filled ahead {ahead:6.1f} s  (ratio {ahead / cold:.2f})")
    finally:
        subprocess.run(
            [sys.executable, "-m", "labgen", "destroy", "--all", "--yes"],
            env=env,
            capture_output=True,
        )
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
