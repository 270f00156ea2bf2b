"""An instructor's bundle comes up with plain Vagrant, and its in-machine helper passes the lab."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import labgen, show
from labgen.core.lab import load_lab
from labgen.machine.providers import docker

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


# --- issue 14, item 9: a bundle works for every attendee ------------------------------

HOST_COMMAND = re.compile(r"(^|`|\$ )labgen\s", re.MULTILINE)
LINK = re.compile(r"\]\(([^)\s]+)\)")


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A folder other users can reach (pytest's tmp_path sits in a 0700 folder)."""
    folder = Path(tempfile.mkdtemp(prefix="labgen-bundle-test-", dir="/tmp"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def as_nobody(*args: str) -> subprocess.CompletedProcess[str]:
    """ARGS run as the unprivileged user nobody, as another attendee on this host."""
    cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def test_bundle_with_images_is_readable_by_others_and_speaks_only_of_what_they_have(
    shared_dir: Path,
) -> None:
    bundle = shared_dir / "pf-bundle"
    old_umask = os.umask(0o022)
    try:
        proc = labgen("render", LAB, "-o", str(bundle), "--with-images")
    finally:
        os.umask(old_umask)
    assert proc.returncode == 0, show(proc)

    # Every file and folder readable by others (the key too: every copy carries it).
    for path in [bundle, *bundle.rglob("*")]:
        mode = path.stat().st_mode
        wanted = stat.S_IROTH | (stat.S_IXOTH if path.is_dir() else 0)
        assert mode & wanted == wanted, f"{path}: mode {oct(mode & 0o777)}"
    # ... as another user sees it: the folder copies, the image tarball reads.
    home = shared_dir / "nobody"
    home.mkdir()
    os.chown(home, 65534, 65534)
    copy = as_nobody("cp", "-r", str(bundle), str(home / "lab"))
    assert copy.returncode == 0, copy.stderr
    listed = as_nobody("tar", "-tf", str(bundle / "images" / "labgen-base.tar"))
    assert listed.returncode == 0 and "manifest.json" in listed.stdout.split(), listed.stderr

    # The README tells attendees only commands they have, and links only to its files.
    readme = (bundle / "README.md").read_text(encoding="utf-8")
    assert not HOST_COMMAND.search(readme), HOST_COMMAND.search(readme)
    for required in ("vagrant up --provider=docker", "vagrant ssh", "labgen-lab run", "cp -r"):
        assert required in readme
    for target in LINK.findall(readme):
        if target.startswith(("http://", "https://", "#")):
            continue
        assert (bundle / target.split("#")[0]).exists(), f"README links to missing {target}"
    lab = load_lab(LAB)
    for step in lab.steps:
        assert step.title in readme and f"labgen-lab run {step.id}" in readme


def test_two_copies_of_a_bundle_on_one_host_with_the_hosts_resolvers(
    shared_dir: Path,
) -> None:
    """Two attendees on one host: each copy is its own machine (no "Conflict"), and
    each asks this host's resolvers, which the bundle does not carry."""
    bundle = shared_dir / "bundle"
    proc = labgen("render", LAB, "-o", str(bundle))
    assert proc.returncode == 0, show(proc)
    vagrantfile = (bundle / "Vagrantfile").read_text(encoding="utf-8")
    for server in docker.nameservers():
        assert server not in vagrantfile, f"the renderer's resolver {server} is baked in"

    copies = [shared_dir / "alice", shared_dir / "bob"]
    for copy in copies:
        shutil.copytree(bundle, copy)
    try:
        for copy in copies:
            up = vagrant(copy, "up", "--provider=docker")
            assert up.returncode == 0, show(up)
        names = {
            json.loads(
                subprocess.run(
                    [
                        "docker",
                        "inspect",
                        (copy / ".vagrant/machines/default/docker/id").read_text().strip(),
                    ],
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout
            )[0]["Name"]
            for copy in copies
        }
        assert len(names) == 2, names
        resolv = vagrant(copies[0], "ssh", "-c", "cat /etc/resolv.conf")
        assert resolv.returncode == 0, show(resolv)
        servers = [w.split()[1] for w in resolv.stdout.splitlines() if w.startswith("nameserver")]
        assert servers == docker.nameservers(), resolv.stdout
    finally:
        for copy in copies:
            if (copy / ".vagrant").exists():
                down = vagrant(copy, "destroy", "-f")
                assert down.returncode == 0, show(down)


def test_render_into_the_current_folder_or_through_a_link(tmp_path: Path) -> None:
    """Regression: `render -o .` and `-o LINK` ended in a traceback. Now the bundle goes
    into the folder they name; a folder that is not empty is refused (exit 2)."""
    here = tmp_path / "here"
    here.mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "labgen", "render", LAB, "-o", "."],
        cwd=here,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, show(proc)
    assert (here / "Vagrantfile").is_file() and (here / "README.md").is_file()
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    proc = labgen("render", LAB, "-o", str(tmp_path / "link"))
    assert proc.returncode == 0, show(proc)
    assert (real / "Vagrantfile").is_file()
    again = labgen("render", LAB, "-o", str(tmp_path / "link"))
    assert again.returncode == 2 and "not empty" in again.stderr
    assert "Traceback" not in again.stderr
