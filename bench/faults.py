#!/usr/bin/env python3
"""labgen's fault suite: prints what happened, asserts nothing.

    python bench/faults.py [--trials N]

For each trial, on real machines (docker provider, lab bridge), in a labgen home of its
own: SIGINT to `labgen up` after each of its progress moments, and at fixed delays;
`docker stop` and `docker kill` of the machine then `labgen up`; two `labgen up` at once;
an instance dir deleted by hand then `labgen destroy`. After each trial it counts what is
left of the machine (containers and networks by label, the instance dir, processes
working in the home) and prints a line; the summary says how many trials left anything.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LAB = "bridge"
MOMENTS = ["rendered ", "vagrant up --provider", "Container created", "Running provisioner"]


def labgen(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "labgen", *args], env=env, capture_output=True, text=True
    )


def left(home: Path, env: dict[str, str]) -> list[str]:
    """What is left of labgen's machines under `home` (after a trial's clean-up)."""
    os.environ["LABGEN_HOME"] = str(home)
    from labgen.core import resources

    label = f"label=org.labgen.home={resources.home_tag()}"
    found = []
    for ls in (["ps", "-a"], ["network", "ls"]):
        out = subprocess.run(
            ["docker", *ls, "-q", "--filter", label], capture_output=True, text=True
        ).stdout
        found += [f"{ls[0]} {x}" for x in out.split()]
    instances = home / "instances"
    found += [f"instance dir {p.name}" for p in instances.iterdir()] if instances.is_dir() else []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and os.readlink(proc / "cwd").startswith(str(home)):
                found.append(f"process {proc.name}")
        except OSError:
            continue
    return found


def interrupt(env: dict[str, str], moment: str | float) -> str:
    proc = subprocess.Popen(
        [sys.executable, "-m", "labgen", "up", LAB],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    if isinstance(moment, float):
        time.sleep(moment)
        proc.send_signal(signal.SIGINT)
    else:
        for line in proc.stderr:
            if moment in line:
                proc.send_signal(signal.SIGINT)
                break
    proc.stderr.read()
    return f"exit {proc.wait()}"


def restart(env: dict[str, str], how: str) -> str:
    from labgen.core import resources

    if labgen("up", LAB, env=env).returncode != 0:
        return "first up failed"
    subprocess.run(["docker", how, resources.machine_id(LAB)], capture_output=True)
    again = labgen("up", LAB, env=env)
    run = labgen("run", LAB, "--all", env=env)
    return f"up {again.returncode}, run --all {run.returncode}"


def race(env: dict[str, str]) -> str:
    cmd = [sys.executable, "-m", "labgen", "up", LAB]
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL) for _ in range(2)]  # fmt: skip
    return "exits " + ",".join(str(c) for c in sorted(p.wait() for p in procs))


def orphan(env: dict[str, str], home: Path) -> str:
    if labgen("up", LAB, env=env).returncode != 0:
        return "first up failed"
    shutil.rmtree(home / "instances" / LAB)
    status = labgen("status", env=env).stdout
    destroyed = labgen("destroy", LAB, env=env)
    return f"status shows orphan: {'orphan' in status}; destroy {destroyed.returncode}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1, help="rounds of every trial")
    args = parser.parse_args()
    leaks = trials = 0
    for _ in range(args.trials):
        cases: list[tuple[str, object]] = [(f"SIGINT after '{m.strip()}'", m) for m in MOMENTS]
        cases += [(f"SIGINT at {t} s", t) for t in (1.0, 3.0, 5.0, 7.0)]
        cases += [("docker stop, up", "stop"), ("docker kill, up", "kill")]
        cases += [("two ups at once", "race"), ("instance dir deleted", "orphan")]
        for name, how in cases:
            home = Path(tempfile.mkdtemp(prefix="labgen-faults-"))
            env = dict(os.environ, LABGEN_HOME=str(home), VAGRANT_CHECKPOINT_DISABLE="1")
            os.environ["LABGEN_HOME"] = str(home)
            started = time.monotonic()
            if how in ("stop", "kill"):
                outcome = restart(env, str(how))
            elif how == "race":
                outcome = race(env)
            elif how == "orphan":
                outcome = orphan(env, home)
            else:
                outcome = interrupt(env, how)  # type: ignore[arg-type]
            # What an interrupted up left must be gone before any clean-up of ours.
            interrupted = name.startswith("SIGINT") and outcome != "exit 0"
            leftover = left(home, env) if interrupted else []
            labgen("destroy", "--all", "--yes", env=env)
            leftover += left(home, env)
            trials += 1
            leaks += bool(leftover)
            took = time.monotonic() - started
            print(f"{name:<34} {outcome:<40} {took:5.1f} s  left: {leftover or 'nothing'}")
            shutil.rmtree(home, ignore_errors=True)
    print(f"{trials} trials, {leaks} left anything behind")


if __name__ == "__main__":
    main()
