"""`labgen lint`: everything that can be checked about a lab folder without a machine."""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .. import providers, render
from ..checkdoc import read_checks
from ..errors import UsageError
from ..lab import Lab, load_lab_dir


@dataclass(frozen=True)
class LintReport:
    """The problems of one lab folder (empty when it is fine)."""

    path: Path
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


def lint_lab_dir(folder: Path) -> LintReport:
    """Schema, checks tied to existing steps in order, and scripts that render and parse."""
    try:
        lab = load_lab_dir(folder)
    except UsageError as exc:
        return LintReport(folder, exc.message.splitlines())
    problems: list[str] = []
    try:
        checks = read_checks(lab)
    except UsageError as exc:
        return LintReport(folder, [exc.message])
    order = [s.id for s in lab.steps]
    if not checks:
        problems.append(f"{lab.checks_file}: no checks; a lab proves its steps with checks")
    for check in checks:
        if check.until is not None and order.index(check.until) <= order.index(check.step):
            problems.append(
                f"{lab.checks_file}:{check.line}: check {check.name}: until={check.until!r} "
                f"must name a step after {check.step!r}"
            )
    problems += _render_problems(lab)
    return LintReport(folder, problems)


def _render_problems(lab: Lab) -> list[str]:
    """Render the lab as `labgen up` would and let the shells parse every script."""
    settings = {
        p.name: p.settings(lab.name, live=False, others=()) for p in providers.all_providers()
    }
    problems = []
    with tempfile.TemporaryDirectory(prefix="labgen-lint-") as tmp:
        target = Path(tmp)
        try:
            render.render_instance(lab, lab.name, settings, "ssh-ed25519 AAAA lint", target)
        except Exception as exc:  # a template error is the lab's problem to see, not a crash
            return [f"{lab.path}: rendering failed: {exc}"]
        scripts = [("sh", target / "provision.sh"), ("bash", target / "lab" / "labgen-lab")]
        scripts += [("bash", p) for p in sorted((target / "lab" / "steps").glob("*.sh"))]
        for shell, script in scripts:
            proc = subprocess.run([shell, "-n", str(script)], capture_output=True, text=True)
            if proc.returncode != 0:
                where = script.relative_to(target)
                step = script.stem if script.suffix == ".sh" else None
                what = f"step {step!r}: its command" if step else str(where)
                problems.append(
                    f"{lab.path / 'lab.yaml'}: {what} is not valid {shell}: {proc.stderr.strip()}"
                )
    return problems
