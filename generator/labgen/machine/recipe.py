"""What a lab machine contains (recipe.yaml), and the one root file system built from it.

Both labgen-built machines come from here: the docker provider imports the root
file system as its base image, a VM provider writes it into a disk.
`build_rootfs` is the pipeline they share: debootstrap from Debian's mirror, the
offline substitutes for the labs' images, then users, sshd and labgen's init.
Nothing comes from Docker Hub.
"""

from __future__ import annotations

import contextlib
import fnmatch
import functools
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from debian import deb822
from pydantic import BaseModel, ConfigDict, Field

from labgen import __version__
from labgen.core import resources
from labgen.core.context import Say
from labgen.core.errors import MachineError, PrerequisiteError, UsageError

RECIPE_FILE = Path(__file__).with_name("recipe.yaml")
IMAGES_DIR_IN_MACHINE = "/opt/labgen/images"
LABEL_SUBSTITUTE = "org.labgen.substitute"
BOX_SCRIPTS = ("configure-rootfs.sh", "labgen-init.sh", "configure-vm.sh")


class ImageRecipe(BaseModel):
    """How to make an offline stand-in for a registry image from Debian packages."""

    model_config = ConfigDict(extra="forbid")

    packages: list[str] = Field(min_length=1)
    exclude: list[str] = Field(default_factory=list)
    busybox_links: bool = False
    cmd: list[str] = Field(min_length=1)
    note: str = Field(pattern=r"^[^\"\\\n]+$")


ENGINE_PATTERN = r"^\d+\.\d+$"


class EngineSpec(BaseModel):
    """One Docker engine: the Debian suite whose docker.io it is, and what else it needs."""

    model_config = ConfigDict(extra="forbid")

    suite: str = Field(pattern=r"^[a-z]+$")
    packages: list[str] = Field(default_factory=list)


class VmSpec(BaseModel):
    """recipe.yaml's vm: what only a VM needs (a VM box)."""

    model_config = ConfigDict(extra="forbid")

    packages: list[str]
    disk_gb: int = Field(ge=2, le=64)
    box_version: str = Field(pattern=r"^\d+\.\d+\.\d+$")


class RecipeSpec(BaseModel):
    """The contents of recipe.yaml."""

    model_config = ConfigDict(extra="forbid")

    mirror: str
    user: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    default_engine: str
    engines: dict[str, EngineSpec]
    packages: list[str]
    images: dict[str, ImageRecipe]
    vm: VmSpec


@dataclass(frozen=True)
class Substitute:
    """One substitute image as the machine sees it: a tarball and how to import it."""

    name: str
    file: str
    cmd_json: str
    note: str


@functools.cache
def recipe_spec() -> RecipeSpec:
    """recipe.yaml, validated."""
    spec = RecipeSpec.model_validate(yaml.safe_load(RECIPE_FILE.read_text(encoding="utf-8")))
    bad = [e for e in spec.engines if not re.fullmatch(ENGINE_PATTERN, e)]
    if bad or spec.default_engine not in spec.engines:
        raise ValueError(f"{RECIPE_FILE}: engines must be MAJOR.MINOR and include the default")
    return spec


def engines() -> list[str]:
    """The Docker engines a machine can have, oldest first.

    >>> engines()
    ['20.10', '26.1', '28.5']
    """
    return sorted(recipe_spec().engines, key=engine_key)


def engine_key(engine: str) -> tuple[int, ...]:
    """An engine's version as a tuple that sorts and compares.

    >>> engine_key("28.5") > engine_key("26.1") > engine_key("20.10")
    True
    """
    return tuple(int(part) for part in engine.split("."))


def engine(name: str | None) -> str:
    """`name` if the recipe has that engine (None: the default), else a UsageError."""
    if name is None:
        return recipe_spec().default_engine
    if name not in recipe_spec().engines:
        raise UsageError(f"unknown Docker engine {name!r}; labgen has: {', '.join(engines())}")
    return name


def engine_slug(name: str) -> str:
    """An engine as it may appear in a machine's name.

    >>> engine_slug("28.5")
    '28-5'
    """
    return name.replace(".", "-")


def known_images() -> set[str]:
    """The image names the recipe has offline substitutes for."""
    return set(recipe_spec().images)


def substitute(name: str) -> Substitute:
    """The substitute for image `name`: its tarball's file name, command and note."""
    recipe = recipe_spec().images[name]
    return Substitute(
        name=name,
        file=re.sub(r"[^A-Za-z0-9_.-]", "_", name) + ".tar",
        cmd_json=json.dumps(recipe.cmd),
        note=recipe.note,
    )


def box_script(name: str) -> Path:
    """One of the scripts the recipe runs or installs (templates/box/)."""
    return resources.templates_dir() / "box" / name


def recipe_tag(engine_name: str) -> str:
    """`<engine>-<suite>-<digest>`: one per engine, changing whenever the recipe, its
    scripts or labgen do. Providers name what they build after it (labgen/base:TAG)."""
    digest = hashlib.sha256(f"{__version__}\0{engine_name}".encode())
    for path in (RECIPE_FILE, *(box_script(s) for s in BOX_SCRIPTS)):
        digest.update(path.read_bytes())
    suite = recipe_spec().engines[engine_name].suite
    return f"{engine_name}-{suite}-{digest.hexdigest()[:12]}"


def mirror() -> str:
    """Debian's mirror: $LABGEN_DEBIAN_MIRROR, else the recipe's."""
    return os.environ.get("LABGEN_DEBIAN_MIRROR") or recipe_spec().mirror


def require_root_and_tools(what: str, tools: Sequence[str], packages: str = "") -> None:
    """Building a root file system needs root and debootstrap (and `tools`, from the
    Debian `packages`)."""
    if os.geteuid() != 0:
        raise PrerequisiteError(
            f"building {what} needs root (debootstrap makes a root file system)",
            hint="run `sudo labgen box build` once; later `labgen up` reuses it",
        )
    missing = [t for t in ("debootstrap", *tools) if not which(t)]
    if missing:
        raise PrerequisiteError(
            f"building {what} needs {', '.join(missing)}, which is not installed",
            hint=f"apt-get install debootstrap {packages}".strip(),
        )


def which(tool: str) -> bool:
    """On PATH, or in the sbin folders a non-root PATH may lack."""
    return any(shutil.which(tool, path=p) for p in (None, "/usr/sbin:/sbin:/usr/local/sbin"))


def build_rootfs(
    root: Path, engine_name: str, say: Say, extra_packages: Sequence[str] = ()
) -> None:
    """The recipe's root file system with Docker `engine_name` in `root`: debootstrap,
    substitutes, configuration."""
    spec = recipe_spec()
    row = spec.engines[engine_name]
    packages = list(dict.fromkeys([*spec.packages, *row.packages, *extra_packages]))
    started = time.monotonic()
    _debootstrap(row.suite, packages, root, say)
    say(f"root file system ready ({time.monotonic() - started:.0f} s)")
    images_dir = root / IMAGES_DIR_IN_MACHINE.lstrip("/")
    images_dir.mkdir(parents=True, exist_ok=True)
    for name, image in spec.images.items():
        say(f"making the offline substitute for {name}")
        write_substitute(root, image, images_dir / substitute(name).file)
    say("configuring users, sshd and the machine's init")
    init = root / "usr/local/sbin/labgen-init"
    shutil.copyfile(box_script("labgen-init.sh"), init)
    init.chmod(0o755)
    run_in_chroot(root, box_script("configure-rootfs.sh"), "configuring the root file system")


def run_in_chroot(root: Path, script: Path, what: str) -> None:
    """Run a shell script inside `root` (chroot), with the recipe's user as $1."""
    proc = subprocess.run(
        ["chroot", str(root), "/bin/sh", "-s", "--", recipe_spec().user],
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
    cmd += [suite, str(root), mirror()]
    say(f"debootstrap {suite} from {mirror()} (about a minute)")
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


def _closure(root: Path, recipe: ImageRecipe) -> list[str]:
    graph = _dependency_graph(root)
    todo = list(recipe.packages)
    seen: set[str] = set()
    while todo:
        pkg = todo.pop()
        if pkg in seen or any(fnmatch.fnmatchcase(pkg, x) for x in recipe.exclude):
            continue
        if pkg not in graph:
            raise MachineError(f"{RECIPE_FILE}: image package {pkg!r} is not installed in the box")
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


def write_substitute(root: Path, recipe: ImageRecipe, target: Path) -> None:
    """An image tarball of the recipe's packages (and their dependencies) from `root`."""
    root = root.resolve()
    members: dict[str, Path] = {}
    for pkg in _closure(root, recipe):
        for path in _package_files(root, pkg):
            real = _in_root(root, path)
            if real.is_symlink() and str(real.relative_to(root)) in _MERGED_USR_LINKS:
                continue  # added once, below, before anything is unpacked through it
            if real.is_symlink() or real.is_file():
                members[str(real.relative_to(root))] = real
    for etc in ("etc/passwd", "etc/group", "etc/nsswitch.conf"):
        if (root / etc).is_file():
            members.setdefault(etc, root / etc)
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
        if recipe.busybox_links:
            _add_busybox_links(tar, root, set(members))


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
