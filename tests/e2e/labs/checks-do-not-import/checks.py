import no_such_module  # noqa: F401  <- the error: line 1
import pytest


@pytest.mark.step("make-marker")
def test_marker_exists(host):
    """the step made /tmp/labgen-marker"""
    assert host.file("/tmp/labgen-marker").exists
