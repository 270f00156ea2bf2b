import pytest


@pytest.mark.step("make-marker", until="keep-marker")
def test_marker_exists(host):
    """the step made /tmp/labgen-marker (wrongly said to go with keep-marker)"""
    assert host.file("/tmp/labgen-marker").exists


@pytest.mark.step("keep-marker")
def test_other_exists(host):
    """the step made /tmp/labgen-other"""
    assert host.file("/tmp/labgen-other").exists
