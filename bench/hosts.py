#!/usr/bin/env python3
"""Simulated hosts' figures: prints them, asserts nothing.

    python bench/hosts.py [--rounds N] [--engine E]

- time to make a sim host ready (container up, dockerd and sshd answering over ssh://);
- push_image of the engine's base image into it: MB and seconds (docker save | ssh docker
  load), median of N rounds.

Runs in a labgen home of its own; every sim host it makes is removed, even on Ctrl-C.
The make/remove logic lives in tests/simhost_lib.py (also the e2e fixture's), so the
seat figures added here later reuse `make_sim_hosts`/`remove_sim_hosts`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import simhost_lib  # noqa: E402


def make_sim_hosts(names: list[str], keys: Path, engine: str | None) -> list[simhost_lib.SimHost]:
    """Sim hosts called `names`, each with `engine`'s base image pushed; on failure the
    ones already made are removed before raising."""
    key = simhost_lib.make_key(keys)
    made: list[simhost_lib.SimHost] = []
    try:
        for name in names:
            made.append(simhost_lib.make(name, key, engine=engine))
    except BaseException:
        remove_sim_hosts(made)
        raise
    return made


def remove_sim_hosts(sims: list[simhost_lib.SimHost]) -> None:
    """Remove every sim host in `sims` (each tried even when one fails)."""
    for sim in sims:
        simhost_lib.remove(sim)


def main() -> None:
    """Make and remove a sim host N times; print setup and push medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--engine", default=None, help="the base image to push (default engine)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="labgen-bench-hosts-") as scratch:
        os.environ["LABGEN_HOME"] = str(Path(scratch) / "home")
        setup, push_s, push_mb = [], [], []
        for round_no in range(args.rounds):
            sims = make_sim_hosts([f"bench-{round_no}"], Path(scratch) / "keys", args.engine)
            try:
                sim = sims[0]
                assert sim.push is not None
                ready = sim.setup_seconds - sim.push.seconds
                setup.append(ready)
                push_s.append(sim.push.seconds)
                push_mb.append(sim.push.megabytes)
                print(f"round {round_no + 1}: ready {ready:.1f} s, push {sim.push.megabytes} MB "
                      f"in {sim.push.seconds} s")  # fmt: skip
            finally:
                remove_sim_hosts(sims)
    print(f"sim host ready: median {statistics.median(setup):.1f} s over {args.rounds}")
    rate = statistics.median(m / s for m, s in zip(push_mb, push_s, strict=True))
    print(
        f"push_image: median {statistics.median(push_mb):.1f} MB in "
        f"{statistics.median(push_s):.1f} s ({rate:.0f} MB/s)"
    )


if __name__ == "__main__":
    main()
