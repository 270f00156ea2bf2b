"""Docs for a lab of one's own (issue 21, item 4), no machine: `labgen docs LAB` for a lab
folder anywhere, the site's nav made from the pages, the table of what differs made from
the recordings, and the "Run it" commands that work where the lab lives."""

from __future__ import annotations

import importlib.util
import shlex
from pathlib import Path
from types import ModuleType

import pytest
import yaml
from labgen.core.lab import Lab, find_lab_dir, load_lab, load_lab_dir
from labgen.docs import pages as docpages
from labgen.docs import recordings
from unit_helpers import REPO, invoke_labgen

ENGINES = ("20.10", "26.1", "28.5")
DOCKER = {"20.10": "20.10.24+dfsg1", "26.1": "26.1.5+dfsg1", "28.5": "28.5.2+dfsg4"}

LAB_YAML = """\
name: {name}
title: The {name} lab
summary: A lab of its own, kept outside labgen's labs.
engine: "20.10"
engines: ["20.10", "26.1", "28.5"]
images: [busybox]
steps:
  - id: same
    title: Prints the same everywhere
    explain: Nothing differs.
    command: echo same
  - id: noted
    title: Differs on 28.5, and the lab says why
    explain: One line changes.
    command: echo noted
    notes:
      "28.5": Docker 28 names it differently.
  - id: silent
    title: Differs on 26.1, and the lab says nothing
    explain: The author did not notice.
    command: echo silent
  - id: quiet-note
    title: A note, the same output
    explain: What differs is not printed.
    command: echo quiet
    notes:
      "28.5": The raw table has one more rule, which this step does not print.
  - id: unrecorded
    title: Not recorded on 26.1
    explain: Recorded on two engines only.
    command: echo unrecorded
"""

CHECKS = '''\
import pytest


@pytest.fixture
def host():
    return None  # these checks never reach a machine


@pytest.mark.step("same")
def test_wrapped(host):
    """the summary of this check starts here and
    goes on over a second line

    A detail that `labgen check` leaves out.
    """
'''


def make_lab(parent: Path, name: str = "mine") -> Lab:
    """A lab folder parent/name with recordings on every engine (see LAB_YAML's steps)."""
    folder = parent / name
    folder.mkdir(parents=True)
    (folder / "lab.yaml").write_text(LAB_YAML.format(name=name), encoding="utf-8")
    (folder / "checks.py").write_text(CHECKS, encoding="utf-8")
    outputs = {
        "same": {e: "one\ntwo\n" for e in ENGINES},
        "noted": {"20.10": "a\nold name\nz\n", "26.1": "a\nold name\nz\n", "28.5": "a\nnew\nz\n"},
        "silent": {"20.10": "x\n", "26.1": "x\nmore\n", "28.5": "x\n"},
        "quiet-note": {e: "quiet\n" for e in ENGINES},
        "unrecorded": {"20.10": "u\n", "28.5": "u\n"},
    }
    for step, by_engine in outputs.items():
        for engine, output in by_engine.items():
            recording = recordings.Recording(
                name, step, engine, DOCKER[engine], "0.2.0", "2026-12-02", (), output
            )
            recordings.write(folder, recording)
    return load_lab_dir(folder)


def table_row(page: str, step: str) -> list[str]:
    """The cells of the row of `step` in the page's table of what differs."""
    section = page[page.index("## What differs") : page.index("## Steps")]
    line = next(x for x in section.splitlines() if x.startswith("| [") and f"#step-{step})" in x)
    return [cell.strip() for cell in line.strip("|").split(" | ")][1:]


def differs_block(page: str, step: str) -> str:
    """What the page says under the table of one step's differences."""
    start = page.index(f'<a id="differs-{step}"></a>')
    rest = page[start + 1 :]
    ends = [i for i in (rest.find('<a id="differs-'), rest.find("## Steps")) if i >= 0]
    return page[start : start + 1 + min(ends)]


# --- the table of what differs, from the recordings ------------------------------------


def test_the_table_says_same_only_where_the_recordings_are_equal(tmp_path: Path) -> None:
    page = docpages.render_lab_page(make_lab(tmp_path / "labs"), tmp_path)
    assert "## What differs on 26.1 and 28.5" in page
    assert table_row(page, "same") == ["same", "same"]
    assert table_row(page, "noted") == ["same", "[differs](#differs-noted) (+1 −1 lines)"]
    # No note, yet the recordings differ: the table says so (before, it said "same").
    assert table_row(page, "silent") == ["[differs](#differs-silent) (+1 −0 lines)", "same"]
    assert table_row(page, "quiet-note") == ["same", "same output, [a note](#differs-quiet-note)"]
    assert table_row(page, "unrecorded") == ["not recorded", "same"]


def test_each_difference_is_shown_with_the_labs_note_as_its_explanation(tmp_path: Path) -> None:
    page = docpages.render_lab_page(make_lab(tmp_path / "labs"), tmp_path)
    noted = differs_block(page, "noted")
    assert '=== "Docker 28.5"' in noted and '=== "Docker 26.1"' not in noted
    assert "    Docker 28 names it differently." in noted
    assert "    --- Docker 20.10\n    +++ Docker 28.5\n" in noted
    assert "    -old name\n    +new\n" in noted
    silent = differs_block(page, "silent")
    assert "No note in lab.yaml says why (`notes:` of step `silent`, for `26.1`)." in silent
    assert "    +more\n" in silent
    quiet = differs_block(page, "quiet-note")
    assert "The raw table has one more rule" in quiet
    assert "The recorded output is the same as on Docker 20.10." in quiet
    assert '<a id="differs-same">' not in page and '<a id="differs-unrecorded">' not in page
    assert "\n\n\n" not in page


def test_a_lab_without_recordings_compares_nothing(tmp_path: Path) -> None:
    lab = make_lab(tmp_path / "labs")
    for path in (lab.path / recordings.RECORDED_DIR).rglob("*.txt"):
        path.unlink()
    page = docpages.render_lab_page(load_lab_dir(lab.path), tmp_path)
    assert "This lab has no recordings yet" in page
    assert table_row(page, "silent") == ["not recorded", "not recorded"]
    assert table_row(page, "noted") == ["not recorded", "not recorded, [a note](#differs-noted)"]
    assert "same" not in " ".join(table_row(page, "same"))
    assert "Not compared: the step is not recorded on both engines yet." in page


def test_recordings_compare_exactly() -> None:
    def rec(engine: str, output: str) -> recordings.Recording:
        return recordings.Recording("l", "s", engine, engine, "0.2.0", "2026-12-02", (), output)

    # One space of difference is a difference: never "same".
    found = recordings.compare(rec("20.10", "a b\n"), rec("28.5", "a  b\n"), "20.10", "28.5")
    assert (found.state, found.added, found.removed) == ("differs", 1, 1)
    assert recordings.compare(None, rec("28.5", "x\n"), "20.10", "28.5").state == "not recorded"


# --- Run it: the command that works for where the lab lives ----------------------------


def run_it(page: str) -> list[str]:
    block = page[page.index("## Run it") :]
    block = block[block.index("```bash\n") + 8 :]
    return [line.split("  #")[0].strip() for line in block[: block.index("```")].splitlines()]


def test_run_it_names_a_bundled_lab_alone() -> None:
    lab = load_lab("netns")
    commands = run_it(docpages.render_lab_page(lab, REPO))
    assert commands[0] == "labgen up netns"
    assert "--labs" not in docpages.render_lab_page(lab, REPO)


def test_run_it_gives_a_lab_elsewhere_its_folder_and_the_command_finds_it(tmp_path: Path) -> None:
    site = tmp_path / "site"
    lab = make_lab(site / "my labs", "mine")
    page = docpages.render_lab_page(lab, site)
    up = run_it(page)[0]
    assert up == "labgen up --labs 'my labs' mine"
    assert "labgen up --labs 'my labs' mine --engine E" in page
    assert "a folder relative to the one holding this site's `mkdocs.yml`" in page
    assert "labgen ssh mine" in run_it(page)
    # What the page says, given from the site's folder, finds this very lab.
    words = shlex.split(up)
    folder = site / words[words.index("--labs") + 1]
    assert find_lab_dir(words[-1], [folder]) == lab.path
    # Seen from a site elsewhere, the folder is absolute (or under ~).
    far = docpages.render_lab_page(lab, tmp_path / "elsewhere")
    assert run_it(far)[0] == f"labgen up --labs {shlex.quote(str(lab.path.parent))} mine"
    assert "relative to the one holding" not in far
    assert far.startswith(f"{docpages.GENERATED_MARK} from {lab.path}/lab.yaml")


# --- labgen docs LAB: one lab's page, for a folder anywhere ----------------------------


def test_docs_lab_writes_that_page_alone_though_its_folder_holds_a_broken_lab(
    tmp_path: Path,
) -> None:
    labs = tmp_path / "mine-labs"
    lab = make_lab(labs, "mine")
    (labs / "broken").mkdir()
    (labs / "broken" / "lab.yaml").write_text("name: broken\n", encoding="utf-8")
    out = tmp_path / "site" / "docs"
    result = invoke_labgen("docs", str(lab.path), "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == [
        "labs",
        "labs/mine.md",
    ]
    assert result.stdout.strip() == f"wrote {out / 'labs' / 'mine.md'}"
    page = (out / "labs" / "mine.md").read_text(encoding="utf-8")
    assert page == docpages.render_lab_page(lab, tmp_path / "site")
    assert docpages.page_source(out / "labs" / "mine.md") == lab.path.as_posix()
    # By name through --labs, as `labgen up` finds it: the same page, up to date.
    assert invoke_labgen("docs", "mine", "--labs", str(labs), "-o", str(out), "--check") == (
        invoke_labgen("docs", str(lab.path), "-o", str(out), "--check")
    )
    assert invoke_labgen("docs", str(lab.path), "-o", str(out), "--check").returncode == 0
    lab_file = lab.path / "lab.yaml"
    lab_file.write_text(lab_file.read_text().replace("Nothing differs.", "Changed."))
    stale = invoke_labgen("docs", str(lab.path), "-o", str(out), "--check")
    assert stale.returncode == 1 and "labs/mine.md" in stale.stdout


def test_docs_regenerates_the_pages_of_labs_elsewhere_and_drops_them_once_gone(
    tmp_path: Path,
) -> None:
    lab = make_lab(tmp_path / "elsewhere", "mine")
    out = tmp_path / "site" / "docs"
    assert invoke_labgen("docs", str(lab.path), "-o", str(out)).returncode == 0
    every = invoke_labgen("docs", "-o", str(out))
    assert every.returncode == 0, every.stderr
    assert f"wrote {out / 'labs' / 'mine.md'}" in every.stdout
    assert "(labs/mine.md)" in (out / "index.md").read_text(encoding="utf-8")
    assert invoke_labgen("docs", "-o", str(out), "--check").returncode == 0
    for path in sorted(lab.path.rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    lab.path.rmdir()
    gone = invoke_labgen("docs", "-o", str(out), "--check")
    assert gone.returncode == 1 and f"out of date: {out / 'labs' / 'mine.md'}" in gone.stdout
    assert invoke_labgen("docs", "-o", str(out)).returncode == 0
    assert not (out / "labs" / "mine.md").exists()


@pytest.mark.parametrize("existing", ["hand-written", "another lab's"])
def test_docs_lab_never_replaces_a_page_it_does_not_own(tmp_path: Path, existing: str) -> None:
    out = tmp_path / "site" / "docs"
    page = out / "labs" / "netns.md"
    page.parent.mkdir(parents=True)
    if existing == "hand-written":
        page.write_text("# my notes on netns\n", encoding="utf-8")
        wanted = "not written by `labgen docs`"
    else:
        page.write_text(docpages.render_lab_page(load_lab("netns"), out.parent), encoding="utf-8")
        wanted = "already the page of the lab in labs/netns"
    before = page.read_text(encoding="utf-8")
    mine = make_lab(tmp_path / "elsewhere", "netns")
    result = invoke_labgen("docs", str(mine.path), "-o", str(out))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert str(page) in result.stderr and wanted in result.stderr
    assert "-o DIR" in result.stderr
    assert page.read_text(encoding="utf-8") == before


def test_docs_of_something_that_is_no_lab_is_a_usage_error(tmp_path: Path) -> None:
    result = invoke_labgen("docs", str(tmp_path / "nothing-here"), "-o", str(tmp_path / "d"))
    assert result.returncode == 2 and "not a lab folder" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "d").exists()
    result = invoke_labgen("docs", "no-such-lab", "-o", str(tmp_path / "d"))
    assert result.returncode == 2 and "unknown lab 'no-such-lab'" in result.stderr


# --- the nav: from the pages, no hand-kept list -----------------------------------------


def hooks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mkdocs_hooks", REPO / "mkdocs_hooks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_nav_lists_every_lab_page_it_finds(tmp_path: Path) -> None:
    config = yaml.safe_load((REPO / "mkdocs.yml").read_text(encoding="utf-8"))
    assert config["hooks"] == ["mkdocs_hooks.py"]
    # Only an order for the seed's labs is kept by hand; every other page comes by itself.
    listed = next(e for e in config["nav"] if isinstance(e, dict) and "Labs" in e)["Labs"]
    assert listed[:2] == ["labs/netns.md", "labs/bridge.md"]
    assert config["validation"]["nav"]["omitted_files"] == "warn"  # --strict: none forgotten
    docs = tmp_path / "docs"
    (docs / "labs").mkdir(parents=True)
    for name in ("zeta", "alpha", "mine"):
        text = f"<!-- generated -->\n# The {name} lab\n\n## Run it\n"
        (docs / "labs" / f"{name}.md").write_text(text, encoding="utf-8")
    (docs / "labs" / "untitled.md").write_text("no heading\n", encoding="utf-8")
    config["docs_dir"] = str(docs)
    config["nav"] = [{"Labs": ["labs/zeta.md"]}]  # an order given for one of them
    labs = next(e for e in hooks().on_config(config)["nav"] if "Labs" in e)["Labs"]
    assert labs == [
        {"The zeta lab": "labs/zeta.md"},
        {"The alpha lab": "labs/alpha.md"},
        {"The mine lab": "labs/mine.md"},
        "labs/untitled.md",
    ]


def test_a_check_description_is_text_on_the_page_not_html(tmp_path: Path) -> None:
    lab = make_lab(tmp_path / "labs")
    checks = lab.checks_file.read_text(encoding="utf-8")
    checks = checks.replace("the summary of this check", "the bridge br-<id> & `br-<id>`")
    lab.checks_file.write_text(checks, encoding="utf-8")
    page = docpages.render_lab_page(lab, tmp_path)
    assert "- the bridge br-&lt;id&gt; &amp; `br-<id>` starts here" in page
