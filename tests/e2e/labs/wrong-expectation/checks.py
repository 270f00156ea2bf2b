import pytest


@pytest.mark.step("make-marker")
def test_other_file_exists(host):
    """the step made /tmp/some-other-file (it did not)"""
    assert host.file("/tmp/some-other-file").exists
