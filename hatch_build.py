"""labgen's build hook: the workshop's terminal front-end (xterm.js) in the wheel and the sdist.

The files come from the npm registry at package-build time, at the versions and sha512
integrity hashes of package-lock.json (`npm ci` refuses a tarball whose hash differs); never
from the repository (they are not committed) nor from a CDN when a page loads (a room may
have no internet). Where npm is missing the build fails and says how to get npm, rather than
ship a labgen whose `workshop serve` cannot start; unless the vendor folder already holds
the front-end as the lock pins it (a checkout after scripts/setup-workshop.sh, or an
unpacked sdist, which carries it so that a wheel is built from it without npm).

Run as a script, `python3 hatch_build.py` fills this checkout's vendor folder from the
lock: scripts/setup-workshop.sh does, so that checkouts and wheels share one set of versions.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

try:
    from hatchling.builders.hooks.plugin.interface import BuildHookInterface
except ModuleNotFoundError:  # run as a script (setup-workshop.sh), where hatchling may be absent
    BuildHookInterface = object  # type: ignore[assignment,misc]

ROOT = Path(__file__).resolve().parent
# The package's folder, relative to the root of the source tree, of the wheel and of the sdist.
VENDOR_IN_TREE = "generator/labgen/workshop/static/vendor"
VENDOR_IN_WHEEL = "labgen/workshop/static/vendor"
LOCK_FILES = ("package.json", "package-lock.json")
# What the pages load (workshop/pages.py's VENDORED) and the licences that must travel with
# them, each from its npm package: the wheel carries no node_modules.
FILES = {
    "xterm.js": ("@xterm/xterm", "lib/xterm.js"),
    "xterm.css": ("@xterm/xterm", "css/xterm.css"),
    "addon-fit.js": ("@xterm/addon-fit", "lib/addon-fit.js"),
    "LICENSE.xterm": ("@xterm/xterm", "LICENSE"),
    "LICENSE.addon-fit": ("@xterm/addon-fit", "LICENSE"),
}
# Beside the files: the lock's versions and integrity hashes they came from, and each file's
# sha256, so that a stale or edited vendor folder is told from one that matches the lock.
PROVENANCE = "provenance.json"
NPM_CI = ("ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error")


class FrontEndError(Exception):
    """The front-end could not be put together; the message says why and what to do."""


def locked_packages(root: Path) -> dict[str, dict[str, str]]:
    """The version and integrity hash package-lock.json pins for each package FILES names."""
    lock_path = root / "package-lock.json"
    try:
        lock = json.loads(lock_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise FrontEndError(f"{lock_path}: cannot read npm's lock file ({exc})") from None
    pinned = {}
    for package in sorted({package for package, _ in FILES.values()}):
        entry = lock.get("packages", {}).get(f"node_modules/{package}", {})
        if not entry.get("version") or not entry.get("integrity"):
            raise FrontEndError(
                f"{lock_path}: no version and integrity for {package}; "
                "run `npm install --package-lock-only` beside package.json"
            )
        pinned[package] = {"version": entry["version"], "integrity": entry["integrity"]}
    return pinned


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def mismatch(folder: Path, root: Path) -> str | None:
    """Why `folder` does not hold the front-end as the lock pins it; None when it does."""
    try:
        provenance = json.loads((folder / PROVENANCE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return f"{folder} holds no front-end installed from package-lock.json"
    except (OSError, ValueError) as exc:
        return f"{folder / PROVENANCE} is unreadable ({exc})"
    if provenance.get("packages") != locked_packages(root):
        return f"{folder} holds other versions than package-lock.json pins"
    for name in FILES:
        path = folder / name
        if not path.is_file() or provenance.get("files", {}).get(name) != _sha256(path):
            return f"{path} is missing or differs from what npm installed"
    return None


def _npm_ci(root: Path, work: Path) -> Path:
    """node_modules as `npm ci` installs it in `work` from the lock; the registry's tarballs
    are checked against the lock's integrity hashes by npm itself."""
    npm = shutil.which("npm")
    if npm is None:
        raise FrontEndError(
            "npm is not on PATH: labgen's package carries the workshop's terminal front-end "
            "(xterm.js), which the build installs with npm from package-lock.json. "
            "Install npm (Debian: `apt-get install npm`; elsewhere Node.js, which includes "
            "it) and build again"
        )
    for name in LOCK_FILES:
        shutil.copy2(root / name, work / name)
    env = {**os.environ, "npm_config_update_notifier": "false"}
    try:
        done = subprocess.run(
            [npm, *NPM_CI], cwd=work, env=env, capture_output=True, text=True, timeout=600
        )
    except subprocess.TimeoutExpired:
        raise FrontEndError(
            "`npm ci` did not finish in 10 minutes (is the registry reachable?)"
        ) from None
    if done.returncode != 0:
        raise FrontEndError(
            f"`npm {' '.join(NPM_CI)}` failed (exit status {done.returncode}):\n"
            f"{(done.stderr or done.stdout).strip()}"
        )
    return work / "node_modules"


def install(folder: Path, root: Path) -> None:
    """Fill `folder` (made anew) with FILES from `npm ci` and their provenance."""
    with tempfile.TemporaryDirectory(prefix="labgen-npm-") as work:
        modules = _npm_ci(root, Path(work))
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for name, (package, inside) in FILES.items():
            shutil.copyfile(modules / package / inside, folder / name)
    provenance = {
        "packages": locked_packages(root),
        "files": {name: _sha256(folder / name) for name in FILES},
    }
    (folder / PROVENANCE).write_text(json.dumps(provenance, indent=2) + "\n", encoding="utf-8")


def ensure(folder: Path, root: Path, into: Path | None = None) -> str:
    """Make sure the front-end the lock pins is at hand: `folder` when it holds it already,
    else `npm ci` installs it into `into` (default: `folder` itself). Says which it was."""
    reason = mismatch(folder, root)
    if reason is None:
        return f"the front-end in {folder} matches package-lock.json"
    try:
        install(into or folder, root)
    except FrontEndError as exc:
        raise FrontEndError(f"{exc}\n(npm was needed because {reason})") from None
    versions = ", ".join(f"{p} {v['version']}" for p, v in locked_packages(root).items())
    return f"installed {versions} into {into or folder} with npm ci"


class FrontEndHook(BuildHookInterface):  # type: ignore[misc,valid-type]
    """Puts the front-end into the wheel (at the package's vendor folder) and the sdist (at
    the source tree's), from the checkout's vendor folder when it matches the lock, else
    from a scratch `npm ci`; an editable install's package is the source tree, so that is
    where its front-end goes."""

    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        root = Path(self.root)
        in_tree = root / VENDOR_IN_TREE
        editable = self.target_name == "wheel" and version == "editable"
        self._scratch = None if editable else tempfile.mkdtemp(prefix="labgen-front-end-")
        scratch = Path(self._scratch) / "vendor" if self._scratch else in_tree
        try:
            self.app.display_info(f"labgen front-end: {ensure(in_tree, root, scratch)}")
        except FrontEndError as exc:
            self.finalize(version, build_data, "")
            # A message, not a traceback: the build stops here, nothing half-made is shipped.
            raise SystemExit(f"labgen: cannot build the package: {exc}") from None
        if editable:
            return
        source = scratch if scratch.is_dir() else in_tree
        target = VENDOR_IN_WHEEL if self.target_name == "wheel" else VENDOR_IN_TREE
        for name in [*FILES, PROVENANCE]:
            build_data["force_include"][str(source / name)] = f"{target}/{name}"

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        if getattr(self, "_scratch", None):
            shutil.rmtree(self._scratch, ignore_errors=True)


def main() -> int:
    """`python3 hatch_build.py`: this checkout's vendor folder, filled from the lock."""
    try:
        print(ensure(ROOT / VENDOR_IN_TREE, ROOT))
    except FrontEndError as exc:
        print(f"hatch_build.py: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
