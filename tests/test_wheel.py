"""labgen's packages carry the workshop's terminal front-end (hatch_build.py).

Built here for real, from a clean clone of the repository's HEAD (no vendor folder, as
after `git clone`): the wheel with npm from package-lock.json, the sdist and a wheel built
from it with no npm at all, an editable install; and without npm, the build fails with the
fix in its message. No machine is started: these run in the normal suite, in seconds (npm's
cache holds the two tarballs after the first run; the registry is the only network used).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VENDOR_IN_TREE = "generator/labgen/workshop/static/vendor"
VENDOR_IN_WHEEL = "labgen/workshop/static/vendor/"
# What the pages load (workshop/pages.py's VENDORED), the licences and their provenance.
SHIPPED = {
    "xterm.js",
    "xterm.css",
    "addon-fit.js",
    "LICENSE.xterm",
    "LICENSE.addon-fit",
    "provenance.json",
}
# PEP 660's build_editable through pip's own hook caller: argv 1 the source, 2 the folder.
BUILD_EDITABLE = (
    "import sys, pyproject_hooks;"
    "pyproject_hooks.BuildBackendHookCaller(sys.argv[1], 'hatchling.build')"
    ".build_editable(sys.argv[2])"
)
# What the installed labgen answers when `workshop serve` checks its front-end.
SERVE_CHECK = "from labgen.workshop import pages; pages.require_vendor(); print(pages.VENDOR)"


def run(*command: str | Path, path: str | None = None, cwd: Path | None = None) -> str:
    """COMMAND's output (stdout and stderr together); a failure shows all of it."""
    env = dict(os.environ, PATH=path if path is not None else os.environ["PATH"])
    done = subprocess.run(
        [str(part) for part in command],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{command} exited {done.returncode}:\n{output}"
    return output


def refused(*command: str | Path, path: str) -> str:
    """COMMAND's output, asserting that it fails."""
    env = dict(os.environ, PATH=path)
    done = subprocess.run(
        [str(part) for part in command], capture_output=True, text=True, timeout=300, env=env
    )
    assert done.returncode != 0, f"{command} succeeded:\n{done.stdout}{done.stderr}"
    return done.stdout + done.stderr


def clone_of_head(into: Path) -> Path:
    run("git", "clone", "--quiet", REPO, into)
    assert not (into / VENDOR_IN_TREE).exists(), "a clean clone has no front-end yet"
    return into


def build_wheel(source: Path, out: Path, path: str | None = None) -> Path:
    """The wheel pip builds from `source` (no dependencies fetched, nor the backend)."""
    run(
        sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
        "-w", out, source, path=path,
    )  # fmt: skip
    (wheel,) = out.glob("labgen-*.whl")
    return wheel


def without_npm(tmp_path: Path) -> str:
    """A PATH with none of this host's programs (pip is run by its absolute path)."""
    folder = tmp_path / "no-npm-bin"
    folder.mkdir()
    return str(folder)


def lock_pins() -> dict[str, dict[str, str]]:
    lock = json.loads((REPO / "package-lock.json").read_text())
    return {
        name.removeprefix("node_modules/"): {
            "version": entry["version"],
            "integrity": entry["integrity"],
        }
        for name, entry in lock["packages"].items()
        if name
    }


def venv_with(folder: Path, *install: str | Path) -> Path:
    """A new venv where pip installs `install` (no dependencies), and which then sees this
    one's dependencies after its own site-packages (a .pth line): fast, and nothing fetched.
    The line comes last: pip would find this venv's labgen through it and install nothing."""
    run(sys.executable, "-m", "venv", "--without-pip", folder)
    python = folder / "bin" / "python"
    run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "-q", *install)
    (site,) = folder.glob("lib/python*/site-packages")
    (site / "zz-test-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


def test_a_wheel_from_a_clean_clone_carries_the_front_end_and_serve_finds_it(
    tmp_path: Path,
) -> None:
    clone = clone_of_head(tmp_path / "clone")
    wheel = build_wheel(clone, tmp_path / "dist")

    with zipfile.ZipFile(wheel) as archive:
        vendor = {n.removeprefix(VENDOR_IN_WHEEL) for n in archive.namelist()}
        assert vendor >= SHIPPED, f"the wheel lacks {SHIPPED - vendor}"
        provenance = json.loads(archive.read(VENDOR_IN_WHEEL + "provenance.json"))
        xterm = archive.read(VENDOR_IN_WHEEL + "xterm.js")
    assert provenance["packages"] == lock_pins()
    assert hashlib.sha256(xterm).hexdigest() == provenance["files"]["xterm.js"]
    assert b"Terminal" in xterm and len(xterm) > 100_000, "xterm.js is the library itself"
    assert not (clone / VENDOR_IN_TREE).exists(), "a wheel build leaves the checkout as it was"

    python = venv_with(tmp_path / "venv", wheel)
    where = run(python, "-c", SERVE_CHECK, cwd=tmp_path).strip()
    assert Path(where).is_relative_to(tmp_path / "venv"), f"labgen came from {where}"


def test_without_npm_the_build_fails_and_says_how_to_get_npm(tmp_path: Path) -> None:
    clone = clone_of_head(tmp_path / "clone")
    out = tmp_path / "dist"
    message = refused(
        sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
        "-w", out, clone, path=without_npm(tmp_path),
    )  # fmt: skip
    assert "npm is not on PATH" in message and "apt-get install npm" in message, message
    assert f"{VENDOR_IN_TREE} holds no front-end" in message, message
    assert "Traceback" not in message, message
    assert not list(out.glob("*.whl")), "no wheel without its front-end"


def test_the_sdist_carries_the_front_end_and_its_wheel_needs_no_npm(tmp_path: Path) -> None:
    clone = clone_of_head(tmp_path / "clone")
    run(sys.executable, "-m", "build", "--sdist", "--no-isolation", "-o", tmp_path, clone)
    (sdist,) = tmp_path.glob("labgen-*.tar.gz")
    with tarfile.open(sdist) as archive:
        archive.extractall(tmp_path / "unpacked", filter="data")
    (source,) = (tmp_path / "unpacked").iterdir()
    for name in ("package.json", "package-lock.json", "hatch_build.py"):
        assert (source / name).is_file(), f"the sdist lacks {name}"
    assert {p.name for p in (source / VENDOR_IN_TREE).iterdir()} == SHIPPED

    no_npm = without_npm(tmp_path)
    wheel = build_wheel(source, tmp_path / "dist", path=no_npm)
    with zipfile.ZipFile(wheel) as archive:
        assert (
            archive.read(VENDOR_IN_WHEEL + "xterm.js")
            == (source / VENDOR_IN_TREE / "xterm.js").read_bytes()
        )

    # An edited (or stale) front-end is not the lock's: without npm to replace it, refused.
    with (source / VENDOR_IN_TREE / "xterm.js").open("a") as edited:
        edited.write("\n// edited\n")
    message = refused(
        sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
        "-w", tmp_path / "dist2", source, path=no_npm,
    )  # fmt: skip
    assert "xterm.js is missing or differs from what npm installed" in message, message


def test_an_editable_install_gets_the_front_end_in_its_source_tree(tmp_path: Path) -> None:
    clone = clone_of_head(tmp_path / "clone")
    # What `pip install -e` does, with this interpreter's hatchling (the new venv has none).
    run(sys.executable, "-c", BUILD_EDITABLE, clone, tmp_path / "dist")
    (wheel,) = (tmp_path / "dist").glob("labgen-*.whl")
    python = venv_with(tmp_path / "venv", wheel)
    where = run(python, "-c", SERVE_CHECK, cwd=tmp_path).strip()
    assert Path(where) == clone / VENDOR_IN_TREE
    assert {p.name for p in Path(where).iterdir()} == SHIPPED
