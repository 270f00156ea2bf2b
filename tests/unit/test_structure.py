"""The package's shape, as the code map in README.md promises it: no import cycles,
providers known only inside machine/providers/, verbs that never print, one ui package
that does, and the modules copied into lab machines standard library only."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import labgen
import pytest

PACKAGE = Path(labgen.__file__).resolve().parent
MODULES = sorted(p for p in PACKAGE.rglob("*.py") if "_data" not in p.parts)


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """The labgen modules `path` imports (relative or absolute, at any depth)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            candidates = [target, *(f"{target}.{alias.name}" for alias in node.names)]
        elif isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        else:
            continue
        known = {module_name(p) for p in MODULES}
        found |= {c for c in candidates if c in known and c != name}
    return found


def test_the_package_is_labgen_and_ships_no_generator_module() -> None:
    assert PACKAGE.name == "labgen"
    assert not (PACKAGE.parent / "generator" / "__init__.py").exists()


def test_no_module_imports_itself_through_a_cycle() -> None:
    graph = {module_name(p): imports_of(p) for p in MODULES}
    # A package's __init__ importing its own submodules is not a cycle of ideas.
    for name, deps in graph.items():
        graph[name] = {d for d in deps if not name.startswith(d + ".")}

    def cycle_from(start: str) -> list[str] | None:
        stack = [(start, [start])]
        while stack:
            node, path = stack.pop()
            for dep in graph.get(node, ()):
                if dep == start:
                    return [*path, dep]
                if dep not in path:
                    stack.append((dep, [*path, dep]))
        return None

    cycles = [c for c in (cycle_from(n) for n in graph) if c]
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_the_cycle_finder_finds_a_cycle(tmp_path: Path) -> None:
    """The control: imports_of sees both kinds of import the cycle test relies on."""
    assert "labgen.machine.providers" in imports_of(PACKAGE / "verbs" / "up.py")
    assert "labgen.machine.recipe" in imports_of(PACKAGE / "machine" / "providers" / "docker.py")


@pytest.mark.parametrize("provider", ["libvirt", "virtualbox"])
def test_only_providers_name_a_provider(provider: str) -> None:
    """Outside providers/ (and its templates) no code knows the libvirt or virtualbox
    provider by name: adding a provider touches providers/ alone. The hosts registry
    is the one exception: a host's URL says which daemon answers there (Docker over
    ssh://, libvirtd over qemu+ssh://), and that is the transport, not a provider's code."""
    pattern = re.compile(rf"\b{provider}\b", re.IGNORECASE)
    exempt = {"providers", "hosts"}
    named = [
        f"{path.relative_to(PACKAGE)}:{number}"
        for path in MODULES
        if not exempt & set(path.relative_to(PACKAGE).parts)
        and path.relative_to(PACKAGE).parts != ("cli", "hosts.py")
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if pattern.search(line)
    ]
    assert not named, f"{provider} named outside providers/: {named}"


def test_ui_imports_no_verb() -> None:
    ui_modules = [p for p in MODULES if p.relative_to(PACKAGE).parts[0] == "ui"]
    assert ui_modules
    for path in ui_modules:
        assert not {m for m in imports_of(path) if m.startswith("labgen.verbs")}, path


PRINTERS = ("labgen.ui", "rich")


def prints(path: Path) -> list[str]:
    """Where `path` prints: a call of print(), or an import of rich or of labgen.ui."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print":
            found.append(f"print() at line {node.lineno}")
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            if (node.module or "").startswith(PRINTERS):
                found.append(f"imports {node.module} at line {node.lineno}")
        elif isinstance(node, ast.Import):
            found += [f"imports {a.name}" for a in node.names if a.name.startswith(PRINTERS)]
    return found


@pytest.mark.parametrize(
    "folder", ["verbs", "core", "machine", "checks", "network", "docs", "workshop"]
)
def test_only_ui_and_the_command_line_print(folder: str) -> None:
    """Verbs return records; ui/ prints them. Nothing else reaches for a terminal (the
    workshop's server, cli/ and the in-machine modules have screens of their own)."""
    leaks = {
        str(p.relative_to(PACKAGE)): prints(p)
        for p in MODULES
        if p.relative_to(PACKAGE).parts[0] == folder and prints(p)
    }
    assert leaks == {}


def test_the_print_finder_finds_printing() -> None:
    """The control: ui/printers.py prints through rich, so the finder must see it."""
    assert prints(PACKAGE / "ui" / "printers.py")


IN_MACHINE = PACKAGE / "inmachine"
# Debian's python3 in the machine, plus its python3-pytest and python3-testinfra.
MACHINE_PACKAGES = {"pytest", "_pytest", "testinfra"}


@pytest.mark.parametrize("path", sorted(IN_MACHINE.glob("*.py")), ids=lambda p: p.name)
def test_in_machine_modules_import_only_the_standard_library(path: Path) -> None:
    """What machine/render.py copies into the machine imports only the standard
    library, Debian's pytest and testinfra, and its siblings (relative imports)."""
    outside = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module or ""]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        top = {n.split(".")[0] for n in names}
        outside |= top - set(sys.stdlib_module_names) - MACHINE_PACKAGES - {"__future__"}
    assert outside == set()


def test_in_machine_modules_import_from_the_shipped_folder(tmp_path: Path) -> None:
    """Copied as a machine gets them (lab/labgen/), each imports with `python -S`: no
    site-packages, so nothing of the host's labgen or its dependencies. pytest_plugin
    also needs pytest, which it is given from behind the shipped folder."""
    from labgen.machine import render

    shipped = tmp_path / "labgen"
    shipped.mkdir()
    for module in render.in_machine_modules():
        shutil.copy(module, shipped / module.name)
    names = [p.stem for p in render.in_machine_modules() if p.stem != "__init__"]
    assert {"checklib", "pytest_plugin", "selection", "trace", "trace_run", "trace_lab"} <= set(
        names
    )
    for name in names:
        path = [str(tmp_path)]
        if name == "pytest_plugin":
            path.append(str(Path(pytest.__file__).resolve().parent.parent))
        proc = subprocess.run(
            [sys.executable, "-S", "-c", f"import labgen.{name} as m; print(m.__file__)"],
            env={"PYTHONPATH": os.pathsep.join(path), "PATH": os.environ["PATH"]},
            capture_output=True,
            text=True,
            cwd=tmp_path,
        )
        assert proc.returncode == 0, f"labgen.{name}: {proc.stderr}"
        assert proc.stdout.strip() == str(shipped / f"{name}.py")


def test_labs_keep_importing_labgen_checklib() -> None:
    from labgen import checklib
    from labgen.inmachine import checklib as shipped

    assert checklib.rules is shipped.rules
    assert set(shipped.__all__) <= set(dir(checklib))


def readme_code_map() -> dict[str, str]:
    """README.md's code map: each `folder/` entry of the package and the text under it."""
    # The repository's README, beside tests/ (the package may be an installed wheel).
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    block = readme.split("<!-- code map -->", 2)[1]
    entries: dict[str, str] = {}
    current = None
    for line in block.splitlines():
        if re.match(r"^[a-z_]+/|^[a-z_]+\.py", line):
            current = line.split()[0]
            entries[current] = line
        elif current and line.startswith(" "):
            entries[current] += " " + line.strip()
    return entries


def test_the_readme_code_map_names_every_folder_and_module() -> None:
    entries = readme_code_map()
    folders = sorted(
        p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file() and p.name != "_data"
    )
    assert sorted(e.rstrip("/") for e in entries if e.endswith("/")) == folders
    for folder in folders:
        text = entries[folder + "/"]
        modules = sorted(p for p in (PACKAGE / folder).rglob("*.py") if p.stem != "__init__")
        missing = [p.name for p in modules if p.stem not in text]
        assert missing == [], f"README's code map says nothing of {folder}/{missing}"
