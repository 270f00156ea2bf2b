import pytest


@pytest.mark.step("make-marker")
def test_marker_exists(host):
    """the step made /tmp/labgen-marker"""
    assert host.file("/tmp/labgen-marker").exists


@pytest.mark.step("no-such-step")
def test_never_tied(host):
    """tied to a step that does not exist"""
    assert host.file("/tmp/labgen-marker").exists
