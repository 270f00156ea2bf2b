import pytest


@pytest.mark.step("make-marker")
def test_hostname_file_exists(host):
    """/etc/hostname exists (it always did)"""
    assert host.file("/etc/hostname").exists
