"""The `labgen` command line, as a user meets it: exit statuses, messages, --help.

Most cases run the CLI in this process through click's CliRunner (an exception
escaping it counts as the traceback a user would see); a representative set runs
the real thing in a child process. The fake machine tools of conftest.py are
first on PATH: none of these commands may get as far as Vagrant or Docker, and
none may leave an instance directory behind.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
import yaml
from click.testing import CliRunner
from labgen.cli import main as cli
from labgen.core import resources
from labgen.machine import providers
from labgen.machine.instance import Instance, InstanceState
from unit_helpers import (
    BROKEN_LABS,
    REPO,
    Outcome,
    bundled_lab_names,
    instances_left,
    invoke_labgen,
    run_labgen,
)

LAB = "port-forwarding"


def assert_usage_error(result: Outcome, *patterns: str) -> str:
    """Exit 2, no traceback, nothing on stdout, and stderr matching every pattern."""
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    assert result.returncode == 2, f"exit {result.returncode}:\n{output}"
    assert result.stdout == "", f"an error printed on stdout:\n{result.stdout}"
    for pattern in patterns:
        assert re.search(pattern, result.stderr, re.IGNORECASE | re.DOTALL), (
            f"{pattern!r} not in stderr:\n{result.stderr}"
        )
    return result.stderr


# --- labgen up: every bad input is refused before anything is created ---------


def test_up_unknown_lab(labgen_home: Path) -> None:
    result = invoke_labgen("up", "no-such-lab")
    err = assert_usage_error(result, r"unknown lab .*no-such-lab")
    for name in bundled_lab_names():  # it says what there is instead
        assert name in err
    assert instances_left(labgen_home) == []


@pytest.mark.parametrize("case", ["blank-command", "duplicate-step-id", "unknown-image"])
def test_up_broken_lab_folder(labgen_home: Path, case: str) -> None:
    folder = BROKEN_LABS / case
    result = invoke_labgen("up", str(folder))
    assert_usage_error(result, re.escape(str(folder / "lab.yaml")) + r":\d+:")
    assert instances_left(labgen_home) == []


def test_up_relative_path_to_a_broken_lab(labgen_home: Path) -> None:
    result = invoke_labgen("up", "./blank-command", cwd=BROKEN_LABS)
    assert_usage_error(result, r"blank-command/lab\.yaml:\d+: field 'steps\[1\]\.command'")
    assert instances_left(labgen_home) == []


@pytest.mark.parametrize("ref", ["./no-such-folder", str(REPO / "docs")])
def test_up_path_that_is_not_a_lab_folder(labgen_home: Path, ref: str) -> None:
    result = invoke_labgen("up", ref)
    assert_usage_error(result, re.escape(ref) + r".*not a lab folder")
    assert instances_left(labgen_home) == []


@pytest.mark.parametrize(
    "name",
    [
        "../x",
        "-rf",
        "x/y",
        "Upper",
        "a" * 41,
        "ends-with-dash-",
        "x\n",  # Regression: validate_name lets a trailing newline through
        "",  # Regression: an empty --name silently becomes the lab's name
    ],
    ids=["dotdot", "dash-rf", "slash", "upper", "too-long", "trailing-dash", "newline", "empty"],
)
def test_up_bad_instance_name(labgen_home: Path, name: str) -> None:
    result = invoke_labgen("up", LAB, f"--name={name}")
    assert_usage_error(result, r"invalid instance name", re.escape(repr(name)))
    assert instances_left(labgen_home) == []


def test_up_unknown_provider(labgen_home: Path) -> None:
    result = invoke_labgen("up", LAB, "--provider", "hyperv")
    err = assert_usage_error(result, r"'hyperv' is not one of")
    for name in providers.names():  # it says which it knows
        assert name in err
    assert instances_left(labgen_home) == []


def test_up_unknown_provider_from_the_environment(labgen_home: Path) -> None:
    result = invoke_labgen("up", LAB, env={"LABGEN_PROVIDER": "parallels"})
    assert_usage_error(result, r"LABGEN_PROVIDER.*'parallels' is not one of")
    assert instances_left(labgen_home) == []


def test_up_unknown_lab_with_a_broken_lab_on_the_labs_path(labgen_home: Path) -> None:
    """A half-written lab in LABGEN_LABS_PATH must not hide what was asked.

    Regression: find_lab_dir lists the known labs with iter_labs, which
    raises the first broken lab's error instead of "unknown lab".
    """
    result = invoke_labgen("up", "no-such-lab", env={"LABGEN_LABS_PATH": str(BROKEN_LABS)})
    assert_usage_error(result, r"unknown lab .*no-such-lab")
    assert instances_left(labgen_home) == []


# --- verbs on machines that do not exist ------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["check", "nosuch"],
        ["check", "nosuch", "--step", "curl", "--only"],
        ["run", "nosuch", "--all"],
        ["run", "nosuch", "curl"],
        ["ssh", "nosuch"],
        ["destroy", "nosuch"],
    ],
    ids=" ".join,
)
def test_verb_on_a_machine_that_does_not_exist(labgen_home: Path, args: list[str]) -> None:
    result = invoke_labgen(*args)
    assert_usage_error(result, r"no lab machine called 'nosuch'")
    assert instances_left(labgen_home) == []


def test_destroy_refuses_everything_when_one_name_is_unknown(labgen_home: Path) -> None:
    make_instance("kept")
    result = invoke_labgen("destroy", "kept", "nosuch")
    assert_usage_error(result, r"nosuch")
    assert instances_left(labgen_home) == ["kept"]


@pytest.mark.parametrize(
    "args", [["destroy", "../x"], ["check", "--", "-x-"], ["ssh", "a/b"]], ids=" ".join
)
def test_verb_with_a_bad_machine_name(labgen_home: Path, args: list[str]) -> None:
    result = invoke_labgen(*args)
    assert_usage_error(result, r"invalid .*name", re.escape(args[-1]))


# --- click usage errors -------------------------------------------------------------


@pytest.mark.parametrize(
    "args, pattern",
    [
        (["check", "x", "--only"], r"--only needs --step"),
        (["destroy"], r"name the machines .*--all"),
        (["destroy", "x", "--all"], r"not both"),
        (["up"], r"missing argument 'LAB'"),
        (["nosuchverb"], r"no such command"),
        (["up", LAB, "--nosuchoption"], r"no such option"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else None,
)
def test_usage_errors(labgen_home: Path, args: list[str], pattern: str) -> None:
    result = invoke_labgen(*args)
    err = assert_usage_error(result, pattern)
    assert "Usage: labgen" in err  # click shows how the verb is used
    assert instances_left(labgen_home) == []


# --- verbs that need no machine -------------------------------------------------------


def test_list_shows_each_lab_with_its_title() -> None:
    result = run_labgen("list")  # a child process: the table's width is set at import
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    for name in bundled_lab_names():
        raw = yaml.safe_load((REPO / "labs" / name / "lab.yaml").read_text(encoding="utf-8"))
        row = [line for line in lines if line.split()[:1] == [name]]
        assert row, f"{name} not listed:\n{result.stdout}"
        assert raw["title"] in " ".join(row[0].split()), row[0]
        assert str(len(raw["steps"])) in row[0].split()
    assert LAB in result.stdout


def test_list_still_lists_good_labs_when_the_labs_path_has_a_broken_one() -> None:
    """Regression: one broken lab on LABGEN_LABS_PATH makes `list` fail."""
    result = invoke_labgen("list", env={"LABGEN_LABS_PATH": str(BROKEN_LABS)})
    assert "Traceback" not in result.stdout + result.stderr
    assert LAB in result.stdout, result.stderr


def test_status_json_on_an_empty_home() -> None:
    result = invoke_labgen("status", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []
    assert result.stdout.strip() == "[]"


def test_status_json_lists_a_machine_never_brought_up(labgen_home: Path) -> None:
    """A rendered but never started machine is `not_created`; Vagrant is not asked."""
    state = make_instance("first")
    result = invoke_labgen("status", "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [(r["instance"], r["lab"], r["provider"], r["state"]) for r in rows] == [
        ("first", state.lab, state.provider, "not_created")
    ]


def test_status_ignores_a_render_in_progress(labgen_home: Path) -> None:
    make_instance("done")
    hidden = resources.instances_dir() / ".half-rendered-xyz"
    hidden.mkdir(parents=True)
    (hidden / "instance.json").write_text("{}", encoding="utf-8")
    rows = json.loads(invoke_labgen("status", "--json").stdout)
    assert [r["instance"] for r in rows] == ["done"]


def test_destroy_removes_machines_never_brought_up(labgen_home: Path) -> None:
    make_instance("one")
    make_instance("two")
    result = invoke_labgen("destroy", "one")
    assert result.returncode == 0, result.stderr
    assert "destroyed one" in result.stdout
    assert instances_left(labgen_home) == ["two"]
    result = invoke_labgen("destroy", "--all")
    assert result.returncode == 0, result.stderr
    assert instances_left(labgen_home) == []


def test_destroy_all_on_an_empty_home() -> None:
    result = invoke_labgen("destroy", "--all")
    assert result.returncode == 0, result.stderr
    assert "no lab machines" in result.stderr


def test_check_on_a_machine_never_brought_up_completely(labgen_home: Path) -> None:
    make_instance("half")
    result = invoke_labgen("check", "half")
    assert_usage_error(result, r"'half' was never brought up completely", rf"labgen up {LAB}")


@pytest.mark.parametrize(
    "args, pattern",
    [
        (["run", "m"], r"which steps\?.*--all"),
        (["run", "m", "curl", "--all"], r"not both"),
        (["run", "m", "no-such-step"], r"no step 'no-such-step'"),
        (["check", "m", "--step", "no-such-step"], r"no step 'no-such-step'"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else None,
)
def test_step_errors_come_before_any_connection(
    labgen_home: Path, args: list[str], pattern: str
) -> None:
    """Bad step names are refused before labgen connects to the machine."""
    make_instance("m", ssh_config=True)
    result = invoke_labgen(*args)
    err = assert_usage_error(result, pattern)
    assert "cannot reach" not in err


@pytest.mark.parametrize(
    "content",
    ["not json", "[]", "{}", '{"instance": "bad", "surprise": 1}'],
    ids=["garbage", "list", "empty-object", "unknown-key"],
)
def test_a_damaged_state_file_is_a_usage_error(labgen_home: Path, content: str) -> None:
    """Regression (list/empty-object/unknown-key): InstanceState(**data)
    raises TypeError outside the try, and the user gets a traceback."""
    make_instance("bad")
    (resources.instances_dir() / "bad" / "instance.json").write_text(content, encoding="utf-8")
    result = invoke_labgen("check", "bad")
    assert_usage_error(result, r"instance\.json")


def test_version() -> None:
    from labgen import __version__

    result = invoke_labgen("--version")
    assert result.returncode == 0
    assert __version__ in result.stdout


def test_console_script_is_the_cli_main() -> None:
    from importlib.metadata import entry_points

    (script,) = entry_points(group="console_scripts", name="labgen")
    assert script.value == "labgen.cli.main:main"


# --- the same in a real process: what the user's terminal shows ---------------------


@pytest.mark.parametrize(
    "args, pattern",
    [
        (["up", "no-such-lab"], r"unknown lab"),
        (["up", str(BROKEN_LABS / "unknown-field")], r"unknown field"),
        (["up", LAB, "--name", "../x"], r"invalid instance name"),
        (["up", LAB, "--provider", "nosuch"], r"'nosuch' is not one of"),
        (["check", "nosuch"], r"no lab machine called 'nosuch'"),
        (["check", "x", "--only"], r"--only needs --step"),
    ],
    ids=lambda v: (
        " ".join(v).replace(str(BROKEN_LABS), "broken_labs") if isinstance(v, list) else None
    ),
)
def test_real_process_reports_errors_without_traceback(
    labgen_home: Path, args: list[str], pattern: str
) -> None:
    result = run_labgen(*args)
    assert_usage_error(result, r"(?m)^(labgen: error:|Error:) ", pattern)
    assert instances_left(labgen_home) == []


# --- --help of every verb -------------------------------------------------------------


def all_commands(
    group: click.Group = cli.main, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    yield path, group
    context = click.Context(group)
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        assert command is not None, f"labgen {' '.join(path)} lists {name} but has none"
        if isinstance(command, click.Group):
            yield from all_commands(command, (*path, name))
        else:
            yield (*path, name), command


COMMANDS = list(all_commands())


def test_the_lazily_loaded_commands_are_those_their_modules_define() -> None:
    """cli/main.py names the other modules' commands without importing them: the
    names must be exactly those the modules define."""
    import importlib

    defined = {
        command.name: module
        for module in set(cli.ELSEWHERE.values())
        for command in importlib.import_module(f"labgen.cli.{module}").COMMANDS
    }
    assert defined == cli.ELSEWHERE


@pytest.mark.parametrize(
    "path, command", COMMANDS, ids=[" ".join(p) or "labgen" for p, _ in COMMANDS]
)
def test_help_explains_every_verb(path: tuple[str, ...], command: click.Command) -> None:
    result = CliRunner().invoke(cli.main, [*path, "--help"], prog_name="labgen")
    assert result.exit_code == 0, result.output
    text = result.output
    assert text.startswith(f"Usage: {' '.join(('labgen', *path))}"), text
    assert command.help and command.help.strip(), f"{path} has no help text"
    first_line = " ".join(command.help.strip().splitlines()[0].split())
    assert first_line[:40] in " ".join(text.split()), text
    for param in command.params:
        if isinstance(param, click.Option):
            if param.name == "help":
                continue
            assert param.help, f"option {param.opts} of {path} has no help text"
            assert param.opts[0] in text
        elif isinstance(param, click.Argument):
            # The help text says what each argument is.
            metavar = (param.name or "").upper()
            assert metavar in command.help, f"{path}: the help never mentions {metavar}"
    if isinstance(command, click.Group):
        for name in command.commands:
            assert name in text


def test_top_level_help_documents_the_exit_statuses() -> None:
    result = CliRunner().invoke(cli.main, ["--help"], prog_name="labgen")
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    for status in ("0 success", "1 a machine or check failed", "2 bad input"):
        assert status in text


# --- helpers ----------------------------------------------------------------------------


def make_instance(name: str, ssh_config: bool = False) -> InstanceState:
    """An instance directory as `labgen up` leaves it before Vagrant runs."""
    lab_dir = REPO / "labs" / LAB
    state = InstanceState(
        instance=name,
        lab=LAB,
        lab_path=str(lab_dir),
        provider="docker",
        render_digest="0" * 64,
        created="2024-01-01T00:00:00+00:00",
    )
    instance = Instance(name)
    instance.save(state)
    if ssh_config:
        # Nothing listens on port 1: a connection attempt would fail at once.
        instance.ssh_config.write_text(
            "Host default\n  HostName 127.0.0.1\n  Port 1\n  User vagrant\n", encoding="utf-8"
        )
    return state
