"""Running a lab's testinfra checks against its machine over SSH (paramiko, sudo)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from labgen.core.errors import MachineError
from labgen.core.lab import Lab
from labgen.core.results import CheckResult, CheckRun

# pytest's exit statuses that mean the checks ran: all passed, some failed, none selected.
_RAN = (0, 1, 5)


def run_checks(
    lab: Lab,
    ssh_config: Path,
    target: str | None = None,
    only: bool = False,
    engine: str | None = None,
) -> CheckRun:
    """Run the checks that hold after step `target` (default: the lab's last step).

    pytest runs in a child process: testinfra caches its connections per process,
    and a lab's checks must not share state with labgen itself. A checks module that
    does not import, or a pytest that stops early, is a problem of the run (never
    "no checks apply").
    """
    target = target or lab.steps[-1].id
    lab.step(target)  # an unknown step is a usage error, before anything runs
    with tempfile.TemporaryDirectory(prefix="labgen-check-") as tmp:
        report = Path(tmp) / "report.json"
        cmd = [
            sys.executable,
            "-m",
            "pytest",
            str(lab.checks_file),
            "-p",
            "labgen.inmachine.pytest_plugin",
            f"--labgen-report={report}",
            f"--labgen-order={','.join(s.id for s in lab.steps)}",
            f"--labgen-target={target}",
            *(["--labgen-only"] if only else []),
            f"--labgen-engine={engine or lab.spec.engine}",
            "--hosts=paramiko://default",
            f"--ssh-config={ssh_config}",
            "--sudo",
            # Isolated from whatever pytest configuration the user's cwd holds.
            "-c",
            os.devnull,
            f"--rootdir={lab.path}",
            # No conftest.py from the folders above the lab (a repository's tests/):
            # they are not the lab's and may not even import here.
            f"--confcutdir={lab.path}",
            "--import-mode=importlib",
            "-p",
            "no:cacheprovider",
            "-q",
            "--tb=short",
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp)
        if not report.is_file():
            raise MachineError(
                f"the checks of lab {lab.name!r} did not run (pytest exit {proc.returncode}):\n"
                + (proc.stdout + proc.stderr)[-3000:]
            )
        data = json.loads(report.read_text(encoding="utf-8"))
    results = [
        CheckResult(
            name=r["name"],
            title=r["title"],
            step=r["step"],
            outcome=r["outcome"],
            message=r["message"],
            duration=r["duration"],
        )
        for r in data["results"]
    ]
    order = {step.id: i for i, step in enumerate(lab.steps)}
    results.sort(key=lambda r: order.get(r.step or "", -1))
    problems = [f"{lab.checks_file}: {e}" for e in data.get("errors", [])]
    if proc.returncode not in _RAN and not problems:
        tail = (proc.stdout + proc.stderr).strip()[-2000:]
        problems.append(f"the checks stopped early (pytest exit {proc.returncode}): {tail}")
    return CheckRun(lab.name, target, only, results, problems)
