"""The package's shape, as the code map in README.md promises it: no import cycles,
providers known only inside providers/, verbs one module each, modules a newcomer
can read in one sitting."""

from __future__ import annotations

import ast
import re
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
    assert "labgen.providers" in imports_of(PACKAGE / "verbs" / "up.py")
    assert "labgen.recipe" in imports_of(PACKAGE / "providers" / "docker.py")


@pytest.mark.parametrize("provider", ["libvirt", "virtualbox"])
def test_only_providers_name_a_provider(provider: str) -> None:
    """Outside providers/ (and its templates) no code knows the libvirt or virtualbox
    provider by name: adding a provider touches providers/ alone."""
    pattern = re.compile(rf"\b{provider}\b", re.IGNORECASE)
    named = [
        f"{path.relative_to(PACKAGE)}:{number}"
        for path in MODULES
        if "providers" not in path.relative_to(PACKAGE).parts
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if pattern.search(line)
    ]
    assert not named, f"{provider} named outside providers/: {named}"


def test_modules_stay_small() -> None:
    sizes = {str(p.relative_to(PACKAGE)): len(p.read_text().splitlines()) for p in MODULES}
    assert {m: n for m, n in sizes.items() if n > 400} == {}
    assert sizes["cli.py"] < 250


def test_ui_imports_no_verb() -> None:
    assert not {m for m in imports_of(PACKAGE / "ui.py") if m.startswith("labgen.verbs")}
