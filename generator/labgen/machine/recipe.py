"""What a lab machine contains (recipe.yaml): its Debian mirror and packages, the Docker
engines (one Debian suite each), the offline substitutes for the labs' images, the VM's
extras, and the tag that names what providers build from it.

rootfs.py builds the root file system both labgen-built machines come from.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field

from labgen import __version__
from labgen.core import resources
from labgen.core.errors import UsageError

RECIPE_FILE = Path(__file__).with_name("recipe.yaml")
# Where a lab author who needs more than labgen ships adds it: the recipe of a source
# checkout. Messages name this, never RECIPE_FILE: installed, that is the package's copy
# (site-packages in a wheel), replaced at every install and never the user's to edit.
RECIPE_IN_CHECKOUT = "generator/labgen/machine/recipe.yaml"
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
        raise UsageError(
            f"unknown Docker engine {name!r}; labgen has: {', '.join(engines())}",
            hint=f"a new engine is an entry under engines: in {RECIPE_IN_CHECKOUT} of a "
            "labgen source checkout (a Debian suite whose docker.io is that engine)",
        )
    return name


def engine_slug(name: str) -> str:
    """An engine as it may appear in a machine's name.

    >>> engine_slug("28.5")
    '28-5'
    """
    return name.replace(".", "-")


# What the machine's python3 has beyond its standard library, by the recipe's Debian
# package that brings it: a lab's checks may import these (lint refuses the rest).
# Measured in the boxes' /usr/lib/python3/dist-packages (bookworm: Python 3.11, trixie:
# 3.13, sid: 3.14, 2026-12-02); only what all three have is listed (sid's 3.14 needs no
# exceptiongroup nor tomli, so it has neither).
PYTHON_MODULES: dict[str, tuple[str, ...]] = {
    "python3-testinfra": ("testinfra", "pytest", "_pytest", "pluggy", "iniconfig", "packaging"),
}


def machine_python_modules() -> set[str]:
    """The top-level modules a machine's python3 has from the recipe's Debian packages,
    besides the standard library.

    >>> sorted(machine_python_modules())
    ['_pytest', 'iniconfig', 'packaging', 'pluggy', 'pytest', 'testinfra']
    """
    packages = set(recipe_spec().packages)
    return {m for package, mods in PYTHON_MODULES.items() if package in packages for m in mods}


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


def which(tool: str) -> bool:
    """On PATH, or in the sbin folders a non-root PATH may lack."""
    return any(shutil.which(tool, path=p) for p in (None, "/usr/sbin:/sbin:/usr/local/sbin"))
