import pytest


@pytest.mark.step("first")
def test_first(host):
    """a check for the unit tests; never run"""
    assert host.file("/etc/hostname").exists
