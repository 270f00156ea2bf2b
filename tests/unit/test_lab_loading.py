"""Loading and validating labs: every broken lab folder gives a UsageError that a lab
author can act on without reading labgen's code: the file, the line, the field and
the reason.

The broken labs live in tests/unit/broken_labs/<case>/. Each is a valid lab with one
defect; the line the error must point at carries a `# <- error` comment, so the
expected line is read from the fixture instead of being written down twice.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from labgen.core import resources
from labgen.core.errors import EXIT_USAGE, UsageError
from labgen.core.lab import load_lab, load_lab_dir
from labgen.verbs.lint import lint_lab_dir
from unit_helpers import BROKEN_LABS, REPO, bundled_lab_names, run_labgen

MARKER = "# <- error"


@dataclass(frozen=True)
class Broken:
    folder: str
    field: str | tuple[str, ...] | None  # the field the message must name (any of a tuple)
    reason: str  # a regular expression the message must match (case-insensitive)
    file: str = "lab.yaml"  # the file the message must name


CASES = [
    Broken("unknown-field", "steps[1].comand", r"unknown field"),
    Broken("missing-field", "steps[1].title", r"missing"),
    Broken("missing-top-field", "engine", r"missing"),
    Broken("blank-command", "steps[1].command", r"blank"),
    Broken("blank-run", "steps[0].run", r"blank"),
    # Regression: the duplicate is reported as field '(top level)' on line 2.
    Broken("duplicate-step-id", "steps[2].id", r"'second'.*(twice|duplicate|more than once)"),
    Broken("uppercase-step-id", "steps[1].id", r"pattern|lowercase"),
    Broken("slash-step-id", "steps[1].id", r"pattern|lowercase"),
    Broken("leading-dash-step-id", "steps[1].id", r"pattern|lowercase"),
    Broken("name-mismatch", "name", r"'some-other-lab'.*folder.*'name-mismatch'"),
    Broken("unknown-image", "images[1]", r"'nginx:1\.25'.*no offline substitute"),
    Broken("invalid-yaml", None, r"not valid YAML"),
    Broken("top-level-list", None, r"expected a mapping"),
    Broken("top-level-scalar", None, r"expected a mapping"),
    Broken("empty-file", None, r"expected a mapping"),
    Broken("missing-checks", None, r"missing", file="checks.py"),
    # Flow style: the list and the item share a line, so either name will do.
    Broken("port-out-of-range", ("ports", "ports[1]"), r"70000.*(1-65535|port)"),
    # Regression: reported as field 'ports' on the line of `ports:`, not the item.
    Broken("port-zero", "ports[0]", r"\b0\b.*(1-65535|port)|greater than"),
    Broken("port-not-a-number", "ports[1]", r"integer"),
    # Regression: `true` is silently taken as port 1.
    Broken("port-boolean", "ports[1]", r"integer|bool"),
    Broken("no-steps", "steps", r"at least 1"),
    # Regression: the lab loads, then every verb refuses its name.
    Broken("trailing-dash-", "name", r"pattern|dash|lowercase"),
    # Regression: PyYAML keeps the last `run` and drops the first silently.
    Broken(
        "duplicate-key",
        None,  # the YAML layer finds it, so any wording naming the key will do
        r"\brun\b.*(duplicate|twice|more than once)|(duplicate|twice|more than once).*\brun\b",
    ),
]


def marked_line(lab_file: Path) -> int | None:
    for number, line in enumerate(lab_file.read_text(encoding="utf-8").splitlines(), start=1):
        if MARKER in line:
            return number
    return None


def names_field(text: str, field: str) -> bool:
    """`field` appears as a whole field path (`ports` does not match `ports[0]`)."""
    return re.search(rf"(?<![\w.\[]){re.escape(field)}(?![\w\[])", text) is not None


def names_line(text: str, lab_file: Path, line: int) -> bool:
    """`path:LINE:` as every other lab error says it, or PyYAML's `line LINE`."""
    return f"{lab_file}:{line}:" in text or re.search(rf"\bline {line}\b", text) is not None


def test_every_broken_lab_folder_has_a_case() -> None:
    folders = sorted(p.name for p in BROKEN_LABS.iterdir() if p.is_dir())
    assert folders == sorted(case.folder for case in CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.folder for c in CASES])
def test_broken_lab_is_a_usage_error_naming_file_line_field_and_reason(case: Broken) -> None:
    folder = BROKEN_LABS / case.folder
    with pytest.raises(UsageError) as caught:
        load_lab_dir(folder)
    error = caught.value
    message = error.message
    assert error.exit_code == EXIT_USAGE

    named_file = folder / case.file
    assert str(named_file) in message, f"message does not name {named_file}:\n{message}"
    assert re.search(case.reason, message, re.IGNORECASE | re.DOTALL), message

    line = marked_line(folder / "lab.yaml") if case.file == "lab.yaml" else None
    if case.field is None:
        if line is not None:
            assert names_line(message, named_file, line), f"line {line} not named:\n{message}"
        return
    # The field and its line are named together, on one line of the message.
    fields = case.field if isinstance(case.field, tuple) else (case.field,)
    about_field = [
        text for text in message.splitlines() if any(names_field(text, f) for f in fields)
    ]
    assert about_field, f"field {case.field!r} not named:\n{message}"
    assert line is not None, f"fixture {folder} lacks its {MARKER!r} comment"
    assert any(names_line(text, named_file, line) for text in about_field), (
        f"field {case.field!r} not tied to line {line}:\n{message}"
    )


def test_unknown_image_hint_points_at_a_file_that_exists() -> None:
    """The message says where a checkout adds an image recipe; that file exists there, and
    the installed package's copy (site-packages in a wheel) is never named."""
    from labgen.machine.recipe import RECIPE_FILE

    with pytest.raises(UsageError) as caught:
        load_lab_dir(BROKEN_LABS / "unknown-image")
    message = caught.value.message
    match = re.search(r"an entry under images: in (\S+) of a labgen source checkout", message)
    assert match, message
    assert (REPO / match.group(1)).is_file(), f"the hint names {match.group(1)}, not a file"
    assert str(RECIPE_FILE) not in message and "site-packages" not in message


def test_known_images_in_the_message_are_the_box_recipes() -> None:
    from labgen.machine.recipe import known_images

    with pytest.raises(UsageError) as caught:
        load_lab_dir(BROKEN_LABS / "unknown-image")
    for image in known_images():
        assert image in caught.value.message


def test_the_broken_labs_skeleton_is_valid(tmp_path: Path) -> None:
    """Control: the lab every broken case starts from loads once given its checks."""
    folder = tmp_path / "missing-checks"
    shutil.copytree(BROKEN_LABS / "missing-checks", folder)
    shutil.copy(BROKEN_LABS / "unknown-field" / "checks.py", folder / "checks.py")
    lab = load_lab_dir(folder)
    assert [s.id for s in lab.steps] == ["first"]
    assert lab.path == folder.resolve()


def test_a_lab_file_that_cannot_be_read_names_it(tmp_path: Path) -> None:
    folder = tmp_path / "nolab"
    folder.mkdir()
    with pytest.raises(UsageError) as caught:
        load_lab_dir(folder)
    assert str(folder / "lab.yaml") in caught.value.message


@pytest.mark.parametrize("name", bundled_lab_names())
def test_bundled_lab_loads(name: str) -> None:
    lab = load_lab(name)
    raw = yaml.safe_load((REPO / "labs" / name / "lab.yaml").read_text(encoding="utf-8"))
    assert lab.name == name == raw["name"]
    # The installed labgen's own copy (its wheel's _data, or this checkout when editable),
    # the same files as the repository's.
    assert lab.path == (resources.labs_dir() / name).resolve()
    for file in ("lab.yaml", "checks.py"):
        assert (lab.path / file).read_bytes() == (REPO / "labs" / name / file).read_bytes()
    assert lab.checks_file.is_file()
    assert [s.id for s in lab.steps] == [s["id"] for s in raw["steps"]]
    assert len({s.id for s in lab.steps}) == len(lab.steps)


def test_bundled_labs_are_found_by_name_and_by_path() -> None:
    assert bundled_lab_names(), "no bundled labs found"
    for name in bundled_lab_names():
        by_path = load_lab(str(REPO / "labs" / name))
        assert by_path.path == (REPO / "labs" / name).resolve()
        assert by_path.spec == load_lab(name).spec


def test_unknown_lab_lists_the_labs_there_are() -> None:
    with pytest.raises(UsageError) as caught:
        load_lab("no-such-lab")
    message = caught.value.message
    assert "no-such-lab" in message
    for name in bundled_lab_names():
        assert name in message


@pytest.mark.parametrize("ref", ["./no-such-folder", "/", "Bad_Name", "-rf"])
def test_bad_lab_references_are_usage_errors(ref: str) -> None:
    with pytest.raises(UsageError) as caught:
        load_lab(ref)
    assert ref in caught.value.message


def test_labs_path_lab_is_found_and_shadows_a_bundled_one(tmp_path: Path) -> None:
    name = bundled_lab_names()[0]
    extra = tmp_path / "extra"
    shutil.copytree(REPO / "labs" / name, extra / name)
    lab_file = extra / name / "lab.yaml"
    data = yaml.safe_load(lab_file.read_text(encoding="utf-8"))
    data["title"] = "A local copy that wins over the bundled lab"
    lab_file.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    lab = load_lab(name, [extra])
    assert lab.path == (extra / name).resolve()
    assert lab.title == data["title"]
    # As a user sets it: $LABGEN_LABS_PATH, or --labs.
    for listing in (
        run_labgen("list", env={"LABGEN_LABS_PATH": str(extra)}),
        run_labgen("list", "--labs", str(extra)),
    ):
        assert listing.returncode == 0, listing.stderr
        assert data["title"] in listing.stdout


def test_unknown_step_lists_the_steps() -> None:
    lab = load_lab(bundled_lab_names()[0])
    with pytest.raises(UsageError) as caught:
        lab.step("no-such-step")
    for step in lab.steps:
        assert step.id in caught.value.message
    assert lab.step_index(lab.steps[-1].id) == len(lab.steps) - 1


def test_robot_command_defaults_to_the_documented_command() -> None:
    for name in bundled_lab_names():
        for step in load_lab(name).steps:
            expected = step.run if step.run is not None else step.command
            assert step.robot_command == expected


def test_labgen_lint_rejects_every_broken_lab_folder() -> None:
    """`labgen lint` on all the broken folders at once: exit 2, each folder failed with
    a message that names its file, no traceback; the bundled labs still pass."""
    folders = [str(BROKEN_LABS / case.folder) for case in CASES]
    outcome = run_labgen("lint", *folders, str(REPO / "labs" / "port-forwarding"))
    assert outcome.returncode == EXIT_USAGE, outcome
    assert "Traceback" not in outcome.stdout + outcome.stderr
    lines = outcome.stdout.splitlines()
    for case in CASES:
        folder = BROKEN_LABS / case.folder
        assert f"fail {folder}" in [" ".join(line.split()) for line in lines], outcome.stdout
        assert str(folder / case.file) in outcome.stdout
    assert f"ok {REPO / 'labs' / 'port-forwarding'}" in [" ".join(x.split()) for x in lines]


def write_lab(folder: Path, extra: str, step_extra: str = "") -> Path:
    folder.mkdir(parents=True)
    (folder / "checks.py").write_text("", encoding="utf-8")
    (folder / "lab.yaml").write_text(
        f"name: {folder.name}\ntitle: T\nsummary: S\n{extra}\nsteps:\n"
        f"  - id: one\n    title: One\n    explain: E\n    command: 'true'\n{step_extra}",
        encoding="utf-8",
    )
    return folder


def test_engines_default_first_and_legacy_form(tmp_path: Path) -> None:
    lab = load_lab_dir(write_lab(tmp_path / "eng", 'engine: "28.5"\nengines: ["20.10", "28.5"]'))
    assert lab.engines == ["28.5", "20.10"]
    legacy = load_lab_dir(write_lab(tmp_path / "old", 'engine: {version: "26.1"}'))
    assert legacy.engines == ["26.1"]


@pytest.mark.parametrize(
    "extra, step_extra, field, line",
    [
        ('engine: "19.03"', "", "engine", 4),
        ('engine: "20.10"\nengines: ["20.10", "27.0"]', "", "engines[1]", 5),
        ('engine: "20.10"', '    notes: {"29.0": "x"}\n', "steps[0].notes.29.0", 10),
        ('engine: "20.10"', '    not_on: {"1.0": "x"}\n', "steps[0].not_on.1.0", 10),
        ("engine: 28.5", "", "engine", 4),  # a YAML float, not an engine name
    ],
)
def test_unknown_engines_are_named_with_file_line_and_field(
    tmp_path: Path, extra: str, step_extra: str, field: str, line: int
) -> None:
    folder = write_lab(tmp_path / "bad", extra, step_extra)
    with pytest.raises(UsageError) as caught:
        load_lab_dir(folder)
    message = caught.value.message
    assert f"lab.yaml:{line}: field '{field}'" in message, message
    assert caught.value.exit_code == EXIT_USAGE


def test_bundled_labs_name_each_engine_they_are_verified_on() -> None:
    for name in bundled_lab_names():
        assert load_lab(name).engines == ["20.10", "26.1", "28.5"], name


@pytest.mark.parametrize(
    "damage, message",
    [
        (
            lambda d: ((d / "checks.py").unlink(), (d / "checks.py").symlink_to("/etc/shadow")),
            r"checks\.py: a symbolic link",
        ),
        (lambda d: (d / "lab.yaml").write_bytes(b"name: x\xff\n"), r"lab\.yaml:1: not UTF-8"),
        (lambda d: (d / "checks.py").write_bytes(b"# \xe9t\xe9\n"), r"checks\.py:1: not UTF-8"),
        (
            lambda d: (d / "lab.yaml").write_text(
                (d / "lab.yaml").read_text().replace("title: T", "title: \x1b[31mred")
            ),
            r"lab\.yaml:2: control character '\\x1b'",
        ),
        (
            lambda d: (d / "checks.py").write_bytes(b"#" * (1024 * 1024 + 1)),
            r"checks\.py: 1048577 bytes; a lab file may have at most 1 MiB",
        ),
    ],
    ids=["symlink-out", "lab-not-utf8", "checks-not-utf8", "ansi-escape", "too-big"],
)
def test_lab_files_are_plain_text_inside_the_folder(
    tmp_path: Path, damage: object, message: str
) -> None:
    """Regression: a symlink to /etc/shadow was copied onto the machine; bytes that are not
    UTF-8 gave a traceback; escapes in a title reached the terminal; a 200 MB file took
    two minutes to lint. Each is now a usage error naming the file (and line)."""
    folder = write_lab(tmp_path / "lab", 'engine: "20.10"')
    (folder / "checks.py").unlink()
    (folder / "checks.py").write_text("", encoding="utf-8")
    damage(folder)  # type: ignore[operator]
    with pytest.raises(UsageError) as caught:
        load_lab_dir(folder)
    assert re.search(message, caught.value.message), caught.value.message
    listing = run_labgen("list", "--labs", str(tmp_path))
    assert listing.returncode == 2 and "Traceback" not in listing.stderr, listing.stderr
    assert re.search(message, listing.stderr), listing.stderr


def test_markup_in_a_title_is_printed_as_written(tmp_path: Path) -> None:
    folder = write_lab(tmp_path / "markup", 'engine: "20.10"')
    text = (folder / "lab.yaml").read_text().replace("title: T", "title: '[/bold] x [red]y'")
    (folder / "lab.yaml").write_text(text)
    listing = run_labgen("list", "--labs", str(tmp_path))
    assert listing.returncode == 0, listing.stderr
    assert "[/bold] x [red]y" in listing.stdout


def test_an_unwritable_labgen_home_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = run_labgen("up", "bridge", env={"LABGEN_HOME": str(blocker / "home")})
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "labgen cannot write to" in result.stderr and "LABGEN_HOME" in result.stderr


def test_lint_refuses_a_lab_network_inside_the_machines_own(tmp_path: Path) -> None:
    """A lab's network in 172.30.0.0/16, where the docker provider's machines live, took
    the machine's way back to the host: its SSH hung mid-step. Lint names line and field."""
    lab = tmp_path / "user-bridge"
    shutil.copytree(REPO / "tests" / "e2e" / "labs" / "user-bridge", lab)
    text = (lab / "lab.yaml").read_text(encoding="utf-8")
    (lab / "lab.yaml").write_text(text.replace("10.30.0.", "172.30.0."), encoding="utf-8")
    problems = lint_lab_dir(lab).problems
    assert any(
        ":27: field 'steps[0].run': 172.30.0.0/24 is in 172.30.0.0/16" in p for p in problems
    ), problems
    assert lint_lab_dir(REPO / "tests" / "e2e" / "labs" / "user-bridge").problems == []
