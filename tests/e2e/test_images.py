"""Offline workshops: the base image (with every lab's images) saved to a file and loaded back."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest
from helpers import labgen, show
from labgen import providers

pytestmark = pytest.mark.e2e


def test_images_save_and_load(tmp_path: Path) -> None:
    tarball = tmp_path / "labgen-images.tar"
    saved = labgen("images", "save", "-o", str(tarball))
    assert saved.returncode == 0, show(saved)
    tag = providers.get("docker").image()  # type: ignore[attr-defined]
    assert tag in saved.stdout
    with tarfile.open(tarball) as tar:
        assert "manifest.json" in tar.getnames()
    assert not list(tmp_path.glob("*.partial"))

    loaded = labgen("images", "load", str(tarball))
    assert loaded.returncode == 0, show(loaded)
    assert tag in loaded.stdout  # Docker names what it loaded

    missing = labgen("images", "load", str(tmp_path / "nothing.tar"))
    assert missing.returncode == 2 and "no such file" in missing.stderr
