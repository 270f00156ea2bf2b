"""The lab machine's contents (box.yaml) and the docker provider's base image built from it.

The base image is a Debian root file system made with debootstrap from Debian's
mirror, holding Docker, sshd, the seed's tools and offline substitutes for the
images the labs use. Nothing comes from Docker Hub.
"""

from __future__ import annotations

import contextlib
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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field

from . import __version__, hostdocker, resources
from .errors import UsageError

Progress = Callable[[str], None]

BOX_FILE = Path(__file__).with_name("box.yaml")
IMAGE_REPO = "labgen/base"
IMAGES_DIR_IN_MACHINE = "/opt/labgen/images"
LABEL_BOX = "org.labgen.box"
LABEL_SUBSTITUTE = "org.labgen.substitute"


class ImageRecipe(BaseModel):
    """How to make an offline stand-in for a registry image from Debian packages."""

    model_config = ConfigDict(extra="forbid")

    packages: list[str] = Field(min_length=1)
    exclude: list[str] = Field(default_factory=list)
    busybox_links: bool = False
    cmd: list[str] = Field(min_length=1)
    note: str = Field(pattern=r"^[^\"\\\n]+$")


class Engine(BaseModel):
    model_config = ConfigDict(extra="forbid")
    package: str
    version: str


class VmSpec(BaseModel):
    """box.yaml's vm: what only a VM needs (the libvirt box)."""

    model_config = ConfigDict(extra="forbid")

    packages: list[str]
    disk_gb: int = Field(ge=2, le=64)
    box_version: str = Field(pattern=r"^\d+\.\d+\.\d+$")


class BoxSpec(BaseModel):
    """The contents of box.yaml."""

    model_config = ConfigDict(extra="forbid")

    suite: str = Field(pattern=r"^[a-z]+$")
    mirror: str
    user: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    engine: Engine
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
def box_spec() -> BoxSpec:
    return BoxSpec.model_validate(yaml.safe_load(BOX_FILE.read_text(encoding="utf-8")))


def known_images() -> set[str]:
    return set(box_spec().images)


def substitute(name: str) -> Substitute:
    recipe = box_spec().images[name]
    return Substitute(
        name=name,
        file=re.sub(r"[^A-Za-z0-9_.-]", "_", name) + ".tar",
        cmd_json=json.dumps(recipe.cmd),
        note=recipe.note,
    )


def _box_inputs() -> list[Path]:
    box_dir = resources.templates_dir() / "box"
    return [
        BOX_FILE,
        box_dir / "configure-rootfs.sh",
        box_dir / "labgen-init.sh",
        box_dir / "configure-vm.sh",
    ]


def base_image_tag() -> str:
    """The tag of the base image for the current box recipe (changes when the recipe does)."""
    digest = hashlib.sha256(__version__.encode())
    for path in _box_inputs():
        digest.update(path.read_bytes())
    return f"{IMAGE_REPO}:{box_spec().suite}-{digest.hexdigest()[:12]}"


def mirror() -> str:
    return os.environ.get("LABGEN_DEBIAN_MIRROR") or box_spec().mirror


@dataclass(frozen=True)
class BoxInfo:
    tag: str
    created: str
    size: str
    current: bool


def list_boxes() -> list[BoxInfo]:
    """Base images labgen has built on this host."""
    out = hostdocker.docker(
        [
            "image",
            "ls",
            "--filter",
            f"label={LABEL_BOX}",
            "--format",
            "{{.Repository}}:{{.Tag}}\t{{.CreatedSince}}\t{{.Size}}",
        ]
    ).stdout
    current = base_image_tag()
    boxes = []
    for line in out.splitlines():
        tag, created, size = line.split("\t")
        boxes.append(BoxInfo(tag=tag, created=created, size=size, current=tag == current))
    return boxes


def prune_boxes() -> list[str]:
    """Remove base images and libvirt boxes of older recipes (never one still in use)."""
    from . import vmbox

    removed = []
    for info in list_boxes():
        if not info.current and hostdocker.docker(["rmi", info.tag], check=False).returncode == 0:
            removed.append(info.tag)
    for vm in vmbox.list_libvirt_boxes():
        if not vm.current:
            try:
                vmbox.remove_libvirt_box(vm.name)
            except UsageError:
                continue  # a VM still runs from it
            removed.append(vm.name)
    return removed


def image_present() -> bool:
    """Whether the base image of the current recipe is on this host."""
    return hostdocker.image_exists(base_image_tag())


def save_image(tag: str, target: Path) -> None:
    """`docker save` an image to a tarball (written beside, then renamed into place)."""
    partial = target.with_name(target.name + ".partial")
    hostdocker.docker(["save", "-o", str(partial), tag], timeout=1800)
    partial.rename(target)


def load_images(tarball: Path) -> str:
    """`docker load` a tarball; returns what Docker said it loaded."""
    if not tarball.is_file():
        raise UsageError(f"{tarball}: no such file")
    return hostdocker.docker(["load", "-i", str(tarball)], timeout=1800).stdout.strip()


def ensure_base_image(progress: Progress, *, force: bool = False) -> tuple[str, bool]:
    """Build the base image unless it exists; returns (tag, built_now)."""
    hostdocker.require_daemon()
    tag = base_image_tag()
    if not force and hostdocker.image_exists(tag):
        return tag, False
    build_base_image(tag, progress)
    return tag, True


def build_base_image(tag: str, progress: Progress) -> None:
    """debootstrap the recipe, add the substitutes and labgen's init, import into Docker."""
    if os.geteuid() != 0:
        raise UsageError(
            "building the base image needs root (debootstrap makes a root file system)",
            hint="run `sudo labgen box build` once; later `labgen up` reuses the image",
        )
    if shutil.which("debootstrap") is None:
        raise UsageError(
            "building the base image needs debootstrap, which is not installed",
            hint="apt-get install debootstrap",
        )
    spec = box_spec()
    cache = resources.labgen_home() / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    with scratch_dir(cache) as work:
        root = work / "rootfs"
        started = time.monotonic()
        debootstrap_rootfs(spec, root, progress)
        progress(f"root file system ready ({time.monotonic() - started:.0f} s)")
        images_dir = root / IMAGES_DIR_IN_MACHINE.lstrip("/")
        images_dir.mkdir(parents=True, exist_ok=True)
        for name, recipe in spec.images.items():
            progress(f"making the offline substitute for {name}")
            write_substitute(root, recipe, images_dir / substitute(name).file)
        progress("configuring users, sshd and the machine's init")
        configure_rootfs(root, spec)
        progress(f"importing the root file system as {tag}")
        _import(root, tag, spec)
    progress(f"built {tag}")


def debootstrap_rootfs(spec: BoxSpec, root: Path, progress: Progress) -> None:
    """A minbase Debian root file system with the recipe's packages, from Debian's mirror."""
    cmd = [
        "debootstrap",
        "--variant=minbase",
        "--include=" + ",".join(spec.packages),
        spec.suite,
        str(root),
        mirror(),
    ]
    progress(f"debootstrap {spec.suite} from {mirror()} (about a minute)")
    log: list[str] = []
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            log.append(line)
            if line.startswith("I: "):
                progress("debootstrap: " + line[3:].strip())
    if proc.returncode != 0:
        tail = "".join(log[-15:])
        raise UsageError(
            f"debootstrap failed (exit {proc.returncode}):\n{tail}",
            hint="check that Debian's mirror is reachable, or set LABGEN_DEBIAN_MIRROR",
        )


def configure_rootfs(root: Path, spec: BoxSpec) -> None:
    """labgen's init, the login user, sshd's settings: configure-rootfs.sh in a chroot."""
    box_dir = resources.templates_dir() / "box"
    init = root / "usr/local/sbin/labgen-init"
    shutil.copyfile(box_dir / "labgen-init.sh", init)
    init.chmod(0o755)
    script = (box_dir / "configure-rootfs.sh").read_bytes()
    proc = subprocess.run(
        ["chroot", str(root), "/bin/sh", "-s", "--", spec.user],
        input=script,
        capture_output=True,
    )
    if proc.returncode != 0:
        raise UsageError(
            "configuring the root file system failed:\n" + proc.stderr.decode(errors="replace")
        )


def _import(root: Path, tag: str, spec: BoxSpec) -> None:
    changes = [
        'ENTRYPOINT ["/usr/bin/tini", "--"]',
        'CMD ["/usr/local/sbin/labgen-init"]',
        f'LABEL {LABEL_BOX}="{spec.suite}" org.labgen.engine="{spec.engine.package} '
        f'{spec.engine.version}"',
    ]
    args = ["docker", "import"]
    for change in changes:
        args += ["--change", change]
    tar = subprocess.Popen(
        ["tar", "-C", str(root), "--numeric-owner", "-cf", "-", "."], stdout=subprocess.PIPE
    )
    imp = subprocess.run([*args, "-", tag], stdin=tar.stdout, capture_output=True, text=True)
    assert tar.stdout is not None
    tar.stdout.close()
    tar.wait()
    if imp.returncode != 0 or tar.returncode != 0:
        raise UsageError(f"docker import of the base image failed: {imp.stderr.strip()}")


# --- substitutes ---------------------------------------------------------


def _installed_packages(root: Path) -> dict[str, list[str]]:
    """Installed package -> the packages it depends on (alternatives: first installed)."""
    out = subprocess.run(
        [
            "dpkg-query",
            f"--admindir={root / 'var/lib/dpkg'}",
            "-W",
            "-f=${Package}\t${Provides}\t${Pre-Depends}, ${Depends}\n",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    provides: dict[str, str] = {}
    raw: dict[str, str] = {}
    for line in out.splitlines():
        pkg, prov, deps = line.split("\t")
        raw[pkg] = deps
        for p in filter(None, (x.strip().split(" ")[0] for x in prov.split(","))):
            provides.setdefault(p, pkg)
    graph: dict[str, list[str]] = {}
    for pkg, deps in raw.items():
        wanted = []
        for clause in filter(None, (c.strip() for c in deps.split(","))):
            for alt in clause.split("|"):
                name = alt.strip().split(" ")[0].split(":")[0]
                real = name if name in raw else provides.get(name)
                if real:
                    wanted.append(real)
                    break
        graph[pkg] = wanted
    return graph


def _closure(root: Path, recipe: ImageRecipe) -> list[str]:
    graph = _installed_packages(root)
    todo = list(recipe.packages)
    seen: set[str] = set()
    while todo:
        pkg = todo.pop()
        if pkg in seen or pkg in recipe.exclude:
            continue
        if pkg not in graph:
            raise UsageError(f"box.yaml: image package {pkg!r} is not installed in the box")
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
def scratch_dir(parent: Path) -> Iterator[Path]:
    """A work directory removed afterwards, never through a mount left inside it."""
    work = Path(tempfile.mkdtemp(prefix="box-build-", dir=parent))
    try:
        yield work
    finally:
        unmount_below(work)
        shutil.rmtree(work, ignore_errors=True)


def unmount_below(path: Path) -> None:
    """debootstrap mounts /proc and /sys in the target; never rmtree through a mount."""
    prefix = str(path.resolve())
    with open("/proc/mounts", encoding="utf-8") as mounts:
        points = [line.split()[1] for line in mounts]
    for point in sorted((p for p in points if p.startswith(prefix)), reverse=True):
        subprocess.run(["umount", "-l", point], check=False)
