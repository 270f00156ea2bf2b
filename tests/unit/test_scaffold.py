"""`labgen new`: the scaffold, docs/writing-labs.md and `labgen schema` say one thing.

The scaffold passes lint as made, names `engine` and `engines` in the form the schema
gives (not the legacy mapping lint still reads), and keeps its one check red until the
author writes it (tests/e2e/test_checklib.py has verify say so on a machine).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import labgen, show
from labgen.core.errors import UsageError
from labgen.core.lab import LabSpec
from labgen.machine import recipe
from labgen.verbs.lint import lint_lab_dir
from labgen.verbs.new import new_lab

REPO = Path(__file__).resolve().parents[2]
SCHEMA = LabSpec.model_json_schema()


def schema_problems(raw: dict[str, Any]) -> list[str]:
    """Where lab.yaml's top level strays from the schema: an unknown key, or an engine
    field whose YAML value is not of the schema's type and pattern."""
    props = SCHEMA["properties"]
    problems = [f"{key}: not in the schema" for key in raw if key not in props]
    engine_pattern = props["engine"]["pattern"]
    if not (isinstance(raw.get("engine"), str) and re.fullmatch(engine_pattern, raw["engine"])):
        problems.append(f"engine: {raw.get('engine')!r} is not a string like '20.10'")
    engines = raw.get("engines")
    item_pattern = props["engines"]["items"]["pattern"]
    if not isinstance(engines, list) or not all(
        isinstance(e, str) and re.fullmatch(item_pattern, e) for e in engines
    ):
        problems.append(f"engines: {engines!r} is not a list of strings like '20.10'")
    return problems


def test_the_schema_checker_sees_the_legacy_engine_form() -> None:
    """The control: the form the old scaffold wrote is what schema_problems refuses."""
    legacy = {"name": "x", "engine": {"package": "docker.io", "version": "20.10"}}
    assert schema_problems(legacy) == [
        "engine: {'package': 'docker.io', 'version': '20.10'} is not a string like '20.10'",
        "engines: None is not a list of strings like '20.10'",
    ]


def test_a_new_lab_passes_lint_with_engine_and_engines_as_the_schema_has_them(
    tmp_path: Path,
) -> None:
    folder = new_lab("my-first-lab", tmp_path)
    report = lint_lab_dir(folder)
    assert report.ok, report.problems
    raw = yaml.safe_load((folder / "lab.yaml").read_text(encoding="utf-8"))
    assert schema_problems(raw) == []
    assert raw["name"] == "my-first-lab"
    assert raw["engine"] == recipe.engine(None)
    # `--engine all` verifies on every engine the lab names: the scaffold names them all.
    assert raw["engines"] == recipe.engines()


def test_writing_labs_shows_lab_yaml_as_the_schema_has_it() -> None:
    text = (REPO / "docs" / "writing-labs.md").read_text(encoding="utf-8")
    example = re.search(r"## lab.yaml\n\n```yaml\n(.*?)\n```", text, re.DOTALL)
    assert example, "docs/writing-labs.md has no lab.yaml example under ## lab.yaml"
    raw = yaml.safe_load(example.group(1))
    assert schema_problems(raw) == []
    assert set(raw["engines"]) <= set(recipe.engines())


def test_the_new_labs_check_is_red_until_written(tmp_path: Path) -> None:
    """Its check ends in pytest.fail, after an example that fails before the step: red
    after the step, never vacuous before it (the e2e test shows verify's report)."""
    checks = (new_lab("demo", tmp_path) / "checks.py").read_text(encoding="utf-8")
    body = checks.split("def test_", 1)[1]
    assert body.rstrip().splitlines()[-1].strip().startswith("pytest.fail(NOT_WRITTEN")
    assert 'container_ip(host, "demo") is not None' in body


def test_new_refuses_an_existing_folder_and_a_bad_name(tmp_path: Path) -> None:
    new_lab("taken", tmp_path)
    with pytest.raises(UsageError, match="already exists; choose another name or folder"):
        new_lab("taken", tmp_path)
    proc = labgen("new", "Bad_Name", "--dir", str(tmp_path))
    assert proc.returncode == 2, show(proc)
    assert "Bad_Name" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "Bad_Name").exists()
