import pytest


@pytest.mark.step("wait")
def test_marker_exists(host):
    """the step made /tmp/labgen-marker"""
    assert host.file("/tmp/labgen-marker").exists
