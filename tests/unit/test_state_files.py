"""A state file labgen reads back (a machine's instance.json, a workshop's record) whose
fields have the wrong types is refused, exit 2, naming the file and the field, before
anything acts on it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from labgen.core import resources
from labgen.core.errors import UsageError
from labgen.machine.instance import Instance, InstanceState
from labgen.workshop import room as rooms
from unit_helpers import REPO, Outcome, invoke_labgen

LAB = "port-forwarding"


def assert_refused(result: Outcome, *patterns: str) -> None:
    """Exit 2, no traceback, and stderr matching every pattern."""
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    assert result.returncode == 2, f"exit {result.returncode}:\n{output}"
    for pattern in patterns:
        assert re.search(pattern, result.stderr, re.DOTALL), f"{pattern!r} not in:\n{output}"


def state_of(name: str) -> dict[str, object]:
    """What `labgen up` writes for machine `name`, before Vagrant runs."""
    return {
        "instance": name,
        "lab": LAB,
        "lab_path": str(REPO / "labs" / LAB),
        "provider": "docker",
        "render_digest": "0" * 64,
        "created": "2024-01-01T00:00:00+00:00",
    }


def write_state(name: str, data: dict[str, object]) -> Path:
    path = resources.instances_dir() / name / "instance.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("field", "value"),
    [("steps_run", "start-server"), ("host", ["port", 2222]), ("lab", 7)],
)
def test_a_state_field_of_the_wrong_type_is_a_usage_error(
    labgen_home: Path, field: str, value: object
) -> None:
    path = write_state("bad", {**state_of("bad"), field: value})
    result = invoke_labgen("check", "bad")
    assert_refused(result, re.escape(str(path)), rf"field '{field}'")


def test_a_wrong_item_is_named_by_its_place(labgen_home: Path) -> None:
    write_state("bad", {**state_of("bad"), "steps_run": ["start-server", 2]})
    with pytest.raises(UsageError, match=r"field 'steps_run\[1\]': Input should be a valid string"):
        Instance("bad").load()


def test_a_good_state_file_loads_as_before(labgen_home: Path) -> None:
    write_state("good", {**state_of("good"), "steps_run": ["start-server"]})
    assert Instance("good").load() == InstanceState(**state_of("good"), steps_run=["start-server"])


def test_a_state_without_a_host_is_a_machine_of_this_host(labgen_home: Path) -> None:
    """State files written before machines on other hosts: on_host "" (this machine),
    which never asks the host registry; a wrong type is refused like any field."""
    write_state("old", state_of("old"))
    assert Instance("old").load().on_host == ""
    write_state("bad", {**state_of("bad"), "on_host": 3})
    with pytest.raises(UsageError, match=r"field 'on_host'"):
        Instance("bad").load()


def test_a_workshop_record_of_the_wrong_type_is_a_usage_error(labgen_home: Path) -> None:
    room = rooms.create("pf", LAB, str(REPO / "labs" / LAB), 2)
    record = json.loads(room.path.read_text(encoding="utf-8"))
    room.path.write_text(json.dumps({**record, "seats": "pf-01"}), encoding="utf-8")
    result = invoke_labgen("workshop", "down", "pf")
    assert_refused(result, re.escape(str(room.path)), r"field 'seats'")
