"""The host registry's pure parts: names, URLs, the stored list, labgen's own ssh files."""

from __future__ import annotations

from pathlib import Path

import pytest
from labgen.core.errors import UsageError
from labgen.hosts import registry


def test_add_list_remove_round_trip(labgen_home: Path) -> None:
    host = registry.add("rack-1", "ssh://root@127.0.0.1:2222")
    registry.add("kvm", "qemu+ssh://admin@kvm.example/system")
    assert [h.name for h in registry.load()] == ["rack-1", "kvm"]
    assert (host.kind, host.ssh_user, host.ssh_hostname, host.ssh_port) == (
        "docker",
        "root",
        "127.0.0.1",
        2222,
    )
    assert registry.get("kvm").kind == "libvirt"
    registry.remove("rack-1")
    assert [h.name for h in registry.load()] == ["kvm"]


def test_local_always_exists_and_is_never_stored(labgen_home: Path) -> None:
    assert registry.get("local") is registry.LOCAL
    assert registry.get(None).env() == {}
    assert registry.load() == []
    with pytest.raises(UsageError, match="local"):
        registry.add("local", "ssh://a")
    with pytest.raises(UsageError, match="cannot be removed"):
        registry.remove("local")


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://a", "use ssh://"),
        ("tcp://a:2375", "use ssh://"),
        ("ssh://", "name the host"),
        ("ssh://-oProxyCommand=x", "name the host"),
        ("ssh://a;rm:22", "name the host"),
        ("ssh://a:0x", "port"),
        ("ssh://a/var", "no path"),
        ("ssh://a?x=1", "no ?query"),
        ("ssh://u:secret@a", "no password"),
        ("ssh://Ro$t@a", "plain login name"),
        ("qemu+ssh://a", "/system"),
    ],
)
def test_bad_url_names_the_argument(labgen_home: Path, url: str, says: str) -> None:
    with pytest.raises(UsageError, match="argument URL") as caught:
        registry.add("h", url)
    assert says in caught.value.message
    assert registry.load() == []  # nothing half-made


def test_duplicate_and_unknown_names(labgen_home: Path) -> None:
    registry.add("a", "ssh://a")
    with pytest.raises(UsageError, match="already registered"):
        registry.add("a", "ssh://b")
    with pytest.raises(UsageError, match=r"unknown host 'b' \(known: local, a\)") as caught:
        registry.get("b")
    assert "labgen hosts add" in (caught.value.hint or "")
    with pytest.raises(UsageError, match="invalid host name"):
        registry.add("../x", "ssh://a")


def test_env_points_docker_at_the_host_through_labgen_ssh(labgen_home: Path) -> None:
    host = registry.add("a", "ssh://root@127.0.0.1:2201")
    env = host.env()
    assert env["DOCKER_HOST"] == "ssh://root@127.0.0.1:2201"
    wrapper_dir = Path(env["PATH"].split(":")[0])
    wrapper = (wrapper_dir / "ssh").read_text()
    assert str(registry.ssh_config_path()) in wrapper
    assert str(wrapper_dir) not in registry.real_ssh()  # the wrapper never runs itself
    config = registry.ssh_config_path().read_text()
    assert f"UserKnownHostsFile {registry.known_hosts_path()}" in config
    assert host.ssh_command()[-3:] == ["-p", "2201", "root@127.0.0.1"]
    libvirt = registry.add("k", "qemu+ssh://k/system")
    assert libvirt.env()["LIBVIRT_DEFAULT_URI"] == "qemu+ssh://k/system"


def test_a_corrupt_list_is_a_usage_error(labgen_home: Path) -> None:
    registry.hosts_dir().mkdir(parents=True)
    (registry.hosts_dir() / registry.HOSTS_FILE).write_text("{not json")
    with pytest.raises(UsageError, match="not a host list"):
        registry.load()
