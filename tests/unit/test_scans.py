"""A scan that could not look is an error, never "nothing found" (issue 17, item 4).

The real leftovers scans, `labgen status` and the scratch directory's unmount run
against `docker`, `virsh` and `umount` replaced by small shell scripts in tmp_path
that fail, hang or answer; no machine exists and none is pretended to. The timeouts
are the modules' own constants, shortened.
"""

from __future__ import annotations

import os
import shlex
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from labgen.core import resources
from labgen.core.errors import MachineError
from labgen.machine import providers, recipe, rootfs
from labgen.machine.instance import Instance, InstanceState
from labgen.machine.providers import docker as docker_mod
from labgen.machine.providers import libvirt as libvirt_mod
from labgen.machine.providers.base import Leftover
from labgen.verbs import status
from unit_helpers import REPO, invoke_labgen

FAILS = 'echo "Cannot connect to the Docker daemon at unix:///var/run/docker.sock" >&2; exit 1'
HANGS = "exec sleep 30"

# tools(docker=BODY, ...): writes each tool as a shell script first on PATH.
Tools = Callable[..., Path]


@pytest.fixture
def libvirtd_listens(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Someone listens on libvirtd's socket: a running daemon, which virsh must ask."""
    path = tmp_path / "libvirt-sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(str(path))
        listener.listen()
        monkeypatch.setattr(libvirt_mod, "LIBVIRTD_SOCKET", path)
        yield


@pytest.fixture
def tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, libvirtd_listens: None) -> Tools:
    """tools(docker=BODY, virsh=BODY, ...): each a /bin/sh script first on PATH; libvirtd
    "runs" (its socket listens), so a fake virsh is what answers for it."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")

    def write(**bodies: str) -> Path:
        for name, body in bodies.items():
            script = bin_dir / name
            script.write_text(f"#!/bin/sh\n{body}\n", encoding="utf-8")
            script.chmod(0o755)
        return bin_dir

    return write


@pytest.fixture
def short_timeouts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(docker_mod, "SCAN_TIMEOUT", 0.5)
    monkeypatch.setattr(libvirt_mod, "SCAN_TIMEOUT", 0.5)
    monkeypatch.setattr(rootfs, "UMOUNT_TIMEOUT", 0.5)


def make_instance(name: str) -> None:
    Instance(name).save(
        InstanceState(
            instance=name,
            lab="port-forwarding",
            lab_path=str(REPO / "labs" / "port-forwarding"),
            provider="docker",
            render_digest="0" * 64,
            created="2024-01-01T00:00:00+00:00",
        )
    )


# --- docker ------------------------------------------------------------------------


def test_docker_leftovers_raise_when_the_daemon_does_not_answer(tools: Tools) -> None:
    tools(docker=FAILS)
    with pytest.raises(MachineError) as caught:
        providers.get("docker").leftovers()
    err = caught.value
    assert "could not look for labgen's containers" in err.message
    assert "`docker ps -a --filter label=org.labgen.home=" in err.message
    assert "Cannot connect to the Docker daemon" in err.message
    assert "{{" not in err.message  # the format template tells a user nothing
    assert err.hint and "systemctl start docker" in err.hint


def test_docker_leftovers_raise_when_the_daemon_hangs(tools: Tools, short_timeouts: None) -> None:
    tools(docker=HANGS)
    with pytest.raises(MachineError, match=r"`docker ps -a .*` did not answer in 0.5 s"):
        providers.get("docker").leftovers("pf")


def test_docker_leftovers_raise_when_only_the_network_listing_fails(tools: Tools) -> None:
    tools(docker='[ "$1" = ps ] && exit 0; echo "network ls: permission denied" >&2; exit 1')
    with pytest.raises(MachineError, match=r"labgen's networks: `docker network ls .*denied"):
        providers.get("docker").leftovers()


def test_docker_leftovers_are_read_from_an_answer(tools: Tools) -> None:
    """The logic around a listing that worked: one leftover per line, by kind."""
    tools(
        docker='case "$1" in\n'
        '  ps) printf "c0ffee\\tpf\\tlabgen-pf\\n" ;;\n'
        '  network) printf "beef01\\tpf\\tlabgen-pf-net\\n" ;;\n'
        "esac"
    )
    assert providers.get("docker").leftovers("pf") == [
        Leftover("docker", "pf", "container", "c0ffee"),
        Leftover("docker", "pf", "network", "beef01"),
    ]


def test_docker_leftovers_are_none_without_a_docker_client(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No client, nothing labgen could have made: not a failed look."""
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert providers.get("docker").leftovers() == []


def test_docker_remove_raises_when_the_container_stays(tools: Tools) -> None:
    tools(docker='echo "Error response from daemon: device or resource busy" >&2; exit 1')
    with pytest.raises(MachineError) as caught:
        providers.get("docker").remove(Leftover("docker", "pf", "container", "c0ffee"))
    assert "`docker rm -f c0ffee` failed" in caught.value.message
    assert "resource busy" in caught.value.message
    assert "labgen destroy pf" in (caught.value.hint or "")


def test_docker_remove_of_what_is_already_gone_is_done(tools: Tools) -> None:
    tools(docker='echo "Error response from daemon: network labgen-x not found" >&2; exit 1')
    providers.get("docker").remove(Leftover("docker", "pf", "network", "labgen-x"))


# --- libvirt -----------------------------------------------------------------------


def test_libvirt_leftovers_raise_when_libvirtd_does_not_answer(
    tools: Tools, libvirtd_listens: None
) -> None:
    tools(virsh='echo "error: failed to connect to the hypervisor" >&2; exit 1')
    with pytest.raises(MachineError) as caught:
        providers.get("libvirt").leftovers()
    assert "could not look for labgen's libvirt domains" in caught.value.message
    assert "list --all --name` failed: error: failed to connect" in caught.value.message
    assert "labgen doctor" in (caught.value.hint or "")


def test_libvirt_leftovers_raise_when_libvirtd_hangs(
    tools: Tools, short_timeouts: None, libvirtd_listens: None
) -> None:
    tools(virsh=HANGS)
    with pytest.raises(MachineError, match=r"did not answer in 0.5 s"):
        providers.get("libvirt").leftovers("pf")


def test_libvirt_leftovers_are_read_from_an_answer(tools: Tools) -> None:
    tag = resources.home_tag()
    names = [f"labgen-pf-{tag}-default", "labgen-pf-othertag-default", "someone-elses"]
    tools(virsh=f"printf '%s\\n' {' '.join(shlex.quote(n) for n in names)}")
    assert providers.get("libvirt").leftovers() == [
        Leftover("libvirt", "pf", "domain", f"labgen-pf-{tag}-default")
    ]
    assert providers.get("libvirt").leftovers("other") == []


def test_a_stopped_libvirtds_domains_are_read_from_its_files(
    tools: Tools, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Installed, never started: the socket refuses, and virsh is not even asked.
    tools(virsh='echo "error: failed to connect to the hypervisor" >&2; exit 1')
    config, running = tmp_path / "qemu", tmp_path / "run-qemu"
    config.mkdir()
    tag = resources.home_tag()
    (config / f"labgen-pf-{tag}-default.xml").write_text("<domain/>", encoding="utf-8")
    (config / "autostart").mkdir()
    monkeypatch.setattr(libvirt_mod, "LIBVIRTD_SOCKET", tmp_path / "no-socket")
    monkeypatch.setattr(libvirt_mod, "DOMAIN_FOLDERS", (config, running))
    assert providers.get("libvirt").leftovers() == [
        Leftover("libvirt", "pf", "domain", f"labgen-pf-{tag}-default")
    ]


def test_a_stopped_libvirtds_unreadable_files_are_an_error(
    tools: Tools, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tools(virsh="exit 1")
    not_a_folder = tmp_path / "qemu"
    not_a_folder.write_text("", encoding="utf-8")
    monkeypatch.setattr(libvirt_mod, "LIBVIRTD_SOCKET", tmp_path / "no-socket")
    monkeypatch.setattr(libvirt_mod, "DOMAIN_FOLDERS", (not_a_folder,))
    with pytest.raises(MachineError, match=r"libvirtd is not running and .*qemu cannot be read"):
        providers.get("libvirt").leftovers()


def test_libvirt_leftovers_are_none_without_virsh(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(recipe, "which", lambda tool: False)
    assert providers.get("libvirt").leftovers() == []


def test_libvirt_remove_raises_when_undefine_fails(tools: Tools) -> None:
    tools(
        virsh='for a; do [ "$a" = undefine ] && { echo "error: Requested operation is not '
        'valid" >&2; exit 1; }; done; exit 0'
    )
    with pytest.raises(MachineError, match=r"`virsh undefine labgen-pf-x .*` failed: error"):
        providers.get("libvirt").remove(Leftover("libvirt", "pf", "domain", "labgen-pf-x"))


# --- labgen status -----------------------------------------------------------------


def test_status_says_it_could_not_look_and_still_lists_the_machines(tools: Tools) -> None:
    tools(docker=FAILS, virsh='echo "error: failed to connect to the hypervisor" >&2; exit 1')
    make_instance("first")
    rows = status.status()
    assert [r.instance for r in rows][0] == "first"
    blind = {r.provider: r.state for r in rows if r.state.startswith("could not look: ")}
    assert set(blind) == {"docker", "libvirt"}
    assert "Cannot connect to the Docker daemon" in blind["docker"]
    assert "systemctl start docker" in blind["docker"]  # the hint, what to do
    assert "failed to connect to the hypervisor" in blind["libvirt"]


def test_status_cli_shows_could_not_look_without_a_traceback(
    tools: Tools, short_timeouts: None
) -> None:
    tools(docker=HANGS, virsh="exit 0")
    result = invoke_labgen("status", "--json")
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 0, result.stderr
    assert '"state": "could not look: could not look for labgen\'s containers' in result.stdout
    assert "did not answer in 0.5 s" in result.stdout


def test_status_lists_orphans_from_an_answer(tools: Tools) -> None:
    tools(docker='[ "$1" = ps ] && printf "c0ffee\\tgone\\tlabgen-gone\\n"; exit 0', virsh="exit 0")
    make_instance("first")
    states = {r.instance: r.state for r in status.status()}
    assert states["first"] == "not_created"
    assert states["gone"].startswith("orphan (docker container c0ffee)")
    assert not any(s.startswith("could not look") for s in states.values())


# --- the scratch directory and its mounts --------------------------------------------


@pytest.fixture
def mounts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in for /proc/mounts, for the scratch directory's unmount to read."""
    table = tmp_path / "mounts"
    table.write_text("sysfs /sys sysfs rw 0 0\n", encoding="utf-8")
    monkeypatch.setattr(rootfs, "MOUNTS", table)
    return table


def mount(table: Path, point: Path) -> None:
    escaped = str(point).replace(" ", "\\040")
    with table.open("a", encoding="utf-8") as out:
        out.write(f"proc {escaped} proc rw,nosuid 0 0\n")


def test_a_failed_umount_keeps_the_scratch_dir_and_says_what_is_mounted(
    tools: Tools, mounts: Path
) -> None:
    tools(umount='echo "umount: $2: target is busy." >&2; exit 32')
    with pytest.raises(MachineError) as caught, rootfs.scratch_dir() as work:
        (work / "rootfs" / "proc").mkdir(parents=True)
        (work / "rootfs" / "keep").write_text("a file the rmtree would have reached")
        mount(mounts, work / "rootfs" / "proc")
    err = caught.value
    assert f"{work}/rootfs/proc (umount: {work}/rootfs/proc: target is busy.)" in err.message
    assert f"{work} is kept" in err.message
    assert err.hint and f"rm -rf {work}" in err.hint
    assert (work / "rootfs" / "keep").is_file()  # nothing removed through the mount


def test_a_hung_umount_keeps_the_scratch_dir(
    tools: Tools, mounts: Path, short_timeouts: None
) -> None:
    tools(umount=HANGS)
    with pytest.raises(MachineError, match=r"did not return in 0.5 s"), rootfs.scratch_dir() as w:
        mount(mounts, w / "rootfs" / "sys")
    assert w.is_dir()


def test_a_umount_that_says_yes_but_leaves_the_mount_keeps_the_dir(
    tools: Tools, mounts: Path
) -> None:
    tools(umount="exit 0")
    with pytest.raises(MachineError, match=r"still mounted after it"), rootfs.scratch_dir() as w:
        mount(mounts, w / "rootfs" / "proc")
    assert w.is_dir()


def test_the_scratch_dir_goes_once_everything_is_unmounted(tools: Tools, mounts: Path) -> None:
    # Each umount takes its own line out of the table, as the kernel would.
    log = mounts.with_name("umount.log")
    table = shlex.quote(str(mounts))
    tools(
        umount=f'printf "%s\\n" "$2" >> {shlex.quote(str(log))}\n'
        f'awk -v p="$2" \'{{ m = $2; gsub(/\\\\040/, " ", m); if (m != p) print }}\' '
        f"{table} > {table}.new && mv {table}.new {table}"
    )
    with rootfs.scratch_dir() as work:
        mount(mounts, work / "root fs")
        mount(mounts, work / "root fs" / "proc")
        mount(mounts, Path(f"{work}-sibling"))  # not below it: left alone
    assert not work.exists()
    assert log.read_text().splitlines() == [f"{work}/root fs/proc", f"{work}/root fs"]


def test_nothing_mounted_is_nothing_to_unmount(tools: Tools, mounts: Path) -> None:
    tools(umount="echo must not run >&2; exit 1")
    with rootfs.scratch_dir() as work:
        (work / "a").mkdir()
    assert not work.exists()
