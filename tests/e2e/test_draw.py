"""`labgen draw` on a real netns machine: the picture holds the linked nstest namespace,
its eth0 with 172.17.0.2/16 and the veth peer on docker0."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import labgen, show

pytestmark = pytest.mark.e2e


def test_netns_after_its_steps(bring_up: Callable[[str], str], tmp_path: Path) -> None:
    bring_up("netns")
    svg = tmp_path / "netns.svg"
    proc = labgen("draw", "netns", "--step", "host-veth", "-o", str(svg), "--json")
    assert proc.returncode == 0, show(proc)
    picture = json.loads(proc.stdout)
    assert picture["steps_run"][-1] == "host-veth" and picture["size"] == svg.stat().st_size
    wiring = picture["wiring"]
    nstest = next(ns for ns in wiring["namespaces"] if "netns nstest" in ns["names"])
    assert "container nstest" in nstest["names"]
    eth0 = next(i for i in nstest["interfaces"] if i["name"] == "eth0")
    assert eth0["ipv4"] == ["172.17.0.2/16"]
    machine = next(ns for ns in wiring["namespaces"] if ns["kind"] == "machine")
    pair = next(
        p for p in wiring["veth_pairs"] if {"inode": nstest["inode"], "index": eth0["index"]} in p
    )
    peer = next(e for e in pair if e["inode"] == machine["inode"])
    veth = next(i for i in machine["interfaces"] if i["index"] == peer["index"])
    assert veth["master"] == "docker0" and veth["kind"] == "veth"
    assert eth0["label"] == f"eth0@if{veth['index']}"

    text = svg.read_text()
    ET.fromstring(text)
    for shown in ("netns nstest", eth0["label"], "172.17.0.2/16", veth["label"], "docker0"):
        assert shown in text, shown

    png = tmp_path / "netns.png"
    again = labgen("draw", "netns", "-o", str(png))
    assert again.returncode == 0, show(again)
    assert png.read_bytes().startswith(b"\x89PNG")
    assert "veth pair" in again.stdout

    past = labgen("draw", "netns", "--step", "run-container", "-o", str(tmp_path / "x.svg"))
    assert past.returncode == 2 and "past step" in past.stderr, show(past)
