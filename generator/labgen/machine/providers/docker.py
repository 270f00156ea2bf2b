"""The docker provider: each machine a container running its own sshd and dockerd.

Its box is a base image imported from the recipe's root file system; each machine
gets a docker network of its own (so the inner docker0 can be 172.17.0.1/16 as in
the seed), created before `vagrant up` and removed with the machine.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
import shutil
import socket
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from labgen.core import resources
from labgen.core.context import Say
from labgen.core.errors import MachineError, PrerequisiteError, UsageError
from labgen.machine import recipe, rootfs
from labgen.machine.instance import InstanceState, host_env, proxy_command
from labgen.machine.providers.base import BoxInfo, Leftover, Probe, Provider
from labgen.machine.signals import uninterrupted

LABEL_BOX = "org.labgen.box"
# The machine networks labgen carves /24s from; far from Docker's default 172.17-172.29.
SUBNET_POOL = ipaddress.IPv4Network("172.30.0.0/16")
# A listing of what labgen left (leftovers) that takes longer has no daemon behind it.
SCAN_TIMEOUT = 30.0
# What `docker rm` / `docker network rm` say of a container or network already gone.
GONE = re.compile(r"no such (container|network)|network \S+ not found", re.I)
DAEMON_FIX = (
    "start it: systemctl start docker (or, without systemd, "
    "`dockerd >/var/log/dockerd.log 2>&1 &`), and use an account that may "
    "reach its socket (root, or the docker group)"
)


def docker(
    args: Sequence[str],
    *,
    check: bool = True,
    input: bytes | None = None,
    timeout: float = 600,
    host: str = "",
) -> subprocess.CompletedProcess[str]:
    """Run `docker ARGS` against `host`'s daemon ("": this one's), capturing output; a
    failure (with `check`) is a MachineError."""
    if shutil.which("docker") is None:
        raise PrerequisiteError(
            "the docker provider needs Docker, and `docker` is not on PATH",
            hint="install it: apt-get install docker.io",
        )
    proc = subprocess.run(
        ["docker", *args],
        capture_output=True,
        text=input is None,
        input=input,
        timeout=timeout,
        env={**os.environ, **host_env(host)} if host else None,
    )
    if check and proc.returncode != 0:
        err = proc.stderr if isinstance(proc.stderr, str) else proc.stderr.decode(errors="replace")
        where = f" on host {host}" if host else ""
        raise MachineError(f"`docker {' '.join(args[:3])} ...` failed{where}: {err.strip()}")
    return proc


def probe_docker() -> Probe:
    """The Docker daemon answers."""
    if shutil.which("docker") is None:
        return Probe("docker", False, "docker is not on PATH", "apt-get install docker.io")
    try:
        proc = subprocess.run(
            ["docker", "version", "--format", "{{.Server.Version}}"],
            capture_output=True,
            text=True,
            timeout=20,
        )
    except subprocess.TimeoutExpired:
        proc = None
    if proc is None or proc.returncode != 0:
        reason = (proc.stderr.strip().splitlines() or ["no answer"])[-1] if proc else "no answer"
        return Probe("docker", False, f"the Docker daemon does not answer: {reason}", DAEMON_FIX)
    return Probe("docker", True, f"Docker Engine {proc.stdout.strip()} answers")


def require_daemon() -> None:
    """A PrerequisiteError with the fix unless the Docker daemon answers."""
    answer = probe_docker()
    if not answer.ok:
        raise PrerequisiteError(answer.detail, hint=answer.fix)


@dataclass(frozen=True)
class DockerSettings:
    """What the docker block needs that only the host can tell."""

    image: str
    network: str
    subnet: str
    ssh_port: int
    privileged: bool
    # Without --privileged: the capabilities dropped from ALL. SYS_RESOURCE here; none on
    # a host that is itself a container (it lacks SYS_RESOURCE: "invalid CapDrop").
    cap_drop: list[str] = field(default_factory=lambda: ["SYS_RESOURCE"])
    # For a machine on another host: how Vagrant and labgen reach its SSH port there.
    proxy_command: str = ""
    # The first two octets of the pool the Vagrantfile falls back to (172.30).
    pool_prefix: str = ".".join(str(SUBNET_POOL.network_address).split(".")[:2])
    nameservers: list[str] = field(default_factory=list)
    # The free /24s to try, in order, when labgen creates the network (not rendered).
    candidates: list[str] = field(default_factory=list)


class DockerProvider(Provider):
    probes = {**Provider.probes, "docker": probe_docker}
    builds_box = True

    def machine_networks(self) -> list[ipaddress.IPv4Network]:
        return [SUBNET_POOL]

    # --- the box: a base image ------------------------------------------------------

    def image(self, engine: str | None = None) -> str:
        """The base image with Docker `engine` (None: the default) of the current recipe,
        e.g. labgen/base:20.10-bookworm-1234abcd5678."""
        return f"{self.row.extra['image_repo']}:{recipe.recipe_tag(recipe.engine(engine))}"

    def image_present(self, engine: str | None = None, host: str = "") -> bool:
        args = ["image", "inspect", self.image(engine)]
        return docker(args, check=False, host=host).returncode == 0

    def ensure_box(
        self, say: Say, force: bool = False, engine: str | None = None
    ) -> tuple[str, bool]:
        require_daemon()
        engine = recipe.engine(engine)
        tag = self.image(engine)
        if not force and self.image_present(engine):
            return tag, False
        rootfs.require_root_and_tools("the base image", [])
        with rootfs.scratch_dir() as work:
            rootfs.build_rootfs(work / "rootfs", engine, say)
            say(f"importing the root file system as {tag}")
            _import(work / "rootfs", tag, engine)
        say(f"built {tag}")
        return tag, True

    def list_boxes(self) -> list[BoxInfo]:
        fmt = "{{.Repository}}:{{.Tag}}\t{{.CreatedSince}}\t{{.Size}}\t{{.ID}}"
        out = docker(["image", "ls", "--filter", f"label={LABEL_BOX}", "--format", fmt]).stdout
        current = {self.image(e) for e in recipe.engines()}
        boxes = []
        for line in out.splitlines():
            tag, created, size, ident = line.split("\t")
            if tag.startswith("<none>"):  # a build superseded by a rebuild of its tag
                tag = ident
            engine = tag.rpartition(":")[2].split("-")[0]
            engine = engine if re.fullmatch(recipe.ENGINE_PATTERN, engine) else "?"
            boxes.append(BoxInfo(self.name, tag, engine, tag in current, f"{created}  {size}"))
        return boxes

    def prune_boxes(self) -> list[str]:
        return [
            box.name
            for box in self.list_boxes()
            if not box.current and docker(["rmi", box.name], check=False).returncode == 0
        ]

    # --- machines --------------------------------------------------------------------

    def settings(
        self,
        instance: str,
        *,
        live: bool,
        others: Sequence[InstanceState],
        engine: str | None = None,
        host: str = "",
    ) -> DockerSettings:
        image = self.image(engine)
        network = resources.machine_id(instance)
        if not live:
            # A later `vagrant up --provider=docker` can still use these: its trigger
            # creates the network on the first free /24.
            subnet = str(next(SUBNET_POOL.subnets(new_prefix=24)))
            return DockerSettings(image, network, subnet, 2222, True, nameservers=nameservers())
        if host:
            self._require_image_on(host, engine)
        mine = [s.host for s in others if (s.provider, s.on_host) == (self.name, host)]
        used = [*used_subnets(host), *(ipaddress.ip_network(h["subnet"]) for h in mine)]
        candidates = [
            str(net)
            for net in SUBNET_POOL.subnets(new_prefix=24)
            if not any(net.overlaps(u) for u in used)
        ]
        if not candidates:
            raise MachineError("no free /24 left for a lab machine's network in labgen's pool")
        privileged, cap_drop = seat_flags(image, host)
        return DockerSettings(
            image,
            network,
            candidates[0],
            # Free here; on another host Vagrant's auto_correct and `docker port` there
            # (ssh_config) settle a port taken meanwhile.
            _free_port({int(h["ssh_port"]) for h in mine}),
            privileged,
            cap_drop=cap_drop,
            proxy_command=proxy_command(host),
            nameservers=nameservers(),
            candidates=candidates,
        )

    def _require_image_on(self, host: str, engine: str | None) -> None:
        """A UsageError naming the fix when `host` lacks the base image (labgen never
        builds one there: it is pushed from here)."""
        if not self.image_present(engine, host):
            raise UsageError(
                f"host {host} does not have the base image {self.image(engine)}",
                hint=f"`labgen hosts push {host}` copies it there from this machine "
                "(`labgen hosts list` shows what each host has)",
            )

    def prepare(self, state: InstanceState, say: Say) -> None:
        network, candidates = state.host["network"], state.host["candidates"]
        say(f"creating docker network {network}")
        labels = {
            "org.labgen.instance": state.made_as_name,
            "org.labgen.home": resources.home_tag(),
        }
        label_args = [arg for k, v in labels.items() for arg in ("--label", f"{k}={v}")]
        # Another labgen may take a subnet between our look and our claim; Docker
        # then says the pool overlaps and we try the next one. Not interrupted half way:
        # a docker client killed mid-request leaves a network its caller never saw.
        with uninterrupted():
            self._create_network(state, network, candidates, label_args)

    def _create_network(
        self, state: InstanceState, network: str, candidates: list[str], label_args: list[str]
    ) -> None:
        for subnet in candidates:
            proc = docker(
                ["network", "create", "--subnet", subnet, *label_args, network],
                check=False,
                host=state.on_host,
            )
            if proc.returncode == 0:
                state.host["subnet"] = subnet
                return
            if "already exists" in proc.stderr:
                raise UsageError(f"docker network {network} already exists: is another labgen up?")
            if "overlaps" not in proc.stderr:
                raise MachineError(f"cannot create docker network {network}: {proc.stderr.strip()}")
        raise MachineError("no free /24 left for a lab machine's network in labgen's pool")

    def settings_from(self, state: InstanceState) -> DockerSettings:
        return DockerSettings(**state.host)

    def ssh_config(self, state: InstanceState, instance_dir: Path) -> str | None:
        # The container's port 22, forwarded to the port labgen chose unless Vagrant had
        # to pick another: Docker says which (one docker call, not a Vagrant one).
        container = resources.machine_id(state.made_as_name)
        answer = docker(["port", container, "22/tcp"], check=False, host=state.on_host)
        ports = re.findall(r"^127\.0\.0\.1:(\d+)$", answer.stdout, re.M)
        if not ports:
            return None  # ask Vagrant
        key = instance_dir / "keys" / "id_ed25519"
        return "\n".join(
            [
                "Host default",
                "  HostName 127.0.0.1",
                f"  User {recipe.recipe_spec().user}",
                f"  Port {int(ports[0])}",
                "  UserKnownHostsFile /dev/null",
                "  StrictHostKeyChecking no",
                "  PasswordAuthentication no",
                f"  IdentityFile {key}",
                "  IdentitiesOnly yes",
                "  LogLevel FATAL",
                # The port is on that host's 127.0.0.1: reached through an ssh to it.
                *([f"  ProxyCommand {proxy}"] if (proxy := proxy_command(state.on_host)) else []),
                "",
            ]
        )

    def leftovers(self, instance: str | None = None, host: str = "") -> list[Leftover]:
        # labgen makes containers and networks only through the docker client: a host
        # without one has none of them (nothing to look at, unlike a daemon that
        # does not answer, which is an error: see scan).
        if shutil.which("docker") is None:
            return []
        # Found by label, not by name: an interrupted `vagrant up` can leave a
        # container Vagrant never recorded, and a raced `network create` two networks
        # of one name.
        labels = ["--filter", f"label=org.labgen.home={resources.home_tag()}"]
        if instance is not None:
            labels += ["--filter", f"label=org.labgen.instance={instance}"]
        found = []
        for kind, ls, name in (
            ("container", ["ps", "-a"], "{{.Names}}"),
            ("network", ["network", "ls"], "{{.Name}}"),
        ):
            fmt = '{{.ID}}\t{{.Label "org.labgen.instance"}}\t' + name
            what = f"labgen's {kind}s" + (f" on host {host}" if host else "")
            for line in scan([*ls, *labels], fmt, what, host).splitlines():
                ident, owner, _ = [*line.split("\t"), "", ""][:3]
                found.append(Leftover(self.name, owner, kind, ident, host))
        return found

    def remove(self, leftover: Leftover) -> None:
        if leftover.kind == "container":
            args = ["rm", "-f", leftover.name]
        else:
            args = ["network", "rm", leftover.name]
        proc = docker(args, check=False, host=leftover.host)
        # Gone already (Vagrant, or another labgen, a moment before) is what was asked.
        if proc.returncode == 0 or GONE.search(proc.stderr):
            return
        why = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
        raise MachineError(
            f"`docker {' '.join(args)}` failed: {why}: the {leftover.kind} of machine "
            f"{leftover.instance} is still there",
            hint=f"remove it with that command, or run `labgen destroy {leftover.instance}` again",
        )

    def release(self, state: InstanceState) -> None:
        # Containers first: a network with a container on it cannot go.
        found = self.leftovers(state.made_as_name, state.on_host)
        for leftover in sorted(found, key=lambda x: x.kind != "container"):
            self.remove(leftover)

    def bundle_settings(self, instance: str, engine: str | None = None) -> DockerSettings:
        """Settings for a bundle: --privileged probed here when Docker and the image are."""
        # No nameservers: the Vagrantfile reads those of the host that runs `vagrant up`.
        base = replace(
            self.settings(instance, engine=engine, live=False, others=()), nameservers=[]
        )
        if probe_docker().ok and self.image_present(engine):
            privileged, cap_drop = seat_flags(base.image)
            return replace(base, privileged=privileged, cap_drop=cap_drop)
        return base

    # --- the base image on a USB stick ---------------------------------------------

    def save_image(self, target: Path, engine: str | None = None) -> None:
        """`docker save` the base image (written beside, then renamed into place)."""
        partial = target.with_name(target.name + ".partial")
        docker(["save", "-o", str(partial), self.image(engine)], timeout=1800)
        partial.rename(target)

    def load_images(self, tarball: Path) -> str:
        """`docker load` a tarball; returns what Docker said it loaded."""
        if not tarball.is_file():
            raise UsageError(f"{tarball}: no such file")
        return docker(["load", "-i", str(tarball)], timeout=1800).stdout.strip()


PROVIDER_CLASS = DockerProvider


def _import(root: Path, tag: str, engine: str) -> None:
    suite = recipe.recipe_spec().engines[engine].suite
    changes = [
        'ENTRYPOINT ["/usr/bin/tini", "--"]',
        'CMD ["/usr/local/sbin/labgen-init"]',
        f'LABEL {LABEL_BOX}="{suite}" org.labgen.engine="{engine}"',
    ]
    args = ["docker", "import", *(a for c in changes for a in ("--change", c))]
    # `tar` rather than tarfile: a root file system of 20,000 files streams in seconds.
    tar = subprocess.Popen(
        ["tar", "-C", str(root), "--numeric-owner", "-cf", "-", "."], stdout=subprocess.PIPE
    )
    imp = subprocess.run([*args, "-", tag], stdin=tar.stdout, capture_output=True, text=True)
    assert tar.stdout is not None
    tar.stdout.close()
    tar.wait()
    if imp.returncode != 0 or tar.returncode != 0:
        raise MachineError(f"docker import of the base image failed: {imp.stderr.strip()}")


def scan(args: Sequence[str], fmt: str, what: str, host: str = "") -> str:
    """The output of the listing `docker ARGS --format FMT`, which looks for `what`; a
    MachineError when Docker could not be asked (a failure, or no answer in SCAN_TIMEOUT
    seconds), never an empty listing: an unanswered look must not pass for "none there"."""
    command = "docker " + " ".join(args)  # without the format: it tells a user nothing
    try:
        proc = docker([*args, "--format", fmt], check=False, timeout=SCAN_TIMEOUT, host=host)
    except subprocess.TimeoutExpired:
        raise MachineError(
            f"could not look for {what}: `{command}` did not answer in {SCAN_TIMEOUT:g} s",
            hint=f"is the Docker daemon stuck? {DAEMON_FIX}; then run this again",
        ) from None
    if proc.returncode != 0:
        why = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
        raise MachineError(
            f"could not look for {what}: `{command}` failed: {why}",
            hint=f"the Docker daemon must answer: {DAEMON_FIX}; then run this again",
        )
    return proc.stdout


def used_subnets(host: str = "") -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """Every subnet a Docker network on `host` ("": this one) already uses."""
    # A network another labgen removes between the listing and the inspection fails the
    # whole inspection (seen with verify -j 2): list again, then ask one by one.
    for _ in range(3):
        names = docker(["network", "ls", "-q"], host=host).stdout.split()
        if not names:
            return []
        proc = docker(["network", "inspect", *names], check=False, host=host)
        if proc.returncode == 0:
            break
    else:
        found = [docker(["network", "inspect", n], check=False, host=host) for n in names]
        proc.stdout = json.dumps(
            [net for p in found if p.returncode == 0 for net in json.loads(p.stdout)]
        )
    subnets = []
    for net in json.loads(proc.stdout):
        for cfg in (net.get("IPAM") or {}).get("Config") or []:
            if cfg.get("Subnet"):
                subnets.append(ipaddress.ip_network(cfg["Subnet"], strict=False))
    return subnets


def seat_flags(image: str, host: str = "") -> tuple[bool, list[str]]:
    """How a machine's container gets the rights its dockerd needs on `host` ("": this
    one): (--privileged works, else the capabilities to drop from --cap-add ALL).

    Measured on that host's daemon, never told from its name: some sandboxes refuse
    --privileged; a host that is itself such a container (a simulated host) has no
    SYS_RESOURCE left, so --cap-drop SYS_RESOURCE is "invalid CapDrop" there.
    Asked once per Docker daemon (its ID and boot): each probe starts a container,
    about 0.6 s of every `labgen up`, for an answer that does not change.
    """
    daemon = docker(["info", "--format", "{{.ID}}"], check=False, host=host).stdout.split()
    boot = Path("/proc/sys/kernel/random/boot_id")
    key = f"{daemon[0] if daemon else '?'}-{boot.read_text().strip() if boot.exists() else '?'}"
    cache = resources.labgen_home() / "cache" / "seat-flags.json"
    try:
        known = json.loads(cache.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        known = {}
    known = known if isinstance(known, dict) else {}
    answer = known.get(key)
    if isinstance(answer, list) and len(answer) == 2 and isinstance(answer[0], bool):
        return answer[0], [str(c) for c in answer[1]]
    flags = _probe_seat_flags(image, host)
    with contextlib.suppress(OSError):
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps({**known, key: [flags[0], flags[1]]}), encoding="utf-8")
    return flags


def _probe_seat_flags(image: str, host: str) -> tuple[bool, list[str]]:
    run = ["run", "--rm", "--network", "none", "--entrypoint", "true"]
    if docker([*run, "--privileged", image], check=False, timeout=120, host=host).returncode == 0:
        return True, []
    dropped = ["--cap-add=ALL", "--cap-drop=SYS_RESOURCE"]
    if docker([*run, *dropped, image], check=False, timeout=120, host=host).returncode == 0:
        return False, ["SYS_RESOURCE"]
    return False, []


RESOLV_CONFS = (Path("/etc/resolv.conf"), Path("/run/systemd/resolve/resolv.conf"))


def nameservers(resolv_confs: Sequence[Path] = RESOLV_CONFS) -> list[str]:
    """The host's real resolvers: the first file that names one that is not a loopback
    stub (systemd-resolved's, Docker's embedded DNS: useless inside the machine)."""
    for path in resolv_confs:
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError:
            continue
        servers = []
        for parts in (line.split() for line in lines):
            if len(parts) >= 2 and parts[0] == "nameserver":
                try:
                    addr = ipaddress.ip_address(parts[1])
                except ValueError:
                    continue
                if not addr.is_loopback:
                    servers.append(str(addr))
        if servers:
            return servers
    return []


def _free_port(taken: Iterable[int]) -> int:
    taken = set(taken)
    for _ in range(20):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in taken:
            return port
    raise MachineError("no free local port found for the machine's SSH")
