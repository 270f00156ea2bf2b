import pytest


@pytest.mark.step("make-marker")
def test_marker_exists(host):
    """the step made /tmp/labgen-marker"""
    assert host.file("/tmp/labgen-marker").exists
