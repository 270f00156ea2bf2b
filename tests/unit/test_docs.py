"""The documentation generator: lab pages, index, seed map, drift detection (no machine)."""

from __future__ import annotations

import doctest
import re
import textwrap
from pathlib import Path

import pytest
from labgen.checks import reader as checkdoc
from labgen.core.errors import UsageError
from labgen.core.lab import Lab, iter_labs, load_lab, load_lab_dir
from labgen.docs import listings, recordings, seedmap
from labgen.docs import pages as docpages

REPO = Path(__file__).resolve().parents[2]
SEED = REPO / "docs" / "seed" / "docker-networking.md"

# Every distinct command the seed shows, in order (the `~` after the second
# iptables is a copied shell right prompt, not part of the command).
SEED_COMMANDS = [
    "sudo ip netns list",
    "docker run --name nstest -it busybox",
    "pid=\"$(docker inspect -f '{{.State.Pid}}' nstest)\"",
    "sudo mkdir -p /var/run/netns/",
    "sudo ln -sf /proc/$pid/ns/net /var/run/netns/nstest",
    "sudo ip netns",
    "sudo ip netns exec nstest ip a",
    "ip a | grep docker",
    "ip a | grep 139913",
    "brctl show",
    "sudo iptables -t nat -L -n",
    "docker run -p 5000:5000 --rm -it python:3.7-slim python3 -m http.server 5000 --bind=0.0.0.0",
    "curl -XGET http://localhost:5000",
    "docker logs -f <python3.7-container-name>",
    "docker run --net=host --rm -it python:3.7-slim python3 -m http.server 5000 --bind=0.0.0.0",
]


def make_lab(root: Path, name: str, steps: list[dict[str, str]], checks: str = "") -> Lab:
    """A lab folder under root/<name> with lab.yaml and checks.py, loaded and validated."""
    folder = root / name
    folder.mkdir(parents=True)
    lines = [
        f"name: {name}",
        f"title: The {name} lab",
        "summary: >",
        f"  A hand-made lab called {name}, | with a pipe.",
        "engine:",
        '  version: "20.10"',
        "images: [busybox]",
        "steps:",
    ]
    for step in steps:
        lines.append(f"  - id: {step['id']}")
        lines.append(f"    title: Step {step['id']}")
        lines.append(f"    explain: Explains {step['id']}.")
        for key in ("command", "run"):
            if key in step:
                lines.append(f"    {key}: |")
                lines.extend("      " + line for line in step[key].splitlines())
    (folder / "lab.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (folder / "checks.py").write_text(textwrap.dedent(checks), encoding="utf-8")
    return load_lab_dir(folder)


@pytest.fixture
def pair(tmp_path: Path) -> list[Lab]:
    """Two small labs carrying some of the seed's commands, in their own ways."""
    ns = make_lab(
        tmp_path / "labs",
        "ns",
        [
            {"id": "list", "command": "sudo ip netns list"},
            # several lines, odd spacing, a comment and a prompt: still the seed's commands
            {
                "id": "link",
                "command": "# make the namespace visible\n"
                "sudo   mkdir -p /var/run/netns/\n"
                "$ sudo ln -sf /proc/$pid/ns/net \\\n    /var/run/netns/nstest && echo done",
                "run": "sudo mkdir -p /var/run/netns/",
            },
            {"id": "nat", "command": "sudo iptables -t nat -L -n"},
        ],
        checks='''
            import pytest
            import testinfra_world_only  # never imported by the docs generator

            @pytest.mark.step("link")
            def test_link(host):
                """the namespace is visible"""
        ''',
    )
    web = make_lab(
        tmp_path / "labs",
        "web",
        [
            {"id": "curl", "command": "curl -XGET http://localhost:5000"},
            {"id": "logs", "command": "docker logs -f <python3.7-container-name>"},
            {"id": "extra", "command": "date"},
        ],
    )
    return [web, ns]


def test_seed_commands_are_every_prompt_line_of_the_seeds_bash_blocks() -> None:
    commands = seedmap.seed_commands(SEED.read_text(encoding="utf-8"))
    assert [c.text for c in commands] == SEED_COMMANDS
    iptables = next(c for c in commands if c.text == "sudo iptables -t nat -L -n")
    assert [p.short_section for p in iptables.places] == ["§3", "§3.1", "§3.2"]
    assert len(set(iptables.lines)) == 3


def test_the_seed_is_read_as_markdown_fences_and_headings() -> None:
    text = textwrap.dedent(
        """\
        Setext heading
        ==============

        ~~~console
        $ ip a        ~
        1: lo
        ~~~

        ## Closed heading ##

        ```text
        $ not a command
        ```

            # an indented code line, not a heading
        ````bash
        ```
        $ date
        ````
        """
    )
    commands = seedmap.seed_commands(text)
    assert [(c.text, c.places) for c in commands] == [
        ("ip a", (seedmap.SeedPlace(5, "Setext heading"),)),
        ("date", (seedmap.SeedPlace(18, "Closed heading"),)),
    ]
    shown = listings.seed_listings(text)
    assert [(x.command, x.place.line, x.text) for x in shown] == [("ip a", 5, "1: lo\n")]


def test_docstring_examples_run() -> None:
    assert doctest.testmod(seedmap).failed == 0
    assert doctest.testmod(listings).failed == 0


def test_lab_page_shows_every_step_command_and_check_of_port_forwarding() -> None:
    lab = load_lab("port-forwarding")
    page = docpages.render_lab_page(lab)
    assert page.startswith(docpages.GENERATED_MARK)
    assert f"# {lab.title}\n" in page
    assert f"Docker {lab.spec.engine} (default), 26.1, 28.5" in page
    # Each engine's note sits under its step, and in the table of what differs.
    note = " ".join(lab.step("publish-port").notes["28.5"].split())
    assert page.count(note) == 2, note
    assert "## What differs on 26.1 and 28.5" in page
    for verb in (
        f"labgen up {lab.name}",
        f"labgen run {lab.name} --all",
        f"labgen check {lab.name}",
    ):
        assert verb in page
    for number, step in enumerate(lab.steps, start=1):
        assert f"### {number}. {step.title}\n" in page
        assert f"```bash\n{step.command.strip()}\n```" in page
        assert step.explain.strip() in page
        if step.run is not None and step.run.strip() != step.command.strip():
            assert f"```bash\n{step.run.strip()}\n```" in page
    checks = checkdoc.read_checks(lab)
    source = lab.checks_file.read_text(encoding="utf-8")
    assert len(checks) == len(re.findall(r"@pytest\.mark\.step\(", source)) > 0
    for check in checks:
        assert check.description and f"- {check.description}" in page
    assert "{{" not in page and "\n\n\n" not in page and page.endswith("\n")
    assert page == docpages.render_lab_page(lab)  # deterministic


def test_read_checks_parses_markers_and_docstrings_without_importing(tmp_path: Path) -> None:
    lab = make_lab(
        tmp_path,
        "parsed",
        [{"id": "a", "command": "true"}, {"id": "b", "command": "true"}],
        checks='''
            import pytest
            raise SystemExit("checks.py must not be imported")

            def helper():
                pass

            @pytest.mark.step("a", until="b")
            def test_first(host):
                """first line wins

                not this one
                """

            @pytest.mark.step("b")
            def test_no_docstring_here(host):
                pass

            @pytest.mark.step("a")
            class TestGroup:
                def test_in_class(self, host):
                    """inherits the class's step"""
        ''',
    )
    checks = checkdoc.read_checks(lab)
    assert [(c.name, c.description, c.step, c.until) for c in checks] == [
        ("test_first", "first line wins", "a", "b"),
        ("test_no_docstring_here", "no docstring here", "b", None),
        ("test_in_class", "inherits the class's step", "a", None),
    ]
    page = docpages.render_lab_page(lab)
    assert "- first line wins (until step 2, `b`)" in page
    assert "Once this step has run, these no longer hold:" in page


@pytest.mark.parametrize(
    ("checks", "message"),
    [
        ("def test_unmarked(host):\n    pass\n", "has no @pytest.mark.step"),
        (
            'import pytest\n@pytest.mark.step("zz")\ndef test_x(host):\n    pass\n',
            "unknown step 'zz'",
        ),
        (
            'import pytest\n@pytest.mark.step("a", until="q")\ndef test_x(host):\n    pass\n',
            "until=",
        ),
        ("import pytest\nS = 'a'\n@pytest.mark.step(S)\ndef test_x(host):\n    pass\n", "literals"),
        ("def test_x(:\n", "not valid Python"),
    ],
)
def test_read_checks_names_the_problem(tmp_path: Path, checks: str, message: str) -> None:
    lab = make_lab(tmp_path, "broken", [{"id": "a", "command": "true"}], checks=checks)
    with pytest.raises(UsageError, match=re.escape(message)) as info:
        checkdoc.read_checks(lab)
    assert "checks.py:" in info.value.message


def test_seed_map_of_the_real_seed_against_a_pair_of_labs(pair: list[Lab]) -> None:
    seed_map = seedmap.seed_command_map(SEED.read_text(encoding="utf-8"), pair)
    carried = {
        entry.command.text: [f"{ref.lab}/{ref.step}" for ref in entry.steps]
        for entry in seed_map.entries
    }
    assert carried["sudo ip netns list"] == ["ns/list"]
    assert carried["sudo mkdir -p /var/run/netns/"] == ["ns/link"]
    assert carried["sudo ln -sf /proc/$pid/ns/net /var/run/netns/nstest"] == ["ns/link"]
    assert carried["sudo iptables -t nat -L -n"] == ["ns/nat"]
    assert carried["curl -XGET http://localhost:5000"] == ["web/curl"]
    assert carried["docker logs -f <python3.7-container-name>"] == ["web/logs"]
    # `sudo ip netns` is a prefix of the lab's `sudo ip netns list`, not the same command
    assert carried["sudo ip netns"] == []
    mapped = {
        "sudo ip netns list",
        "sudo mkdir -p /var/run/netns/",
        "sudo ln -sf /proc/$pid/ns/net /var/run/netns/nstest",
        "sudo iptables -t nat -L -n",
        "curl -XGET http://localhost:5000",
        "docker logs -f <python3.7-container-name>",
    }
    assert [c.text for c in seed_map.unmapped] == [c for c in SEED_COMMANDS if c not in mapped]
    assert [f"{r.lab}/{r.step}" for r in seed_map.extra_steps] == ["web/extra"]

    text = docpages.render_seed_map(seed_map)
    rows = [line for line in text.splitlines() if re.match(r"^\| \d+ \|", line)]
    assert len(rows) == len(SEED_COMMANDS)
    assert sum("**not in a lab**" in row for row in rows) == len(SEED_COMMANDS) - len(mapped)
    assert "`ip a \\| grep docker`" in text  # a pipe inside a table cell is escaped
    assert "[ns 3. Step nat](labs/ns.md#step-nat)" in text
    assert "[web 3. Step extra](labs/web.md#step-extra)" in text
    assert text == docpages.render_seed_map(seedmap.seed_command_map(SEED.read_text(), pair[::-1]))


@pytest.mark.parametrize(
    ("command", "seed", "carried"),
    [
        ("sudo ip netns", "sudo ip netns", True),
        ("sudo ip netns list", "sudo ip netns", False),
        ("echo x; sudo  ip netns && true", "sudo ip netns", True),
        ("docker logs http-server 2>&1 | grep -q x", "docker logs http-server", True),
        ("sudo docker logs x", "docker logs x", False),
        ("# sudo ip netns", "sudo ip netns", False),
        ("ip a | grep docker", "ip a | grep docker", True),
        ("ip a | grep dockerd", "ip a | grep docker", False),
    ],
)
def test_contains_command(command: str, seed: str, carried: bool) -> None:
    assert seedmap.contains_command(command, seed) is carried


def test_index_links_every_lab_and_the_other_pages(pair: list[Lab]) -> None:
    index = docpages.render_index(pair)
    assert index.index("(labs/ns.md)") < index.index("(labs/web.md)")  # sorted by name
    assert "(writing-labs.md)" in index and "(seed-map.md)" in index
    assert "with a pipe" in index and "\\|" in index


def test_write_docs_then_check_docs_detects_drift(tmp_path: Path, pair: list[Lab]) -> None:
    seed = SEED.read_text(encoding="utf-8")
    out = tmp_path / "docs"
    written = docpages.write_docs(out, pair, seed)
    assert sorted(p.relative_to(out).as_posix() for p in written) == [
        "checklib.md",
        "index.md",
        "labs/ns.md",
        "labs/web.md",
        "recordings.md",
        "seed-map.md",
    ]
    assert docpages.check_docs(out, pair, seed) == []

    page = out / "labs" / "web.md"
    page.write_text(page.read_text() + "a hand edit\n")
    (out / "index.md").unlink()
    assert docpages.check_docs(out, pair, seed) == [out / "index.md", page]

    docpages.write_docs(out, pair, seed)
    assert docpages.check_docs(out, pair, seed) == []

    # A lab file that changes makes its page drift.
    yaml_file = pair[0].path / "lab.yaml"
    yaml_file.write_text(yaml_file.read_text().replace("Step curl", "Step curl, renamed"))
    changed = [load_lab_dir(pair[0].path), pair[1]]
    assert docpages.check_docs(out, changed, seed) == [page, out / "seed-map.md"]

    # A page of a lab that is gone is drift too; write_docs removes it (only generated pages).
    own = out / "labs" / "notes.md"
    own.write_text("# my notes\n")
    assert docpages.check_docs(out, [pair[1]], seed) == [
        out / "index.md",
        out / "labs" / "web.md",
        out / "seed-map.md",
    ]
    docpages.write_docs(out, [pair[1]], seed)
    assert not page.exists() and own.exists()
    assert docpages.check_docs(out, [pair[1]], seed) == []


def test_markdown_helpers() -> None:
    assert docpages.md_code("a  b") == "`a b`"
    assert docpages.md_code("x `y` z") == "`` x `y` z ``"
    assert docpages.md_fence("no ticks") == "```"
    assert docpages.md_fence("has ```` four") == "`````"
    assert docpages.md_cell("a | b\nc") == "a \\| b c"


def test_every_seed_command_is_run_by_a_lab_step() -> None:
    """The seed tutorial has no command that no lab step runs."""
    from labgen.core.lab import iter_labs

    seed = docpages.default_seed_path().read_text(encoding="utf-8")
    mapping = seedmap.seed_command_map(seed, list(iter_labs()))
    assert mapping.mapped, "the map found no seed command at all"
    assert [c.text for c in mapping.unmapped] == []


def test_the_committed_docs_match_the_lab_files() -> None:
    """docs/ is generated from the labs: `labgen docs` after changing a lab file."""
    from labgen.core.lab import iter_labs

    repo_docs = Path(__file__).resolve().parents[2] / "docs"
    seed = docpages.default_seed_path().read_text(encoding="utf-8")
    assert docpages.check_docs(repo_docs, list(iter_labs()), seed) == []


def _recorded(lab_dir: Path, engine: str, step: str, output: str) -> None:
    docker = {"20.10": "20.10.24+dfsg1", "26.1": "26.1.5+dfsg1", "28.5": "28.5.2+dfsg4"}[engine]
    rec = recordings.Recording(
        lab_dir.name, step, engine, docker, "0.2.0", "2026-11-25", (), output
    )
    recordings.write(lab_dir, rec)


@pytest.fixture
def recorded_labs(tmp_path: Path) -> list[Lab]:
    """The seed labs, copied, with made-up recordings of some steps on 20.10 and 28.5."""
    import shutil

    labs = []
    for lab in iter_labs():
        folder = tmp_path / lab.name
        shutil.copytree(lab.path, folder, ignore=shutil.ignore_patterns("recorded"))
        labs.append(load_lab_dir(folder))
    pf = tmp_path / "port-forwarding"
    _recorded(pf, "20.10", "publish-port", "DNAT 6 -- 0.0.0.0/0 tcp dpt:5000 to:172.17.0.2:5000\n")
    _recorded(pf, "28.5", "publish-port", "DNAT tcp -- 0.0.0.0/0 tcp dpt:5000 to:172.17.0.2:5000\n")
    _recorded(pf, "20.10", "curl", "")
    _recorded(tmp_path / "netns", "20.10", "ip-netns", "nstest (id: 1)\n")
    _recorded(tmp_path / "netns", "28.5", "ip-netns", "nstest (id: 1)\n")
    return labs


def test_lab_page_shows_recorded_outputs_per_engine_default_first(
    recorded_labs: list[Lab],
) -> None:
    lab = next(lab for lab in recorded_labs if lab.name == "port-forwarding")
    page = docpages.render_lab_page(lab)
    step = page[page.index('<a id="step-publish-port">') : page.index('<a id="step-curl">')]
    outputs, pictures = step.split("The machine after this step")  # publish-port: draw: true
    tabs = re.findall(r'^=== "Docker ([\d.]+)"$', outputs, re.M)
    assert tabs == [lab.spec.engine, *[e for e in lab.engines if e != lab.spec.engine]]
    assert re.findall(r'^=== "Docker ([\d.]+)"$', pictures, re.M) == tabs
    assert "    DNAT 6 -- 0.0.0.0/0 tcp dpt:5000" in step  # inside the 20.10 tab
    assert "*Recorded on Docker 20.10.24+dfsg1, labgen 0.2.0, 2026-11-25.*" in step
    assert "*Recorded on Docker 28.5.2+dfsg4, labgen 0.2.0, 2026-11-25.*" in step
    assert "Not recorded on Docker 26.1 yet" in step
    curl = page[page.index('<a id="step-curl">') :]
    assert "The step printed nothing." in curl.split("=== ")[1]
    # A lab without any recording shows no step's output, and compares nothing.
    bare = docpages.render_lab_page(next(lab for lab in recorded_labs if lab.name == "bridge"))
    assert "What it printed" not in bare and "This lab has no recordings yet" in bare


def test_every_seed_listing_stands_beside_a_step_that_exists() -> None:
    shown = listings.seed_listings(SEED.read_text(encoding="utf-8"))
    assert [x.command for x in shown] == [
        "sudo ip netns",
        "sudo ip netns exec nstest ip a",
        "ip a | grep docker",
        "ip a | grep 139913",
        "brctl show",
        "sudo iptables -t nat -L -n",
        "sudo iptables -t nat -L -n",
        "docker logs -f <python3.7-container-name>",
        "sudo iptables -t nat -L -n",
        "docker logs -f <python3.7-container-name>",
    ]
    steps = {(lab.name, s.id) for lab in iter_labs() for s in lab.steps}
    for listing in shown:
        source = listings.listing_source(listing)
        assert source is not None and (source.lab, source.step) in steps and source.why
        assert listing.compared.strip() and "# " not in listing.compared


def test_seed_map_sets_listings_beside_recordings_and_marks_typos(
    recorded_labs: list[Lab],
) -> None:
    seed = SEED.read_text(encoding="utf-8")
    page = docpages.render_seed_map(
        seedmap.seed_command_map(seed, recorded_labs), seed, recorded_labs
    )
    section = page[page.index("(§3.1, line 100)") :]
    section = section[: section.index("\n### ")]
    assert '=== "The tutorial"' in section and '=== "labgen, Docker 28.5"' in section
    assert "    DNAT tcp -- 0.0.0.0/0 tcp dpt:5000" in section
    assert "-DNAT       tcp  --  0.0.0.0/0            0.0.0.0/0            tcp dpt:5000" in section
    assert "+DNAT 6 -- 0.0.0.0/0 tcp dpt:5000 to:172.17.0.2:5000" in section  # tutorial -> 20.10
    assert "Docker 28 writes no hairpin" in section
    netns = page[page.index("### 1. `sudo ip netns`") :]
    assert "-nstest (id: 4)\n    +nstest (id: 1)" in netns
    typos = page[page.index("## The tutorial's typos") :]
    assert "line 59: `kernetl` is `kernel`" in typos and "line 180: `127.17.0.2`" in typos


def test_recordings_page_lists_every_rule() -> None:
    page = docpages.render_recording_rules()
    assert all(f". `{rule.name}`\n\n{rule.why}." in page for rule in recordings.RULES)


def test_the_site_lists_every_page() -> None:
    """mkdocs.yml's nav, with the lab pages its hook adds, names every page under docs/
    (the seed tutorial is left out)."""
    import importlib.util

    import yaml

    config = yaml.safe_load((REPO / "mkdocs.yml").read_text(encoding="utf-8"))
    assert config["theme"]["font"] is False  # no Google Fonts: the site works offline
    spec = importlib.util.spec_from_file_location("mkdocs_hooks", REPO / "mkdocs_hooks.py")
    assert spec is not None and spec.loader is not None
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    config = hooks.on_config({**config, "docs_dir": str(REPO / config["docs_dir"])})

    def pages(nav: object) -> list[str]:
        if isinstance(nav, str):
            return [nav]
        if isinstance(nav, list):
            return [p for item in nav for p in pages(item)]
        if isinstance(nav, dict):
            return [p for value in nav.values() for p in pages(value)]
        return []

    docs = REPO / "docs"
    on_disk = {p.relative_to(docs).as_posix() for p in docs.rglob("*.md")}
    assert set(pages(config["nav"])) == {p for p in on_disk if not p.startswith("seed/")}
