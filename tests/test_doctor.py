"""labgen doctor's probes, each gap made real: a missing command, a socket that is not there."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest
from helpers import labgen


def probes(env_changes: dict[str, str]) -> dict[str, dict[str, dict[str, object]]]:
    old = {k: os.environ.get(k) for k in env_changes}
    os.environ.update(env_changes)
    try:
        proc = labgen("doctor", "--json")
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    data = json.loads(proc.stdout)
    return {h["provider"]: {p["name"]: p for p in h["probes"]} for h in data}


def path_without(*commands: str, tmp: Path) -> str:
    """A PATH that has python but none of `commands`."""
    bindir = tmp / "bin"
    bindir.mkdir()
    (bindir / "python").symlink_to(sys.executable)
    keep = [
        d
        for d in os.environ["PATH"].split(os.pathsep)
        if not any((Path(d) / c).exists() for c in commands)
    ]
    return os.pathsep.join([str(bindir), *keep])


def test_missing_vagrant_is_named_with_its_fix(tmp_path: Path) -> None:
    result = probes({"PATH": path_without("vagrant", tmp=tmp_path)})
    vagrant = result["docker"]["vagrant"]
    assert vagrant["ok"] is False
    assert "not on PATH" in vagrant["detail"]
    assert "apt-get install vagrant" in vagrant["fix"]


@pytest.mark.skipif(shutil.which("docker") is None, reason="needs the docker client")
def test_unreachable_docker_daemon_is_named_with_its_fix(tmp_path: Path) -> None:
    result = probes({"DOCKER_HOST": f"unix://{tmp_path}/no-such.sock"})
    docker = result["docker"]["docker"]
    assert docker["ok"] is False
    assert "does not answer" in docker["detail"]
    assert "dockerd" in docker["fix"]


# In CI's libvirt stage (-m libvirt), where virsh is installed: the main stage runs
# before libvirt's client is, and would only ever skip it.
@pytest.mark.libvirt
@pytest.mark.skipif(shutil.which("virsh") is None, reason="needs libvirt's client")
def test_unreachable_libvirtd_is_named_with_its_fix(tmp_path: Path) -> None:
    uri = f"qemu+unix:///system?socket={tmp_path}/no-such-sock"
    result = probes({"LIBVIRT_DEFAULT_URI": uri})
    libvirtd = result["libvirt"]["libvirtd"]
    assert libvirtd["ok"] is False
    assert "does not answer" in libvirtd["detail"]
    assert "libvirtd" in libvirtd["fix"]


def test_missing_virtualbox_is_named_with_its_fix(tmp_path: Path) -> None:
    result = probes({"PATH": path_without("VBoxManage", tmp=tmp_path)})
    vbox = result["virtualbox"]["VBoxManage"]
    assert vbox["ok"] is False and "VirtualBox" in vbox["detail"] and vbox["fix"]


@pytest.mark.skipif(shutil.which("docker") is None, reason="needs the docker client")
def test_up_stops_before_creating_anything_when_docker_is_down(
    tmp_path: Path, labgen_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-such.sock")
    proc = labgen("up", "port-forwarding", "--provider", "docker")
    assert proc.returncode == 2
    assert "docker provider is not ready" in proc.stderr
    assert "dockerd" in proc.stderr  # the fix
    assert "Traceback" not in proc.stderr
    assert not (labgen_home / "instances").exists() or not any(
        (labgen_home / "instances").iterdir()
    )
