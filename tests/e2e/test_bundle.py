"""An instructor's bundle comes up with plain Vagrant, and its in-machine helper passes the lab."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from helpers import labgen, show

pytestmark = pytest.mark.e2e

LAB = "port-forwarding"


def vagrant(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, VAGRANT_CHECKPOINT_DISABLE="1")
    return subprocess.run(
        ["vagrant", *args], cwd=folder, env=env, capture_output=True, text=True, timeout=600
    )


def test_bundle_with_plain_vagrant(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    proc = labgen("render", LAB, "-o", str(bundle))
    assert proc.returncode == 0, show(proc)
    readme = (bundle / "README.md").read_text()
    assert "vagrant up --provider=docker" in readme and "labgen-lab check" in readme
    try:
        up = vagrant(bundle, "up", "--provider=docker")
        assert up.returncode == 0, show(up)
        walk = (
            "set -e; for s in $(cat /opt/labgen/port-forwarding/steps/ORDER); do "
            "labgen-lab run $s >/dev/null; done; labgen-lab check"
        )
        checked = vagrant(bundle, "ssh", "-c", walk)
        assert checked.returncode == 0, show(checked)
        assert " passed" in checked.stdout and "failed" not in checked.stdout
    finally:
        down = vagrant(bundle, "destroy", "-f")
        assert down.returncode == 0, show(down)


def test_render_refuses_a_folder_that_is_not_empty(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    proc = labgen("render", LAB, "-o", str(tmp_path))
    assert proc.returncode == 2, show(proc)
    assert "not empty" in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]
