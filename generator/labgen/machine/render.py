"""Rendering a lab into an instance directory: Vagrantfile, provisioning, the lab's scripts."""

from __future__ import annotations

import hashlib
import io
import json
import shlex
import shutil
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import jinja2
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from labgen import __version__, inmachine
from labgen.core import resources
from labgen.core.lab import CHECKS_FILE, LAB_FILE, Lab, Step, read_lab_file
from labgen.machine import recipe

LAB_ROOT_IN_MACHINE = "/opt/labgen"
KEY_NAME = "id_ed25519"
# labgen/inmachine/ is copied whole into the machine as lab/labgen/, for `labgen-lab check`
# and `labgen-lab trace` (standard library only, as Debian's python3 has; pytest and
# testinfra from Debian for the checks). Labs import it there as `labgen.checklib`.
IN_MACHINE = Path(inmachine.__file__).resolve().parent


def in_machine_modules() -> list[Path]:
    """The modules shipped into every lab machine, in name order."""
    return sorted(IN_MACHINE.glob("*.py"))


def jinja_env() -> jinja2.Environment:
    """Templates fail loudly on a missing value; |sh and |ruby quote for their language."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(
            [str(resources.data_root()), str(resources.templates_dir())]
        ),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["sh"] = lambda value: shlex.quote(str(value))
    env.filters["ruby"] = ruby_literal
    env.filters["comment"] = lambda value: " ".join(str(value).split())
    return env


def ruby_literal(value: object) -> str:
    """A double-quoted Ruby string literal that reads back exactly: printable ASCII as
    is (with ", \\ and # escaped, so no #{} interpolation), everything else as \\u{hex}.
    (In a single-quoted literal Ruby reads CR LF as LF.)"""
    out = []
    for char in str(value):
        if char in '"\\#':
            out.append("\\" + char)
        elif " " <= char <= "~":
            out.append(char)
        else:
            out.append(f"\\u{{{ord(char):x}}}")
    return '"' + "".join(out) + '"'


# Written by every provisioning (provision.sh's last step) and compared before a machine
# is reused or a pooled one claimed: the boot, dockerd's pid and its start time. A
# restarted container keeps /run but gets a new dockerd (and an empty /var/lib/docker).
PROVISIONED_MARKER = "/run/labgen/provisioned"
PROVISIONED_NOW = (
    'd=$(pgrep -xo dockerd); printf "%s %s %s\\n" "$(cat /proc/sys/kernel/random/boot_id)"'
    ' "$d" "$(cut -d" " -f22 "/proc/$d/stat" 2>/dev/null)"'
)


@dataclass(frozen=True)
class Names:
    """What a machine is called: `instance` by labgen, `made_as` by the provider (its
    container, network and labels: a claimed machine keeps the pooled machine's)."""

    instance: str
    made_as: str


def render_instance(
    lab: Lab,
    instance: str,
    settings: Mapping[str, object],
    public_key: str,
    target: Path,
    engine: str | None = None,
    bundle: bool = False,
    made_as: str | None = None,
) -> str:
    """Write the Vagrantfile, provision.sh and lab/ into `target`; return their digest.

    `settings`: every provider's settings for its block, by provider name, in the
    order the blocks appear (providers.all_providers()). `engine`: the machine's
    Docker engine (None: the lab's default), which its checks are told. `made_as`: the
    pooled machine a claimed one was made as (its container and network keep that name).
    """
    engine = engine or lab.spec.engine
    env = jinja_env()
    spec = recipe.recipe_spec()
    lab_dir = f"{LAB_ROOT_IN_MACHINE}/{lab.name}"
    names = Names(instance, made_as or instance)
    files: dict[str, str] = {
        "Vagrantfile": _vagrantfile(
            env,
            names,
            settings,
            public_key,
            bundle=bundle,
            title=f"lab {lab.name}",
            hostname=hostname(lab),
            ports=lab.spec.ports,
            has_lab=True,
        ),
        "provision.sh": env.get_template("provision.sh.j2").render(
            lab=lab,
            lab_dir=lab_dir,
            substitutes=[recipe.substitute(name) for name in lab.spec.images],
            keep_images=[tagged(name) for name in lab.spec.images],
            daemon_json=daemon_json(lab),
            hostname=hostname(lab),
            **_provision_inputs(spec),
        ),
        "lab/labgen-lab": env.get_template("lab/labgen-lab.sh.j2").render(lab=lab, lab_dir=lab_dir),
        "lab/steps/ORDER": "".join(f"{step.id}\n" for step in lab.steps),
        "lab/ENGINE": f"{engine}\n",
        # labgen-lab names a missing one when a step fails: the machine never pulls.
        "lab/IMAGES": "".join(f"{tagged(name)}\n" for name in lab.spec.images),
    }
    step_template = env.get_template("lab/step.sh.j2")
    for index, step in enumerate(lab.steps, start=1):
        files[f"lab/steps/{step.id}.sh"] = step_template.render(lab=lab, index=index, step=step)
        files[f"lab/steps/{step.id}.title"] = step.title + "\n"
        files[f"lab/steps/{step.id}.command"] = step.command.rstrip("\n") + "\n"
        files[f"lab/steps/{step.id}.md"] = explanation(step, engine) + "\n"
    for name in (LAB_FILE, CHECKS_FILE):
        files[f"lab/{name}"] = read_lab_file(lab.path / name)
    # What checks.py imports from labgen, so `labgen-lab check` works in the machine.
    for module in in_machine_modules():
        files[f"lab/labgen/{module.name}"] = module.read_text(encoding="utf-8")
    return _write_files(target, files)


def render_pooled(
    instance: str, settings: Mapping[str, object], public_key: str, target: Path, engine: str
) -> str:
    """A pooled machine's instance directory: the Vagrantfile and a provision.sh that
    does what every lab's does before the lab's own settings and files (Docker running,
    every offline image loaded). Returns the digest of what it wrote."""
    env = jinja_env()
    spec = recipe.recipe_spec()
    files = {
        "Vagrantfile": _vagrantfile(
            env,
            Names(instance, instance),
            settings,
            public_key,
            bundle=False,
            title=f"the warm pool (Docker {engine})",
            hostname="lab-pool",
            ports=[],
            has_lab=False,
        ),
        "provision.sh": env.get_template("provision.sh.j2").render(
            lab=None,
            lab_dir="",
            substitutes=[recipe.substitute(name) for name in sorted(spec.images)],
            keep_images=[],
            daemon_json="",
            hostname="",
            **_provision_inputs(spec),
        ),
    }
    return _write_files(target, files)


def _vagrantfile(
    env: jinja2.Environment,
    names: Names,
    settings: Mapping[str, object],
    public_key: str,
    *,
    bundle: bool,
    title: str,
    hostname: str,
    ports: Sequence[int],
    has_lab: bool,
) -> str:
    return env.get_template("Vagrantfile.j2").render(
        title=title,
        hostname=hostname,
        ports=list(ports),
        has_lab=has_lab,
        instance=names.instance,
        made_as=names.made_as,
        machine_id=resources.machine_id(names.made_as),
        home_tag=resources.home_tag(),
        labgen_version=__version__,
        user=recipe.recipe_spec().user,
        providers=list(settings),
        settings=settings,
        public_key=public_key,
        bundle=bundle,
    )


def _provision_inputs(spec: recipe.RecipeSpec) -> dict[str, object]:
    """What provision.sh needs that is the same for every machine."""
    return {
        "user": spec.user,
        "packages": spec.packages,
        "images_dir": recipe.IMAGES_DIR_IN_MACHINE,
        "substitute_label": recipe.LABEL_SUBSTITUTE,
        "marker": PROVISIONED_MARKER,
        "marker_command": PROVISIONED_NOW,
    }


def _write_files(target: Path, files: dict[str, str]) -> str:
    """Write `files` (relative path -> text) under `target`, lab/ also as lab.tar; their
    digest."""
    digest = hashlib.sha256()
    for rel in sorted(files):
        path = target / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(files[rel], encoding="utf-8")
        if _executable(rel):
            path.chmod(0o755)
        digest.update(rel.encode() + b"\0" + files[rel].encode() + b"\0")
    lab_files = {r[4:]: t for r, t in files.items() if r.startswith("lab/")}
    if lab_files:
        _write_lab_tar(target / "lab.tar", lab_files)
    return digest.hexdigest()


def tagged(image: str) -> str:
    """An image's name as `docker images` lists it: with its tag, `latest` when it has
    none (a registry's port is not a tag).

    >>> tagged("busybox"), tagged("python:3.7-slim"), tagged("localhost:5000/x")
    ('busybox:latest', 'python:3.7-slim', 'localhost:5000/x:latest')
    """
    return image if ":" in image.rsplit("/", 1)[-1] else f"{image}:latest"


def hostname(lab: Lab) -> str:
    """A lab machine's host name (at most 63 characters, as a DNS label).

    >>> from types import SimpleNamespace as NS
    >>> hostname(NS(name="port-forwarding"))
    'lab-port-forwarding'
    """
    return f"lab-{lab.name}"[:63]


def explanation(step: Step, engine: str) -> str:
    """A step's explanation on a machine with Docker `engine`: with that engine's note."""
    text = step.explain.rstrip("\n")
    if engine in step.notes:
        text += f"\n\n**On Docker {engine}:** {step.notes[engine].strip()}"
    return text


def daemon_json(lab: Lab) -> str:
    """The lab's dockerd settings as daemon.json, or "" when it keeps Docker's defaults.

    >>> from types import SimpleNamespace as NS
    >>> from labgen.core.lab import Daemon
    >>> daemon_json(NS(spec=NS(daemon=Daemon.model_validate({"userland-proxy": False}))))
    '{"userland-proxy": false}'
    """
    settings = lab.spec.daemon.model_dump(by_alias=True, exclude_defaults=True)
    return json.dumps(settings) if settings else ""


def _executable(rel: str) -> bool:
    return rel.endswith(".sh") or rel == "lab/labgen-lab"


def _write_lab_tar(path: Path, files: dict[str, str]) -> None:
    """lab/ as one reproducible tarball (sorted, no times or owners): what Vagrant uploads."""
    with tarfile.open(path, "w") as tar:
        for rel in sorted(files):
            data = files[rel].encode("utf-8")
            info = tarfile.TarInfo(rel)
            info.size = len(data)
            info.mode = 0o755 if _executable("lab/" + rel) else 0o644
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))


def write_keypair(target: Path, comment: str) -> str:
    """A fresh ed25519 key pair in target/keys; returns the public key line."""
    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    keys = target / "keys"
    keys.mkdir(parents=True, exist_ok=True)
    (keys / KEY_NAME).write_bytes(private)
    (keys / KEY_NAME).chmod(0o600)
    line = f"{public.decode()} {comment}"
    (keys / f"{KEY_NAME}.pub").write_text(line + "\n", encoding="utf-8")
    return line


def copy_tree_atomic(source: Path, target: Path) -> None:
    """Move a fully rendered directory into place (no half-made instance dirs)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        shutil.rmtree(target)
    source.rename(target)
