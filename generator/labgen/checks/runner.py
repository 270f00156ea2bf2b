"""Running a lab's testinfra checks against its machine over SSH (paramiko, sudo)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from labgen.core.lab import Lab
from labgen.core.results import CheckResult, CheckRun

# pytest's exit statuses (pytest.ExitCode), as numbers: the plugin's pytest may be older.
_ALL_PASSED, _SOME_FAILED, _NONE_COLLECTED = 0, 1, 5


def run_checks(
    lab: Lab,
    ssh_config: Path,
    target: str | None = None,
    only: bool = False,
    engine: str | None = None,
    ending: bool = False,
) -> CheckRun:
    """Run the checks that hold after step `target` (default: the lab's last step);
    `ending` adds those whose `until` is `target` (each result says its until).

    pytest runs in a child process: testinfra caches its connections per process,
    and a lab's checks must not share state with labgen itself. A checks module that
    does not import, a pytest that stops early, a results file that is missing or
    does not parse, and a pytest exit status the results do not bear out are
    problems of the run (never "no checks apply", never a pass).
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
            *(["--labgen-ending"] if ending else []),
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
        output = (proc.stdout + proc.stderr).strip()
        read = _read_report(report)
    if isinstance(read, str):
        why = f"the checks of lab {lab.name!r} did not run (pytest exit {proc.returncode})"
        return CheckRun(lab.name, target, only, [], [f"{why}: {read}\n{output[-3000:]}"])
    results, errors = read
    order = {step.id: i for i, step in enumerate(lab.steps)}
    results.sort(key=lambda r: order.get(r.step or "", -1))
    problems = [f"{lab.checks_file}: {e}" for e in errors]
    if not problems:
        problems = _disagreement(proc.returncode, results, output)
    return CheckRun(lab.name, target, only, results, problems)


def _read_report(report: Path) -> tuple[list[CheckResult], list[str]] | str:
    """The plugin's results and collection errors, or why its report cannot be read."""
    try:
        data = json.loads(report.read_text(encoding="utf-8"))
        results = [
            CheckResult(
                name=str(r["name"]),
                title=str(r["title"]),
                step=None if r["step"] is None else str(r["step"]),
                until=None if r.get("until") is None else str(r["until"]),
                outcome=str(r["outcome"]),
                message=str(r["message"]),
                duration=float(r["duration"]),
            )
            for r in data["results"]
        ]
        errors = [str(e) for e in data.get("errors", [])]
    except FileNotFoundError:
        return "pytest wrote no results"
    # ValueError covers JSON that does not parse and text that is not UTF-8.
    except (OSError, ValueError, LookupError, TypeError, AttributeError) as exc:
        return f"its results file does not parse ({type(exc).__name__}: {exc})"
    return results, errors


def _disagreement(returncode: int, results: list[CheckResult], output: str) -> list[str]:
    """Why pytest's exit status and the recorded results cannot both be true (or [])."""
    tail = output[-2000:]
    failing = any(not r.ok for r in results)
    if returncode == _ALL_PASSED:
        return []
    if returncode == _SOME_FAILED:
        if failing:
            return []
        # pytest saw a failure the plugin did not record (a hook, a plugin, a
        # session fixture): the checks that passed do not make this state a pass.
        return [f"pytest failed but recorded no failing check (pytest exit 1): {tail}"]
    if returncode == _NONE_COLLECTED:
        if any(r.ok for r in results):
            return [f"pytest ran no check but recorded passing ones (pytest exit 5): {tail}"]
        # Nothing selected: the run's verdict is "nothing checked", never a pass.
        return []
    return [f"the checks stopped early (pytest exit {returncode}): {tail}"]
