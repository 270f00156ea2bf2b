#!/usr/bin/env python3
"""labgen's benchmark: prints figures for this machine, asserts nothing.

    python bench/bench.py [--rounds N] [--skip-verify]

- wall time of `labgen verify --all`, sequential and with -j 2;
- every lab's phases: up, run --all, check, destroy;
- `labgen up` against a raw `vagrant up` of the same rendered Vagrantfile, measured
  alternately in one run (median of N rounds each, and their ratio);
- how many times labgen calls the Vagrant CLI per up and per check.

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
import time
from pathlib import Path

LAB = "port-forwarding"


def sh(*cmd: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> float:
    """Run a command, fail loudly, return its wall time in seconds."""
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"bench: {' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
    return time.monotonic() - started


def labgen(*args: str, env: dict[str, str]) -> float:
    return sh(sys.executable, "-m", "labgen", *args, env=env)


def labs() -> list[str]:
    from labgen.core.lab import iter_labs

    return [lab.name for lab in iter_labs()]


def vagrant_shim(folder: Path, log: Path) -> str:
    """A `vagrant` ahead on PATH that logs each call, then runs the real one."""
    real = shutil.which("vagrant")
    if real is None:
        sys.exit("bench: vagrant is not installed")
    shim = folder / "vagrant"
    shim.write_text(f'#!/bin/sh\necho "$1" >> "{log}"\nexec "{real}" "$@"\n')
    shim.chmod(0o755)
    return str(folder)


def calls(log: Path) -> list[str]:
    return log.read_text().split() if log.exists() else []


def raw_vagrant_round(env: dict[str, str]) -> float:
    """Render the lab as labgen does, then time a plain `vagrant up` there."""
    from labgen.core.lab import load_lab
    from labgen.machine import providers, render

    os.environ["LABGEN_HOME"] = env["LABGEN_HOME"]
    lab = load_lab(LAB)
    with tempfile.TemporaryDirectory(prefix="bench-raw-") as tmp:
        folder = Path(tmp)
        settings = {
            p.name: p.settings("bench-raw", live=p.name == "docker", others=())
            for p in providers.all_providers()
        }
        key = render.write_keypair(folder, "bench-raw")
        render.render_instance(lab, "bench-raw", settings, key, folder)
        try:
            took = sh("vagrant", "up", "--provider=docker", cwd=folder, env=env)
        finally:
            subprocess.run(["vagrant", "destroy", "-f"], cwd=folder, env=env, capture_output=True)
            network = settings["docker"].network
            subprocess.run(["docker", "network", "rm", network], capture_output=True)
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds of up vs raw vagrant up")
    parser.add_argument("--skip-verify", action="store_true", help="skip verify --all timings")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="labgen-bench-"))
    shim_dir = home / "bin"
    shim_dir.mkdir()
    log = home / "vagrant-calls.log"
    env = dict(os.environ, LABGEN_HOME=str(home), VAGRANT_CHECKPOINT_DISABLE="1")
    env["PATH"] = vagrant_shim(shim_dir, log) + os.pathsep + env["PATH"]
    try:
        labgen("box", "build", env=env)  # not timed: built once per recipe
        print(f"machine: {os.cpu_count()} cores; lab: {LAB}; rounds: {args.rounds}")

        ups, raws = [], []
        for _ in range(args.rounds):
            ups.append(labgen("up", LAB, env=env))
            labgen("destroy", LAB, env=env)
            raws.append(raw_vagrant_round(env))
        up_med, raw_med = statistics.median(ups), statistics.median(raws)
        print(f"labgen up (warm box)     median {up_med:6.1f} s  of {[round(x, 1) for x in ups]}")
        print(f"raw vagrant up           median {raw_med:6.1f} s  of {[round(x, 1) for x in raws]}")
        print(f"ratio labgen/raw         {up_med / raw_med:6.2f}")

        print(f"{'lab':<16} {'up':>6} {'run --all':>10} {'check':>6} {'destroy':>8}   (s)")
        for lab in labs():
            log.unlink(missing_ok=True)
            up = labgen("up", lab, env=env)
            up_calls = calls(log)
            run = labgen("run", lab, "--all", env=env)
            log.unlink(missing_ok=True)
            check = labgen("check", lab, env=env)
            check_calls = calls(log)
            destroy = labgen("destroy", lab, env=env)
            print(f"{lab:<16} {up:6.1f} {run:10.1f} {check:6.1f} {destroy:8.1f}")
        print(f"vagrant CLI calls per up:    {len(up_calls)} ({', '.join(up_calls)})")
        print(f"vagrant CLI calls per check: {len(check_calls)}")

        if not args.skip_verify:
            sequential = labgen("verify", "--all", env=env)
            parallel = labgen("verify", "--all", "-j", "2", env=env)
            print(f"verify --all             {sequential:6.1f} s")
            print(
                f"verify --all -j 2        {parallel:6.1f} s  (ratio {parallel / sequential:.2f})"
            )
    finally:
        subprocess.run(
            [sys.executable, "-m", "labgen", "destroy", "--all"], env=env, capture_output=True
        )
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
