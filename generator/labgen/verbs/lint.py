"""`labgen lint`: everything that can be checked about a lab folder without a machine.

Every problem of a lab in one run, each as `file:line: ...`: the lab file against its
schema, every check tied to existing steps in order, the checks module imported as
`labgen check` would import it, and every step's command parsed by bash at its own
line of lab.yaml.
"""

from __future__ import annotations

import ast
import ipaddress
import json
import re
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from labgen.checks.reader import ChecksSyntaxError, scan_checks
from labgen.core.errors import UsageError
from labgen.core.lab import CHECKS_FILE, LAB_FILE, Lab, find_lab_dir, lab_folders, load_lab_dir
from labgen.core.results import LintReport
from labgen.machine import providers, recipe, render

# A checks module that takes longer than this to import is a problem of its own.
IMPORT_TIMEOUT = 60
# lab.yaml is read a second time (for what the schema could not give) only if small.
RAW_READ_LIMIT = 1 << 20


@dataclass(frozen=True)
class _RawStep:
    """What lab.yaml says of one step, read without the schema."""

    index: int
    id: str | None
    field: str  # the field that holds the command the machine runs: run, else command
    text: str
    node: yaml.ScalarNode


def lint_folders(labs: tuple[str, ...], labs_path: Sequence[Path], cwd: Path) -> list[Path]:
    """The folders `labgen lint` looks at: those named; else the lab in `cwd` when it is
    a lab folder (it holds lab.yaml); else every lab on the search path."""
    if labs:
        return [find_lab_dir(ref, labs_path) for ref in labs]
    if (cwd / LAB_FILE).is_file():
        return [cwd]
    return lab_folders(labs_path)


def lint_lab_dir(folder: Path) -> LintReport:
    """Every problem of the lab in `folder`; a lab that does not load is linted as far
    as its files allow (its checks, its commands), not only up to the first error."""
    problems: list[str] = []
    lab: Lab | None = None
    try:
        lab = load_lab_dir(folder)
    except UsageError as exc:
        problems += split_problems(exc.message)
    raw = _raw_steps(folder / LAB_FILE)
    if lab is not None:
        step_ids: list[str] | None = [s.id for s in lab.steps]
    elif raw is not None and all(s.id for s in raw):
        step_ids = [s.id for s in raw if s.id]
    else:
        step_ids = None  # unknown: a check's step cannot be judged

    checks_file = folder / CHECKS_FILE
    if checks_file.is_file():
        problems += _checks_problems(checks_file, step_ids)

    shell = _command_problems(folder / LAB_FILE, raw or [])
    problems += shell + _network_problems(folder / LAB_FILE, raw or [])
    if lab is not None:
        problems += _render_problems(lab, skip_steps=bool(shell))
    return LintReport(folder, _in_file_order(problems))


def split_problems(message: str) -> list[str]:
    """The problems in an error's message: one per line that starts at the margin, each
    with the indented lines under it (the source lines a YAML error shows).

    >>> split_problems("a.yaml:3: one\\na.yaml:9:2: two\\n    9 | x: [\\n      |    ^ here")
    ['a.yaml:3: one', 'a.yaml:9:2: two\\n    9 | x: [\\n      |    ^ here']
    """
    problems: list[str] = []
    for line in message.splitlines():
        if problems and line[:1].isspace():
            problems[-1] += "\n" + line
        elif line.strip():
            problems.append(line)
    return problems


_WHERE = re.compile(r"^(?P<file>[^:]+?)(?::(?P<line>\d+))?:")


def _in_file_order(problems: list[str]) -> list[str]:
    """Each problem once, lab.yaml's first, then by file and line."""

    def key(problem: str) -> tuple[bool, str, int]:
        match = _WHERE.match(problem)
        if match is None:
            return (True, "", 0)
        name = match["file"]
        return (not name.endswith(LAB_FILE), name, int(match["line"] or 0))

    return sorted(dict.fromkeys(problems), key=key)


# --- checks.py ------------------------------------------------------------------------


def _checks_problems(checks_file: Path, step_ids: list[str] | None) -> list[str]:
    """Markers (read with ast), their order, and whether the module imports."""
    try:
        checks, problems = scan_checks(checks_file, step_ids)
    except ChecksSyntaxError as exc:
        return [exc.message]  # importing it would only say the same
    except UsageError as exc:
        return [exc.message]
    if not checks and not problems:
        problems.append(f"{checks_file}: no checks; a lab proves its steps with checks")
    if step_ids is not None:
        order = list(step_ids)
        for check in checks:
            if check.until is not None and order.index(check.until) <= order.index(check.step):
                problems.append(
                    f"{checks_file}:{check.line}: check {check.name}: until={check.until!r} "
                    f"must name a step after {check.step!r}"
                )
    return problems + module_problems(checks_file) + import_problems(checks_file)


# Modules the standard library of Python 3.13 no longer has (PEP 594, and distutils,
# imp, lib2to3): this Python may still import them, the machines of the newer engines
# (Python 3.13 on trixie, 3.14 on sid) cannot.
REMOVED_BY_3_13 = frozenset(
    [
        "aifc",
        "asynchat",
        "asyncore",
        "audioop",
        "cgi",
        "cgitb",
        "chunk",
        "crypt",
        "distutils",
        "imghdr",
        "imp",
        "lib2to3",
        "mailcap",
        "msilib",
        "nis",
        "nntplib",
        "ossaudiodev",
        "pipes",
        "smtpd",
        "sndhdr",
        "spwd",
        "sunau",
        "telnetlib",
        "uu",
        "xdrlib",
    ]
)
# What checks.py may import of labgen: what the machine has of it (lab/labgen/).
LABGEN_MODULES = frozenset({"labgen.checklib"})


def allowed_import(module: str) -> bool:
    """Whether a lab machine's python3 can import `module` for a lab's checks: the
    standard library, the modules of the recipe's Debian packages (testinfra, pytest),
    and labgen.checklib.

    >>> [allowed_import(m) for m in ("os.path", "testinfra", "labgen.checklib", "requests")]
    [True, True, True, False]
    >>> [allowed_import(m) for m in ("labgen.verbs.lint", "telnetlib", "_pytest.fixtures")]
    [False, False, True]
    """
    top = module.split(".")[0]
    if top == "labgen":
        return any(module == m or module.startswith(m + ".") for m in LABGEN_MODULES)
    if top in REMOVED_BY_3_13:
        return False
    return top in sys.stdlib_module_names or top in recipe.machine_python_modules()


def module_problems(checks_file: Path) -> list[str]:
    """Every import in `checks_file` that the lab machine's python3 lacks, at its line:
    this Python may have it (lint would import it fine) while the machine has not."""
    try:
        tree = ast.parse(checks_file.read_text(encoding="utf-8"), filename=str(checks_file))
    except (OSError, UnicodeDecodeError, SyntaxError):
        return []  # scan_checks has said so
    problems = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Import | ast.ImportFrom):
            continue
        for module in _imported(node):
            if not allowed_import(module):
                problems.append(
                    f"{checks_file}:{node.lineno}: imports {module}, which the lab machine's "
                    f"python3 does not have{_why_missing(module)}: checks may import the "
                    "standard library, testinfra, pytest and labgen.checklib"
                )
    return problems


def _imported(node: ast.Import | ast.ImportFrom) -> list[str]:
    """The modules an import statement names (`from labgen import checklib` names
    labgen.checklib: a module of a package may be what is imported)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:
        return ["." * node.level + (node.module or "")]  # a lab's checks are one file
    base = node.module or ""
    if base == "labgen":
        return [f"labgen.{alias.name}" for alias in node.names]
    return [base]


def _why_missing(module: str) -> str:
    top = module.split(".")[0]
    if module.startswith("."):
        return " (a relative import: only checks.py is copied into the machine)"
    if top in REMOVED_BY_3_13:
        return " (removed from the standard library by Python 3.13)"
    if top == "labgen":
        return " (only labgen.checklib is copied into the machine)"
    return " (it is not in the standard library nor in the machine's Debian packages)"


# Run in a child Python: import checks.py the way pytest's importlib mode does (no
# folder added to sys.path), and say where in it the import failed.
_IMPORT_SCRIPT = """
import importlib.util, json, sys, traceback
path = sys.argv[1]
try:
    spec = importlib.util.spec_from_file_location("labgen_lint_checks", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
except BaseException as exc:
    line = None
    if isinstance(exc, SyntaxError) and exc.filename == path:
        line = exc.lineno
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename == path:
            line = frame.lineno
    what = traceback.format_exception_only(type(exc), exc)[-1].strip()
    print(json.dumps({"line": line, "error": what}))
    sys.exit(3)
"""


def import_problems(checks_file: Path) -> list[str]:
    """Import `checks_file` in a child process (as `labgen check` will, with this
    Python and its labgen); the error and the line of checks.py it came from."""
    with tempfile.TemporaryDirectory(prefix="labgen-lint-") as tmp:
        try:
            proc = subprocess.run(
                [sys.executable, "-c", _IMPORT_SCRIPT, str(checks_file.resolve())],
                capture_output=True,
                text=True,
                cwd=tmp,  # nothing of the caller's folder on sys.path
                timeout=IMPORT_TIMEOUT,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            return [f"{checks_file}: importing it took more than {IMPORT_TIMEOUT} s"]
    if proc.returncode == 0:
        return []
    try:
        found = json.loads(proc.stdout.strip().splitlines()[-1])
        line, error = found["line"], found["error"]
    except (IndexError, ValueError, KeyError, TypeError):
        line, error = None, (proc.stderr.strip().splitlines() or ["no message"])[-1]
    where = f"{checks_file}:{line}" if line else f"{checks_file}"
    return [f"{where}: the checks do not import, so none would run: {error}"]


# --- the steps' commands ----------------------------------------------------------------


def _raw_steps(lab_file: Path) -> list[_RawStep] | None:
    """Each step's id and command as lab.yaml has them, with their YAML nodes (None
    when the file cannot be read as YAML at all)."""
    try:
        if lab_file.stat().st_size > RAW_READ_LIMIT:
            return None
        tree = yaml.compose(lab_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    steps_node = _child(tree, "steps")
    if not isinstance(steps_node, yaml.SequenceNode):
        return None
    found = []
    for index, node in enumerate(steps_node.value):
        id_node = _child(node, "id")
        step_id = id_node.value if isinstance(id_node, yaml.ScalarNode) else None
        for field in ("run", "command"):
            value = _child(node, field)
            if isinstance(value, yaml.ScalarNode):
                found.append(_RawStep(index, step_id, field, value.value, value))
                break
    return found


def _child(node: yaml.Node | None, key: str) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.value == key:
                return v
    return None


_BASH_LINE = re.compile(r"^bash: (?:-c: )?line (\d+): (.*)$")


def _command_problems(lab_file: Path, steps: list[_RawStep]) -> list[str]:
    """bash -n on the command each step runs, each error at its line of lab.yaml."""
    problems = []
    for step in steps:
        if not step.text.strip():
            continue  # blank: the schema says so
        proc = subprocess.run(
            ["bash", "-n"], input=step.text, capture_output=True, text=True, timeout=30
        )
        if proc.returncode == 0:
            continue
        messages: list[str] = []
        line = _yaml_line(step.node, 1)
        for text in proc.stderr.strip().splitlines():
            match = _BASH_LINE.match(text)
            if match:
                if not messages:
                    line = _yaml_line(step.node, int(match.group(1)))
                messages.append(match.group(2))
            elif text.strip():
                messages.append(text.strip())
        problems.append(
            f"{lab_file}:{line}: field 'steps[{step.index}].{step.field}': "
            f"not valid bash: {'; '.join(messages)}"
        )
    return problems


_IPV4 = re.compile(r"(?<![\d.])(\d{1,3}(?:\.\d{1,3}){3})(/\d{1,2})?(?![\d.])")


def _network_problems(lab_file: Path, steps: list[_RawStep]) -> list[str]:
    """Addresses in a step's command inside a provider's machine networks: a lab's own
    network there takes the machine's way back to the host (its SSH hangs)."""
    reserved = [(p.name, n) for p in providers.all_providers() for n in p.machine_networks()]
    problems = []
    for step in steps:
        for number, text in enumerate(step.text.splitlines(), start=1):
            for match in _IPV4.finditer(text):
                try:
                    net = ipaddress.ip_network("".join(filter(None, match.groups())), strict=False)
                except ValueError:
                    continue  # not an address (a version number, say)
                for provider, pool in reserved:
                    if net.overlaps(pool):
                        problems.append(
                            f"{lab_file}:{_yaml_line(step.node, number)}: field "
                            f"'steps[{step.index}].{step.field}': {match.group(0)} is in "
                            f"{pool}, where the {provider} provider's machines have their "
                            "own addresses: pick another range (10.x.0.0/24, say)"
                        )
    return problems


def _yaml_line(node: yaml.ScalarNode, command_line: int) -> int:
    """The 1-based line of lab.yaml holding line `command_line` of a scalar's text."""
    command_line = max(1, min(command_line, len(node.value.splitlines())))
    if node.style in ("|", ">"):
        # The text starts on the line after the `|` indicator.
        return node.start_mark.line + 1 + command_line
    return node.start_mark.line + 1 + (command_line - 1 if node.style is None else 0)


# --- what labgen renders from the lab ---------------------------------------------------


def _render_problems(lab: Lab, skip_steps: bool) -> list[str]:
    """Render the lab as `labgen up` would and let the shells parse every script
    (the step scripts too, unless their commands were already found not to parse)."""
    settings = {
        p.name: p.settings(lab.name, live=False, others=()) for p in providers.all_providers()
    }
    problems = []
    with tempfile.TemporaryDirectory(prefix="labgen-lint-") as tmp:
        target = Path(tmp)
        try:
            render.render_instance(lab, lab.name, settings, "ssh-ed25519 AAAA lint", target)
        except Exception as exc:  # a template error is the lab's problem to see, not a crash
            return [f"{lab.path / LAB_FILE}: rendering failed: {exc}"]
        scripts = [("sh", target / "provision.sh"), ("bash", target / "lab" / "labgen-lab")]
        if not skip_steps:
            scripts += [("bash", p) for p in sorted((target / "lab" / "steps").glob("*.sh"))]
        for shell, script in scripts:
            proc = subprocess.run([shell, "-n", str(script)], capture_output=True, text=True)
            if proc.returncode != 0:
                step = script.stem if script.suffix == ".sh" else None
                what = f"step {step!r}: its script" if step else script.name
                detail = proc.stderr.strip().replace(str(script), script.name)
                problems.append(f"{lab.path / LAB_FILE}: {what} is not valid {shell}: {detail}")
    return problems
