"""Small pure helpers: safe names, the host's resolvers, atomic state files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from labgen.core import resources
from labgen.core.errors import EXIT_USAGE, UsageError
from labgen.core.resources import validate_name
from labgen.machine.instance import Instance, InstanceState, all_instances, write_json_atomic
from labgen.machine.providers.docker import nameservers

# --- validate_name: lab and machine names end up in paths, container names, shell ---


@pytest.mark.parametrize(
    "name", ["a", "0", "port-forwarding", "lab2", "a-b-c", "9lives", "a" * 40, "x--y"]
)
def test_valid_names_are_returned_unchanged(name: str) -> None:
    assert validate_name(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "-rf",
        "--all",
        "../x",
        "..",
        ".",
        ".hidden",
        "a/b",
        "/abs",
        "a\\b",
        "Upper",
        "a_b",
        "a.b",
        "a b",
        "a" * 41,
        "trailing-",
        "tab\tname",
        "semi;colon",
        "$(x)",
        "ünï",
        "abc\n",  # Regression: `$` in the pattern matches before a final newline
        "\nabc",
    ],
)
def test_unsafe_names_are_refused(name: str) -> None:
    with pytest.raises(UsageError) as caught:
        validate_name(name, "instance name")
    assert caught.value.exit_code == EXIT_USAGE
    assert "instance name" in caught.value.message
    assert repr(name) in caught.value.message


# --- host_nameservers ------------------------------------------------------------------


@pytest.fixture
def systemd_resolv(tmp_path: Path) -> Path:
    """Where the host's real list sits when /etc/resolv.conf only has a loopback stub
    (a file of the test's own: no test reads the host's files)."""
    return tmp_path / "systemd-resolv.conf"


def host_nameservers(conf: Path, fallback: Path | None = None) -> list[str]:
    """nameservers() reading `conf`, then the systemd fallback of the same test."""
    return nameservers((conf, fallback or conf.parent / "systemd-resolv.conf"))


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_nameservers_in_order_v4_and_v6(tmp_path: Path, systemd_resolv: Path) -> None:
    conf = write(
        tmp_path / "resolv.conf",
        "# comment\nsearch example.org\nnameserver 192.0.2.1\noptions ndots:1\n"
        "nameserver 2001:db8::1\n",
    )
    assert host_nameservers(conf) == ["192.0.2.1", "2001:db8::1"]


def test_loopback_stubs_are_skipped(tmp_path: Path, systemd_resolv: Path) -> None:
    conf = write(
        tmp_path / "resolv.conf",
        "nameserver 127.0.0.53\nnameserver 127.0.0.11\nnameserver ::1\nnameserver 198.51.100.7\n",
    )
    assert host_nameservers(conf) == ["198.51.100.7"]


@pytest.mark.parametrize(
    "stub",
    [
        "nameserver 127.0.0.53\noptions edns0 trust-ad\n",  # systemd-resolved
        "nameserver 127.0.0.11\noptions ndots:0\n",  # Docker's embedded DNS
        "",  # empty
    ],
    ids=["resolved-stub", "docker-embedded-dns", "empty"],
)
def test_only_a_stub_falls_back_to_systemds_real_list(
    tmp_path: Path, systemd_resolv: Path, stub: str
) -> None:
    conf = write(tmp_path / "resolv.conf", stub)
    write(systemd_resolv, "nameserver 203.0.113.5\nnameserver 203.0.113.6\n")
    assert host_nameservers(conf) == ["203.0.113.5", "203.0.113.6"]


def test_missing_resolv_conf_falls_back(tmp_path: Path, systemd_resolv: Path) -> None:
    write(systemd_resolv, "nameserver 203.0.113.5\n")
    assert host_nameservers(tmp_path / "absent.conf") == ["203.0.113.5"]


def test_no_real_resolver_anywhere_gives_none(tmp_path: Path, systemd_resolv: Path) -> None:
    conf = write(tmp_path / "resolv.conf", "nameserver 127.0.0.53\n")
    write(systemd_resolv, "nameserver 127.0.0.1\n")
    assert host_nameservers(conf) == []
    systemd_resolv.unlink()
    assert host_nameservers(conf) == []


def test_malformed_lines_are_ignored(tmp_path: Path, systemd_resolv: Path) -> None:
    conf = write(
        tmp_path / "resolv.conf",
        "nameserver\nnameserver not-an-ip\n#nameserver 192.0.2.9\n; nameserver 192.0.2.8\n"
        "  nameserver   192.0.2.2   # trailing comment\nnameservers 192.0.2.7\n",
    )
    assert host_nameservers(conf) == ["192.0.2.2"]


# --- write_json_atomic ---------------------------------------------------------------


def test_write_json_atomic_writes_readable_json(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "state.json"
    data = {"instance": "x", "steps_run": ["a", "b"], "quote": 'it\'s "fine" ✓'}
    write_json_atomic(path, data)
    assert json.loads(path.read_text(encoding="utf-8")) == data
    assert path.read_text(encoding="utf-8").endswith("\n")
    assert [p.name for p in path.parent.iterdir()] == ["state.json"]


def test_write_json_atomic_replaces_the_old_content(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    write_json_atomic(path, {"v": 1, "long": "x" * 1000})
    write_json_atomic(path, {"v": 2})
    assert json.loads(path.read_text(encoding="utf-8")) == {"v": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_write_json_atomic_failure_keeps_the_old_file_and_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    write_json_atomic(path, {"v": 1})
    before = path.read_bytes()
    with pytest.raises(TypeError):
        write_json_atomic(path, {"v": 2, "bad": object()})  # not JSON: fails mid-write
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_write_json_atomic_never_exposes_a_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Until the rename, readers see the old file in full."""
    path = tmp_path / "state.json"
    write_json_atomic(path, {"v": 1})
    seen = []
    real_replace = os.replace

    def replace(src: str, dst: str) -> None:
        seen.append(json.loads(Path(dst).read_text(encoding="utf-8")))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    write_json_atomic(path, {"v": 2})
    assert seen == [{"v": 1}]
    assert json.loads(path.read_text(encoding="utf-8")) == {"v": 2}


def test_instance_state_round_trips(labgen_home: Path) -> None:
    state = InstanceState(
        instance="m1",
        lab="port-forwarding",
        lab_path="/somewhere",
        provider="docker",
        render_digest="d" * 64,
        created="2024-01-01T00:00:00+00:00",
        host={"subnet": "172.30.1.0/24", "ssh_port": 2201},
        steps_run=["nat-baseline"],
    )
    Instance("m1").save(state)
    assert Instance("m1").path == labgen_home.resolve() / "instances" / "m1"
    assert Instance("m1").load() == state
    assert [i.name for i in all_instances()] == ["m1"]
    with pytest.raises(UsageError, match="no lab machine called 'm2'"):
        Instance("m2").load()


def test_labgen_home_comes_from_the_environment(labgen_home: Path) -> None:
    assert resources.labgen_home() == labgen_home.resolve()
    assert resources.instances_dir() == labgen_home.resolve() / "instances"
    tag = resources.home_tag()
    assert len(tag) == 6 and tag.isalnum()


def test_home_tag_differs_between_homes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tags = set()
    for name in ("one", "two"):
        monkeypatch.setenv("LABGEN_HOME", str(tmp_path / name))
        tags.add(resources.home_tag())
    assert len(tags) == 2
