"""Loading and validating labs: a lab is a folder with lab.yaml and checks.py."""

from __future__ import annotations

import difflib
import hashlib
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from labgen.core import resources
from labgen.core.errors import UsageError

LAB_FILE = "lab.yaml"
CHECKS_FILE = "checks.py"

_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,39}$"
# Lab names become machine names: no trailing dash either (resources.validate_name).
_NAME_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$"


def _tcp_port(port: int) -> int:
    if not 1 <= port <= 65535:
        raise ValueError(f"{port} is not a TCP port (1-65535)")
    return port


# A Docker engine as recipe.yaml names it: MAJOR.MINOR. (Strict: YAML reads 28.5 as a float.)
EngineName = Annotated[str, Field(strict=True, pattern=r"^\d+\.\d+$")]

# Strict: YAML's `true` is no port 1. Checked per item, so errors name ports[i] and its line.
Port = Annotated[int, Field(strict=True), AfterValidator(_tcp_port)]


_TRACE_HELP = "The guide offers to trace the step's command (labgen trace) after running it."
_DRAW_HELP = (
    "A key step: `labgen verify --record` draws the machine's wiring after it (labgen draw), "
    "and the lab's docs page shows the picture."
)


class Step(BaseModel):
    """One step of a lab: what the learner reads and types, and what a robot runs."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=_ID_PATTERN, description="Short name, used by `labgen run LAB ID`.")
    title: str = Field(min_length=1)
    explain: str = Field(min_length=1, description="What happens, in Markdown.")
    command: str = Field(
        min_length=1, description="The command exactly as the material documents it."
    )
    run: str | None = Field(
        default=None,
        description="What a robot runs instead, where `command` is interactive "
        "(-it, a foreground server, `logs -f`). Defaults to `command`.",
    )
    notes: dict[EngineName, str] = Field(
        default_factory=dict,
        description="Per Docker engine, what differs there (Markdown): shown with the "
        "explanation on a machine with that engine, and in the lab's docs page.",
    )
    trace: bool = Field(default=False, description=_TRACE_HELP)
    draw: bool = Field(default=False, strict=True, description=_DRAW_HELP)
    not_on: dict[EngineName, str] = Field(
        default_factory=dict,
        description="Engines on which this step cannot be shown, and why: verify reports "
        "the step as not applicable there (never as passed).",
    )

    @field_validator("command", "run")
    @classmethod
    def _not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must not be blank")
        return value

    @property
    def robot_command(self) -> str:
        return self.run if self.run is not None else self.command


class Daemon(BaseModel):
    """Settings of the machine's dockerd (its daemon.json) that a lab depends on."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    userland_proxy: bool = Field(
        default=True,
        alias="userland-proxy",
        description="false: dockerd itself holds published ports and localhost goes "
        "through DNAT (no docker-proxy).",
    )


class Normalise(BaseModel):
    """One of the lab's own normalisation rules for its recordings (`normalise:`)."""

    model_config = ConfigDict(extra="forbid")

    pattern: str = Field(
        min_length=1,
        description="A Python regular expression, matched against what a step printed; what "
        "it matches (its group `v`, where it has one) becomes `replacement`.",
    )
    replacement: str = Field(description="The placeholder, e.g. '<network-id>'.")
    reason: str = Field(
        min_length=1,
        description="Why this changes from run to run; the lab's page shows it.",
    )

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a regular expression ({exc})") from None
        return value


def _legacy_engine(value: Any) -> Any:
    # Labs written before engines were a dimension said `engine: {version: "20.10"}`.
    if isinstance(value, dict) and set(value) <= {"package", "version"} and "version" in value:
        return value["version"]
    return value


class LabSpec(BaseModel):
    """The contents of lab.yaml."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=_NAME_PATTERN)
    title: str = Field(min_length=1)
    summary: str = Field(min_length=1)
    engine: Annotated[EngineName, BeforeValidator(_legacy_engine)] = Field(
        description="The Docker engine a machine of this lab gets by default, e.g. '20.10'."
    )
    engines: list[EngineName] = Field(
        default_factory=list,
        description="Every engine the lab's checks are verified on (default: just `engine`).",
    )
    daemon: Daemon = Field(default_factory=Daemon)
    images: list[str] = Field(
        default_factory=list, description="Images the steps use, by the names the material uses."
    )
    ports: list[Port] = Field(
        default_factory=list,
        description="Ports the lab's servers listen on; a VM forwards them to the host.",
    )
    steps: list[Step] = Field(min_length=1)
    normalise: list[Normalise] = Field(
        default_factory=list,
        description="The lab's own rules for what its steps print that changes from run to "
        "run, applied before labgen's built-in ones (docs: recordings.md).",
    )


@dataclass(frozen=True)
class Lab:
    """A validated lab and where it lives."""

    spec: LabSpec
    path: Path

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def title(self) -> str:
        return self.spec.title

    @property
    def steps(self) -> list[Step]:
        return self.spec.steps

    @property
    def engines(self) -> list[str]:
        """The engines the lab is verified on, its default first."""
        return list(dict.fromkeys([self.spec.engine, *self.spec.engines]))

    @property
    def checks_file(self) -> Path:
        return self.path / CHECKS_FILE

    def digest(self) -> str:
        """A digest of lab.yaml and checks.py: what a machine was made from."""
        h = hashlib.sha256()
        for name in (LAB_FILE, CHECKS_FILE):
            h.update(name.encode() + b"\0" + (self.path / name).read_bytes() + b"\0")
        return h.hexdigest()

    def step(self, step_id: str) -> Step:
        """The step called `step_id`, or a UsageError listing the lab's steps."""
        for step in self.steps:
            if step.id == step_id:
                return step
        known = ", ".join(s.id for s in self.steps)
        raise UsageError(f"lab {self.name!r} has no step {step_id!r}; its steps are: {known}")

    def step_index(self, step_id: str) -> int:
        return self.steps.index(self.step(step_id))


def lab_search_path(labs_path: Sequence[Path] = ()) -> list[Path]:
    """Folders searched for labs: `labs_path` (--labs, $LABGEN_LABS_PATH) first, then
    the labs that ship with labgen."""
    return [*(Path(p).expanduser() for p in labs_path), resources.labs_dir()]


def lab_folders(labs_path: Sequence[Path] = ()) -> list[Path]:
    """Every lab folder on the search path; the first of a name wins."""
    seen: dict[str, Path] = {}
    for folder in lab_search_path(labs_path):
        if folder.is_dir():
            for lab_dir in sorted(p for p in folder.iterdir() if (p / LAB_FILE).is_file()):
                seen.setdefault(lab_dir.name, lab_dir)
    return list(seen.values())


def find_lab_dir(
    name_or_path: str, labs_path: Sequence[Path] = (), cwd: Path | None = None
) -> Path:
    """Resolve a lab name (searched for) or a path to a lab folder (kept as given, so
    that messages name its files as the user wrote them)."""
    candidate = Path(name_or_path)
    if os.sep in name_or_path or name_or_path.startswith("."):
        if (candidate / LAB_FILE).is_file():
            return candidate if not candidate.is_absolute() else candidate.resolve()
        raise UsageError(f"{name_or_path}: not a lab folder (no {LAB_FILE} in it)")
    resources.validate_name(name_or_path, "lab name")
    folders = lab_folders(labs_path)
    for folder in folders:
        if folder.name == name_or_path:
            return folder.resolve()
    here = (cwd or Path.cwd()) / name_or_path
    raise UnknownLab(
        name_or_path,
        sorted(f.name for f in folders),
        here if (here / LAB_FILE).is_file() else None,
    )


class UnknownLab(UsageError):
    """A lab name that no folder on the search path has. `here`: a lab folder of that
    name in the current directory (the user meant its path, or `--labs .`); `close`:
    known names it may be a misspelling of.

    >>> error = UnknownLab("netsn", ["bridge", "netns"], None)
    >>> error.message
    "unknown lab 'netsn'; labs available: bridge, netns; did you mean 'netns'?"
    >>> print(UnknownLab("mine", ["netns"], Path("/labs/mine")).hint)  # doctest: +ELLIPSIS
    `./mine` here is a lab folder: name it by its path (./mine), or add `--labs .` ...
    """

    def __init__(self, name: str, known: list[str], here: Path | None):
        self.name = name
        self.here = here
        # A folder here of that very name is what was meant, not a lab spelt alike.
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        self.close = close if here is None else []
        guess = f"; did you mean {self.close[0]!r}?" if self.close else ""
        message = f"unknown lab {name!r}; labs available: {', '.join(known) or 'none'}{guess}"
        if here is not None:
            hint = (
                f"`./{name}` here is a lab folder: name it by its path (./{name}), "
                "or add `--labs .` to find the labs in this folder by name"
            )
        else:
            hint = "`labgen list` shows them with their titles"
        super().__init__(message, hint=hint)


def load_lab(name_or_path: str, labs_path: Sequence[Path] = ()) -> Lab:
    """Find, read and validate a lab; any problem is a UsageError naming file and field."""
    return load_lab_dir(find_lab_dir(name_or_path, labs_path))


def load_lab_dir(folder: Path) -> Lab:
    """Read and validate the lab in `folder`."""
    lab_file = folder / LAB_FILE
    text = read_lab_file(lab_file)
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)
        tree = yaml.compose(text)
    except yaml.YAMLError as exc:
        raise UsageError(describe_yaml_error(lab_file, text, exc)) from None
    if not isinstance(data, dict):
        raise UsageError(f"{lab_file}: expected a mapping with name, title, steps, ...")
    try:
        spec = LabSpec.model_validate(data)
    except ValidationError as exc:
        raise UsageError(_describe(lab_file, exc, tree)) from None
    first: dict[str, int] = {}
    for index, step in enumerate(spec.steps):
        if step.id in first:
            raise UsageError(
                f"{lab_file}:{_line(tree, ('steps', index, 'id'))}: field 'steps[{index}].id': "
                f"step id {step.id!r} is used twice (first as steps[{first[step.id]}].id)"
            )
        first[step.id] = index
    if spec.name != folder.resolve().name:
        raise UsageError(
            f"{lab_file}:{_line(tree, ('name',))}: field 'name': {spec.name!r} must match "
            f"the folder name {folder.resolve().name!r}"
        )
    _check_images(lab_file, tree, spec)
    _check_engines(lab_file, tree, spec)
    if not (folder / CHECKS_FILE).is_file() and not (folder / CHECKS_FILE).is_symlink():
        raise UsageError(
            f"{folder / CHECKS_FILE}: missing; every lab has its testinfra checks in this file: "
            f"create it (the one `labgen new` writes is a start)"
        )
    read_lab_file(folder / CHECKS_FILE)
    return Lab(spec=spec, path=folder.resolve())


MAX_FILE_BYTES = 1024 * 1024
# Control characters other than tab and newline: terminal escapes in a title would
# reach the learner's terminal; nothing in a lab needs them.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def read_lab_file(path: Path) -> str:
    """A lab file's text: a regular file (no symlink: a lab's files stay inside its
    folder), at most 1 MiB, UTF-8, without control characters; else a UsageError."""
    if path.is_symlink():
        raise UsageError(
            f"{path}: a symbolic link; a lab's files must be regular files in its folder: "
            f"replace the link with a copy of the file it points to"
        )
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise UsageError(f"{path}: not a regular file")
        if size > MAX_FILE_BYTES:
            raise UsageError(f"{path}: {size} bytes; a lab file may have at most 1 MiB")
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise UsageError(f"{path}:{line}: not UTF-8 text (byte {exc.start})") from None
    bad = _CONTROL.search(text)
    if bad:
        line = text[: bad.start()].count("\n") + 1
        raise UsageError(
            f"{path}:{line}: control character {bad.group()!r}; lab files are plain text"
        )
    return text


# Lines of lab.yaml shown between the place a YAML construct began and the place it broke;
# a longer gap is shown as `...`.
_YAML_GAP = 3


def describe_yaml_error(lab_file: Path, text: str, exc: yaml.YAMLError) -> str:
    """PyYAML's error as one line, `FILE:LINE:COLUMN: not valid YAML: PROBLEM` (1-based),
    then the lines of the file it names, in the file's order, each mark under its column.

    >>> text = "name: x\\nsteps:\\n  - id: a\\n   title: A\\n"
    >>> try:
    ...     yaml.compose(text)
    ... except yaml.YAMLError as exc:
    ...     print(describe_yaml_error(Path("lab.yaml"), text, exc))
    lab.yaml:4:4: not valid YAML: expected <block end>, but found '<block mapping start>'
        3 |   - id: a
          |   ^ while parsing a block collection (it starts here)
        4 |    title: A
          |    ^ expected <block end>, but found '<block mapping start>'
    """
    mark = getattr(exc, "problem_mark", None)
    if not isinstance(exc, yaml.MarkedYAMLError) or mark is None:
        return f"{lab_file}: not valid YAML: {exc}"
    problem = exc.problem or "not valid YAML"
    lines = text.splitlines()
    marks = [(mark.line, mark.column, problem)]
    if exc.context and exc.context_mark is not None:
        marks.append((exc.context_mark.line, exc.context_mark.column, exc.context))
    if len(marks) > 1 and marks[1][:2] != marks[0][:2]:
        marks[1] = (marks[1][0], marks[1][1], f"{exc.context} (it starts here)")
    elif len(marks) > 1:
        marks = [(mark.line, mark.column, f"{exc.context}: {problem}")]
    out = [f"{lab_file}:{mark.line + 1}:{mark.column + 1}: not valid YAML: {problem}"]
    width = len(str(max(m[0] for m in marks) + 1))
    shown = -1
    for line, column, what in sorted(marks):
        if shown >= 0 and line - shown > _YAML_GAP:
            out.append(f"    {'...':>{width}} |")
        start = line if shown < 0 or line - shown > _YAML_GAP else shown + 1
        for number in range(start, line + 1):
            source = lines[number] if number < len(lines) else ""
            out.append(f"    {number + 1:>{width}} | {source}".rstrip())
        out.append(f"    {'':>{width}} | {' ' * column}^ {what}")
        shown = line
    if exc.note:
        out.append(f"    note: {exc.note}")
    return "\n".join(out)


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML forbids a key twice in one mapping; PyYAML would keep the last silently."""

    def construct_mapping(self, node, deep=False):  # type: ignore[no-untyped-def]
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def iter_labs(
    labs_path: Sequence[Path] = (),
    on_error: Callable[[UsageError], None] | None = None,
) -> Iterable[Lab]:
    """Every valid lab on the search path, first occurrence of a name wins."""
    for lab_dir in lab_folders(labs_path):
        try:
            lab = load_lab_dir(lab_dir)
        except UsageError as exc:
            if on_error is None:
                raise
            on_error(exc)
            continue
        yield lab


def _check_images(lab_file: Path, tree: yaml.Node | None, spec: LabSpec) -> None:
    # Imported here: the image table is the recipe's data, and lab.py should load
    # without it for the JSON schema and the unit tests of pure validation.
    from labgen.machine.recipe import RECIPE_IN_CHECKOUT, known_images

    known = ", ".join(sorted(known_images()))
    for index, image in enumerate(spec.images):
        if image not in known_images():
            raise UsageError(
                f"{lab_file}:{_line(tree, ('images', index))}: field 'images[{index}]': "
                f"{image!r} has no offline substitute (lab machines reach no registry); "
                f"known images: {known}. In lab.yaml, use one of those for images: and in "
                f"the steps; a new substitute is an entry under images: in "
                f"{RECIPE_IN_CHECKOUT} of a labgen source checkout (then `labgen box build`)"
            )


def _check_engines(lab_file: Path, tree: yaml.Node | None, spec: LabSpec) -> None:
    from labgen.machine.recipe import RECIPE_IN_CHECKOUT, engines

    known = engines()
    named: list[tuple[tuple[str | int, ...], str]] = [(("engine",), spec.engine)]
    named += [(("engines", i), e) for i, e in enumerate(spec.engines)]
    for index, step in enumerate(spec.steps):
        for key in ("notes", "not_on"):
            named += [(("steps", index, key, e), e) for e in getattr(step, key)]
    for loc, engine in named:
        if engine not in known:
            raise UsageError(
                f"{lab_file}:{_line(tree, loc)}: field '{_dotted(loc)}': Docker engine "
                f"{engine!r} is not one labgen builds; it has: {', '.join(known)}. In "
                f'lab.yaml, name one of those (quoted: "{known[-1]}"); a new engine is an '
                f"entry under engines: in {RECIPE_IN_CHECKOUT} of a labgen source checkout "
                "(a Debian suite whose docker.io is that engine)"
            )


def _describe(lab_file: Path, exc: ValidationError, tree: yaml.Node | None) -> str:
    problems = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        field = _dotted(loc) or "(top level)"
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown field (check its spelling)"
        elif error["type"] == "missing":
            message = "required field is missing"
        line = _line(tree, loc)
        problems.append(f"{lab_file}:{line}: field '{field}': {message}")
    return "\n".join(problems)


def _dotted(loc: Sequence[Any]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _line(tree: yaml.Node | None, loc: Sequence[Any]) -> int:
    """The 1-based line of the deepest YAML node that `loc` reaches."""
    node = tree
    line = node.start_mark.line + 1 if node is not None else 1
    for part in loc:
        child = None
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == part:
                    child = value
                    line = key.start_mark.line + 1
                    break
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value)
        ):
            child = node.value[part]
            line = child.start_mark.line + 1
        if child is None:
            break
        node = child
    return line
