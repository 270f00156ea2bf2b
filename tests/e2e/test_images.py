"""Offline workshops: the base image (with every lab's images) saved to a file and loaded back."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import pytest
from helpers import labgen, show
from labgen.machine import providers

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("gzipped", [False, True], ids=["plain", "gzip"])
def test_images_save_and_load(tmp_path: Path, gzipped: bool) -> None:
    tarball = tmp_path / ("labgen-images.tar.gz" if gzipped else "labgen-images.tar")
    old_umask = os.umask(0o022)
    try:
        saved = labgen("images", "save", "-o", str(tarball), *(["--gzip"] if gzipped else []))
    finally:
        os.umask(old_umask)
    assert saved.returncode == 0, show(saved)
    tag = providers.get("docker").image()  # type: ignore[attr-defined]
    assert tag in saved.stdout
    with tarball.open("rb") as stream:
        assert (stream.read(2) == b"\x1f\x8b") == gzipped  # gzip's magic number
    with tarfile.open(tarball) as tar:  # reads either
        assert "manifest.json" in tar.getnames()
    assert not list(tmp_path.glob("*.partial"))
    # For a USB stick others copy from: readable by them (docker save writes 0600).
    assert tarball.stat().st_mode & 0o777 == 0o644

    loaded = labgen("images", "load", str(tarball))
    assert loaded.returncode == 0, show(loaded)
    assert tag in loaded.stdout  # Docker names what it loaded

    missing = labgen("images", "load", str(tmp_path / "nothing.tar"))
    assert missing.returncode == 2 and "no such file" in missing.stderr
