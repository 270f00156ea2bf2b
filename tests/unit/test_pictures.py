"""The wiring pictures on the lab pages (issue 22 item 5): a step marked `draw: true`
has its wiring recorded by verify --record, normalised so that a second record changes
nothing, and the lab's page draws it per engine."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from labgen.core.errors import LabgenError
from labgen.core.lab import load_lab_dir
from labgen.docs import pages, recordings
from labgen.network import wiring
from unit_helpers import REPO, invoke_labgen

DATA = Path(__file__).parent / "data" / "wiring"
PUBLISH = "port-forwarding-20.10-publish-port.txt"


def rerun(raw: str) -> str:
    """The same gathering as another run of the same lab would give it: other inodes,
    other interface indexes (all shifted alike), another veth name, other MACs, another
    address for the machine's eth0 outside."""
    raw = re.sub(r"(@@labgen-wiring ns \S+ \S+ )(\d+)", lambda m: m[1] + str(int(m[2]) + 7), raw)
    raw = re.sub(r'"(ifindex|link_index)":(\d+)', lambda m: f'"{m[1]}":{int(m[2]) + 40}', raw)
    raw = re.sub(r"veth[0-9a-f]{7}", "veth0ddba11", raw)
    raw = re.sub(
        r'"address":"(?!00:00:00:00:00:00|ff:)[0-9a-f:]{17}"', '"address":"aa:bb:cc:00:11:22"', raw
    )
    machine_eth0 = re.search(r'"ifname":"eth0".*?"local":"(?!172\.17\.)([\d.]+)"', raw, re.S)
    assert machine_eth0 is not None, "the fixture's machine has an eth0 address outside"
    return raw.replace(machine_eth0[1], "10.99.0.7")


def test_a_second_run_of_the_same_lab_records_the_same_wiring() -> None:
    raw = (DATA / PUBLISH).read_text()
    first = wiring.to_json(wiring.normalised(wiring.parse(raw)))
    second = wiring.to_json(wiring.normalised(wiring.parse(rerun(raw))))
    assert first == second
    assert "veth0ddba11" not in second and "10.99.0.7" not in second
    assert "aa:bb:cc" not in second


def test_a_real_difference_still_shows() -> None:
    raw = (DATA / PUBLISH).read_text()
    first = wiring.to_json(wiring.normalised(wiring.parse(raw)))
    moved = raw.replace('"local":"172.17.0.2"', '"local":"172.17.0.3"')
    assert moved != raw
    assert wiring.to_json(wiring.normalised(wiring.parse(moved))) != first


def test_normalising_keeps_the_pairs_and_the_published_port() -> None:
    found = wiring.parse((DATA / PUBLISH).read_text())
    stable = wiring.normalised(found)
    assert len(stable.pairs) == len(found.pairs) == 1
    ((a, b),) = stable.pairs
    ends = {stable.namespace(a.inode).title, stable.namespace(b.inode).title}
    assert ends == {"the machine", "container http-server"}
    # Each end still names the other's (renumbered) index, as `ip a` shows it.
    ia = stable.namespace(a.inode).interface(a.index)
    ib = stable.namespace(b.inode).interface(b.index)
    assert ia is not None and ib is not None
    assert (ia.peer_index, ib.peer_index) == (b.index, a.index)
    assert stable.published == found.published
    assert wiring.from_json(wiring.to_json(stable)) == stable
    assert wiring.normalised(stable) == stable


def test_a_file_that_is_no_wiring_is_refused() -> None:
    with pytest.raises(wiring.WiringError, match="not a recorded wiring"):
        wiring.from_json('{"namespaces": 3}')


def lab_copy(tmp_path: Path) -> Path:
    """The bundled port-forwarding lab, copied with its recordings: publish-port is
    marked `draw: true` there."""
    folder = tmp_path / "port-forwarding"
    shutil.copytree(REPO / "labs" / "port-forwarding", folder)
    return folder


def step_section(page: str, step: str) -> str:
    start = page.index(f'<a id="step-{step}"></a>')
    end = page.find('<a id="step-', start + 1)
    return page[start : end if end >= 0 else len(page)]


def test_the_page_draws_each_engines_recorded_wiring_before_the_checks(tmp_path: Path) -> None:
    folder = lab_copy(tmp_path)
    text = wiring.to_json(wiring.normalised(wiring.parse((DATA / PUBLISH).read_text())))
    for engine in ("20.10", "26.1", "28.5"):
        for old in (folder / "recorded" / engine).glob(f"*{recordings.WIRING_SUFFIX}"):
            old.unlink()
    recordings.write_wiring(folder, "20.10", "publish-port", text)
    lab = load_lab_dir(folder)
    assert lab.step("publish-port").draw
    section = step_section(pages.render_lab_page(lab, tmp_path), "publish-port")
    assert section.count("<svg ") == 1
    picture = section.index("<svg ")
    assert picture < section.index("The checks confirm, right after this step")
    assert section.index('=== "Docker 20.10"\n\n    <div class="labgen-wiring"') < picture
    assert ">http&#45;server<" in section or "http-server" in section
    assert (
        "Not drawn on Docker 28.5 yet: `labgen verify port-forwarding --engine 28.5 --record`"
        in section
    )
    # A step not marked draw: true has no picture.
    assert "<svg " not in step_section(pages.render_lab_page(lab, tmp_path), "curl")


def test_re_recording_the_same_wiring_writes_nothing_and_stale_ones_go(tmp_path: Path) -> None:
    text = '{"namespaces": []}\n'
    assert recordings.write_wiring(tmp_path, "28.5", "a", text)
    assert not recordings.write_wiring(tmp_path, "28.5", "a", text)
    recordings.write_wiring(tmp_path, "28.5", "b", text)
    assert recordings.load_wirings(tmp_path, "28.5") == {"a": text, "b": text}
    gone = recordings.remove_stale_wirings(tmp_path, "28.5", ["a"])
    assert [p.name for p in gone] == ["b.wiring.json"]
    assert recordings.load_wirings(tmp_path, "28.5") == {"a": text}
    # The text recordings' loader sees none of them.
    assert recordings.load(tmp_path, "28.5") == {}


def test_draw_must_be_true_or_false(tmp_path: Path) -> None:
    folder = lab_copy(tmp_path)
    lab_file = folder / "lab.yaml"
    lab_file.write_text(lab_file.read_text().replace("draw: true", 'draw: "yes"', 1))
    with pytest.raises(LabgenError, match="draw"):
        load_lab_dir(folder)


def test_lint_names_the_draw_field_and_its_line(tmp_path: Path) -> None:
    folder = lab_copy(tmp_path)
    lab_file = folder / "lab.yaml"
    text = lab_file.read_text()
    lab_file.write_text(text.replace("draw: true", "draw: 1", 1))
    line = text[: text.index("draw: true")].count("\n") + 1
    found = invoke_labgen("lint", str(folder))
    assert found.returncode == 2
    assert f"lab.yaml:{line}: field 'steps[1].draw': Input should be a valid boolean" in (
        found.stdout + found.stderr
    )
