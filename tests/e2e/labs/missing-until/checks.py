import pytest


@pytest.mark.step("make-marker")
def test_marker_exists(host):
    """the step made /tmp/labgen-marker (and nothing says a later step removes it)"""
    assert host.file("/tmp/labgen-marker").exists


@pytest.mark.step("remove-marker")
def test_other_exists(host):
    """the step made /tmp/labgen-other"""
    assert host.file("/tmp/labgen-other").exists
