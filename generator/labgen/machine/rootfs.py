"""Building the one root file system of a lab machine from the recipe (recipe.py).

Both labgen-built machines come from here: the docker provider imports the root
file system as its base image, a VM provider writes it into a disk.
`build_rootfs` is the pipeline they share: debootstrap from Debian's mirror (its packages
kept in the host's deb cache), the offline substitutes for the labs' images, then users,
sshd and labgen's init, configured in a chroot. Nothing comes from Docker Hub.
It runs in a scratch directory whose mounts are undone before it is removed.
"""

from __future__ import annotations

import contextlib
import fnmatch
import io
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from debian import deb822

from labgen.core import resources
from labgen.core.context import Say
from labgen.core.errors import MachineError, PrerequisiteError
from labgen.machine import recipe
from labgen.machine.recipe import ImageRecipe


def require_root_and_tools(what: str, tools: Sequence[str], packages: str = "") -> None:
    """Building a root file system needs root and debootstrap (and `tools`, from the
    Debian `packages`)."""
    if os.geteuid() != 0:
        raise PrerequisiteError(
            f"building {what} needs root (debootstrap makes a root file system)",
            hint="run `sudo labgen box build` once; later `labgen up` reuses it",
        )
    missing = [t for t in ("debootstrap", *tools) if not recipe.which(t)]
    if missing:
        raise PrerequisiteError(
            f"building {what} needs {', '.join(missing)}, which is not installed",
            hint=f"apt-get install debootstrap {packages}".strip(),
        )


def build_rootfs(
    root: Path, engine_name: str, say: Say, extra_packages: Sequence[str] = ()
) -> None:
    """The recipe's root file system with Docker `engine_name` in `root`: debootstrap,
    substitutes, configuration."""
    spec = recipe.recipe_spec()
    row = spec.engines[engine_name]
    packages = list(dict.fromkeys([*spec.packages, *row.packages, *extra_packages]))
    started = time.monotonic()
    _debootstrap(row.suite, packages, root, say)
    say(f"root file system ready ({time.monotonic() - started:.0f} s)")
    images_dir = root / recipe.IMAGES_DIR_IN_MACHINE.lstrip("/")
    images_dir.mkdir(parents=True, exist_ok=True)
    for name, image in spec.images.items():
        say(f"making the offline substitute for {name}")
        write_substitute(root, image, images_dir / recipe.substitute(name).file)
    say("configuring users, sshd and the machine's init")
    init = root / "usr/local/sbin/labgen-init"
    shutil.copyfile(recipe.box_script("labgen-init.sh"), init)
    init.chmod(0o755)
    run_in_chroot(
        root, recipe.box_script("configure-rootfs.sh"), "configuring the root file system"
    )


def run_in_chroot(root: Path, script: Path, what: str) -> None:
    """Run a shell script inside `root` (chroot), with the recipe's user as $1."""
    proc = subprocess.run(
        ["chroot", str(root), "/bin/sh", "-s", "--", recipe.recipe_spec().user],
        input=script.read_bytes(),
        capture_output=True,
    )
    if proc.returncode != 0:
        raise MachineError(f"{what} failed:\n" + proc.stderr.decode(errors="replace"))


def deb_cache() -> Path:
    """Where debootstrap keeps the packages it fetched, shared by every build on this host:
    $LABGEN_DEB_CACHE, else /var/cache/labgen/debs. It starts with what the host's own apt
    already downloaded (hard links, so no copy): a bookworm host has fetched docker.io and
    its dependencies for itself, and the second engine's build reuses the first's packages.
    A stale or foreign file costs nothing: debootstrap checks every package against the
    suite's index and fetches what does not match."""
    cache = Path(os.environ.get("LABGEN_DEB_CACHE") or "/var/cache/labgen/debs")
    cache.mkdir(parents=True, exist_ok=True)
    for deb in Path("/var/cache/apt/archives").glob("*.deb"):
        target = cache / deb.name
        if not target.exists():
            with contextlib.suppress(OSError):  # another file system: debootstrap fetches it
                os.link(deb, target)
    return cache


def _debootstrap(suite: str, packages: list[str], root: Path, say: Say) -> None:
    cmd = ["debootstrap", "--variant=minbase", f"--cache-dir={deb_cache()}"]
    cmd += ["--include=" + ",".join(packages)]
    cmd += [suite, str(root), recipe.mirror()]
    say(f"debootstrap {suite} from {recipe.mirror()} (about a minute)")
    log: list[str] = []
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            log.append(line)
            if line.startswith("I: "):
                say("debootstrap: " + line[3:].strip())
    if proc.returncode != 0:
        raise MachineError(
            f"debootstrap failed (exit {proc.returncode}):\n{''.join(log[-15:])}",
            hint="check that Debian's mirror is reachable, or set LABGEN_DEBIAN_MIRROR",
        )


# --- substitutes ---------------------------------------------------------


def _dependency_graph(root: Path) -> dict[str, list[str]]:
    """Installed package -> the installed packages it depends on (first alternative)."""
    with open(root / "var/lib/dpkg/status", encoding="utf-8") as status:
        installed = [
            p
            for p in deb822.Packages.iter_paragraphs(status, use_apt_pkg=False)
            if p.get("Status", "").endswith(" installed")
        ]
    names = {p["Package"] for p in installed}

    def relations(pkg: deb822.Packages, field: str) -> list[list[dict[str, Any]]]:
        return list(pkg.relations[field] or [])

    provides: dict[str, str] = {}
    for pkg in installed:
        for clause in relations(pkg, "provides"):
            for rel in clause:
                provides.setdefault(rel["name"], pkg["Package"])
    graph: dict[str, list[str]] = {}
    for pkg in installed:
        wanted = []
        for clause in [*relations(pkg, "pre-depends"), *relations(pkg, "depends")]:
            for rel in clause:
                real = rel["name"] if rel["name"] in names else provides.get(rel["name"])
                if real:
                    wanted.append(real)
                    break
        graph[pkg["Package"]] = wanted
    return graph


def _closure(root: Path, image: ImageRecipe) -> list[str]:
    graph = _dependency_graph(root)
    todo = list(image.packages)
    seen: set[str] = set()
    while todo:
        pkg = todo.pop()
        if pkg in seen or any(fnmatch.fnmatchcase(pkg, x) for x in image.exclude):
            continue
        if pkg not in graph:
            raise MachineError(
                f"{recipe.RECIPE_FILE}: image package {pkg!r} is not installed in the box"
            )
        seen.add(pkg)
        todo.extend(graph[pkg])
    return sorted(seen)


def _package_files(root: Path, pkg: str) -> list[str]:
    info = root / "var/lib/dpkg/info"
    for candidate in (info / f"{pkg}.list", *info.glob(f"{pkg}:*.list")):
        if candidate.is_file():
            return candidate.read_text(encoding="utf-8").splitlines()
    return []


def _in_root(root: Path, path: str) -> Path:
    """`path` inside `root`, resolving the merged-/usr symlinks (/bin -> usr/bin)."""
    literal = root / path.lstrip("/")
    parent = Path(os.path.realpath(literal.parent))
    if not parent.is_relative_to(root.resolve()):
        parent = literal.parent
    return parent / literal.name


_MERGED_USR_LINKS = ("bin", "sbin", "lib", "lib64")


def write_substitute(root: Path, image: ImageRecipe, target: Path) -> None:
    """An image tarball of the recipe's packages (and their dependencies) from `root`."""
    root = root.resolve()
    members = _substitute_members(root, image)
    parents = {str(p) for arc in members for p in Path(arc).parents if str(p) != "."}
    with tarfile.open(target, "w") as tar:
        # Directories first, then the merged-/usr links into them (/bin -> usr/bin),
        # then files: an unpacker cannot follow a link to a directory not made yet.
        for arcname in sorted(parents):
            if (root / arcname).is_dir() and not (root / arcname).is_symlink():
                tar.add(root / arcname, arcname=arcname, recursive=False)
        for link in _MERGED_USR_LINKS:
            if (root / link).is_symlink():
                info = tarfile.TarInfo(link)
                info.type = tarfile.SYMTYPE
                info.linkname = os.readlink(root / link)
                tar.addfile(info)
        for arcname in sorted(members):
            tar.add(members[arcname], arcname=arcname, recursive=False)
        tmp = tarfile.TarInfo("tmp")
        tmp.type = tarfile.DIRTYPE
        tmp.mode = 0o1777
        tar.addfile(tmp)
        if image.busybox_links:
            _add_busybox_links(tar, root, set(members))


def _substitute_members(root: Path, image: ImageRecipe) -> dict[str, Path]:
    """The files and symlinks of the image's packages and their dependencies, and the
    few files of /etc an image needs to name users: path in the tarball -> path in `root`."""
    members: dict[str, Path] = {}
    for pkg in _closure(root, image):
        for path in _package_files(root, pkg):
            real = _in_root(root, path)
            if real.is_symlink() and str(real.relative_to(root)) in _MERGED_USR_LINKS:
                continue  # added once, before anything is unpacked through it
            if real.is_symlink() or real.is_file():
                members[str(real.relative_to(root))] = real
    for etc in ("etc/passwd", "etc/group", "etc/nsswitch.conf"):
        if (root / etc).is_file():
            members.setdefault(etc, root / etc)
    return members


def _add_busybox_links(tar: tarfile.TarFile, root: Path, present: set[str]) -> None:
    busybox = _in_root(root, "/bin/busybox")
    applets = subprocess.run(
        [str(busybox), "--list-full"], capture_output=True, text=True, check=True
    ).stdout.split()
    rel = busybox.relative_to(root)
    for applet in applets:
        arc = _in_root(root, "/" + applet).relative_to(root)
        if str(arc) == str(rel) or str(arc) in present:
            continue
        present.add(str(arc))
        info = tarfile.TarInfo(str(arc))
        info.type = tarfile.SYMTYPE
        info.linkname = "/" + str(rel)
        tar.addfile(info, io.BytesIO(b""))


@contextlib.contextmanager
def scratch_dir() -> Iterator[Path]:
    """A work directory under labgen's cache, removed afterwards, never through a mount:
    a mount that stays keeps the directory (unmount_below's MachineError says where)."""
    cache = resources.labgen_home() / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="box-build-", dir=cache))
    try:
        yield work
    finally:
        unmount_below(work)  # raises before the rmtree while anything is still mounted
        shutil.rmtree(work, ignore_errors=True)


MOUNTS = Path("/proc/mounts")
UMOUNT_TIMEOUT = 60.0  # a lazy umount returns at once; longer, and it is stuck


def mounts_below(path: Path) -> list[str]:
    """The mount points at or below `path`, deepest first."""
    prefix = str(path.resolve())
    with open(MOUNTS, encoding="utf-8") as mounts:
        # /proc/mounts writes a space in a path as \040 (octal escapes).
        points = [
            re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), line.split()[1])
            for line in mounts
            if len(line.split()) > 1
        ]
    return sorted((p for p in points if p == prefix or p.startswith(prefix + "/")), reverse=True)


def unmount_below(path: Path) -> None:
    """Unmount everything at or below `path` (debootstrap mounts /proc and /sys in the
    target), or a MachineError naming what is still mounted: never rmtree through a mount."""
    failed = {}
    for point in mounts_below(path):
        try:
            proc = subprocess.run(
                ["umount", "-l", point], capture_output=True, text=True, timeout=UMOUNT_TIMEOUT
            )
        except subprocess.TimeoutExpired:
            failed[point] = f"did not return in {UMOUNT_TIMEOUT:g} s"
            continue
        except OSError as exc:  # no umount at all
            failed[point] = str(exc)
            continue
        if proc.returncode != 0:
            failed[point] = " ".join(proc.stderr.split()) or f"exit status {proc.returncode}"
    # Asked again: a umount that said yes but left the mount must not let an rmtree in.
    still = mounts_below(path)
    if still:
        listed = "; ".join(f"{p} ({failed.get(p, 'still mounted after it')})" for p in still)
        raise MachineError(
            f"`umount -l` could not unmount what is mounted below {path}: {listed}; "
            f"{path} is kept (removing it would reach through the mount into the host)",
            hint=f"unmount them as root (umount -l MOUNT_POINT), then rm -rf {path}",
        )
