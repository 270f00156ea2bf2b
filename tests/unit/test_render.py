"""Rendering a lab into an instance directory, with DockerSettings chosen by hand.

What a user (or an instructor handing the directory to attendees) relies on: the
files are all there, every script parses, Vagrant accepts the Vagrantfile, nothing
in it calls HashiCorp home, and a lab's texts can never turn into code.

`vagrant validate` on this machine (Vagrant 2.3.4, Debian, no vagrant-libvirt):
- docker: validated for real (provider config included). Vagrant's docker
  provider asks `docker version` whether it is usable; a fake `docker` on PATH
  answers, so no Docker daemon is needed or touched.
- virtualbox: validated for real with a fake `VBoxManage` that reports a version
  (VirtualBox is not installed; the provider only asks `VBoxManage --version`).
- libvirt: the vagrant-libvirt plugin is not installed, so Vagrant cannot check
  the block's settings (`lv.memory`, ...); it does evaluate the block as Ruby,
  so a Ruby error there still fails validation (see the control test).
Each validation has a control that breaks the block and expects a failure, so a
pass means the block was looked at.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from labgen.core import resources
from labgen.core.lab import Lab, load_lab, load_lab_dir
from labgen.machine import providers, render
from labgen.machine.providers.docker import DockerSettings
from labgen.machine.render import LAB_ROOT_IN_MACHINE, ruby_literal
from unit_helpers import (
    ORIGINAL_PATH,
    REAL_RUBY,
    REAL_VAGRANT,
    REPO,
    UNIT,
    RenderFn,
    bundled_lab_names,
    docker_settings,
    fake_tool,
)

needs_vagrant = pytest.mark.skipif(REAL_VAGRANT is None, reason="vagrant is not installed")
needs_ruby = pytest.mark.skipif(REAL_RUBY is None, reason="ruby is not installed")


def lab_with_ports() -> Lab:
    for name in bundled_lab_names():
        lab = load_lab(name)
        if lab.spec.ports:
            return lab
    pytest.skip("no bundled lab forwards ports")


def expected_files(lab: Lab) -> set[str]:
    files = {"Vagrantfile", "provision.sh", "lab/labgen-lab", "lab/steps/ORDER"}
    files |= {"lab/lab.yaml", "lab/checks.py", "keys/id_ed25519", "keys/id_ed25519.pub"}
    for step in lab.steps:
        files |= {f"lab/steps/{step.id}.{ext}" for ext in ("sh", "title", "command", "md")}
    return files


def rendered_files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def shell_of(script: Path) -> str:
    first = script.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("#!"), f"{script} has no #! line"
    return Path(first[2:].split()[0]).name


# --- the instance directory ---------------------------------------------------------


@pytest.mark.parametrize("name", bundled_lab_names())
def test_rendered_directory_has_every_file(render_lab: RenderFn, name: str) -> None:
    lab = load_lab(name)
    root = render_lab(lab)
    missing = expected_files(lab) - rendered_files(root)
    assert not missing, f"not rendered: {sorted(missing)}"
    assert (root / "lab/steps/ORDER").read_text().split() == [s.id for s in lab.steps]
    for step in lab.steps:
        assert (root / f"lab/steps/{step.id}.title").read_text() == step.title + "\n"
        assert (root / f"lab/steps/{step.id}.command").read_text().rstrip(
            "\n"
        ) == step.command.rstrip("\n")
        assert step.robot_command in (root / f"lab/steps/{step.id}.sh").read_text()
    assert (root / "lab/lab.yaml").read_bytes() == (lab.path / "lab.yaml").read_bytes()
    assert (root / "lab/checks.py").read_bytes() == (lab.path / "checks.py").read_bytes()
    for script in ["provision.sh", "lab/labgen-lab", *(f"lab/steps/{s.id}.sh" for s in lab.steps)]:
        assert os.access(root / script, os.X_OK), f"{script} is not executable"
    assert (root / "keys/id_ed25519").stat().st_mode & 0o077 == 0, "private key readable by others"


@pytest.mark.parametrize("name", bundled_lab_names())
def test_every_rendered_script_parses(render_lab: RenderFn, name: str) -> None:
    root = render_lab(load_lab(name))
    scripts = [root / "provision.sh", root / "lab/labgen-lab", *(root / "lab/steps").glob("*.sh")]
    for script in scripts:
        shell = shell_of(script)
        assert shell in ("sh", "bash"), f"{script}: unexpected interpreter {shell}"
        proc = subprocess.run([shell, "-n", str(script)], capture_output=True, text=True)
        assert proc.returncode == 0, f"{shell} -n {script}:\n{proc.stderr}"


def test_render_digest_is_stable_and_follows_the_content(tmp_path: Path) -> None:
    lab = load_lab(bundled_lab_names()[0])
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIUnitTestKey labgen-unit"
    digests = []
    for index, (instance, settings) in enumerate(
        [
            ("unit", docker_settings()),
            ("unit", docker_settings()),
            ("other", docker_settings()),
            ("unit", docker_settings(ssh_port=2300)),
        ]
    ):
        target = tmp_path / str(index)
        target.mkdir()
        digests.append(render.render_instance(lab, instance, settings, key, target))
    assert digests[0] == digests[1]
    assert len(set(digests)) == 3


def probe_vagrantfile(root: Path, env: dict[str, str | None] | None = None) -> dict[str, Any]:
    """The settings the Vagrantfile makes, evaluated by Ruby (vagrantfile_probe.rb).
    `env` entries set to None are removed from the environment."""
    assert REAL_RUBY is not None
    environ: dict[str, str | None] = {**os.environ, "LABGEN_PRIVILEGED": None, **(env or {})}
    proc = subprocess.run(
        [REAL_RUBY, str(UNIT / "vagrantfile_probe.rb"), str(root / "Vagrantfile")],
        capture_output=True,
        text=True,
        env={k: v for k, v in environ.items() if v is not None},
        cwd=root,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def forwarded(block: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        kwargs
        for name, args, kwargs in block["override"]["vm"]["calls"]
        if name == "network" and args == ["forwarded_port"]
    ]


@needs_ruby
@pytest.mark.parametrize("privileged", [True, False], ids=["privileged", "cap-add"])
def test_vagrantfile_gives_vagrant_the_docker_settings(
    render_lab: RenderFn, privileged: bool
) -> None:
    lab = lab_with_ports()
    every = docker_settings(privileged=privileged)
    settings = every["docker"]
    assert isinstance(settings, DockerSettings)
    root = render_lab(lab, instance="unit", docker=every)
    public_key = (root / "keys/id_ed25519.pub").read_text().strip()
    config = probe_vagrantfile(root)
    assert config["vm"]["values"]["box_check_update"] is False

    docker = config["vm"]["provider:docker"]
    assert docker["values"]["image"] == settings.image
    assert docker["values"]["name"] == resources.machine_id("unit")
    assert bool(docker["values"].get("privileged")) == privileged
    args = docker["values"]["create_args"]
    assert args[args.index("--network") + 1] == settings.network
    assert f"LABGEN_AUTHORIZED_KEY={public_key}" in args
    assert "LABGEN_NAMESERVERS=" + " ".join(settings.nameservers) in args
    assert ("--cap-add=ALL" in args) == (not privileged)
    assert "org.labgen.instance=unit" in args
    assert docker["override"]["ssh"]["values"]["insert_key"] is False
    assert docker["override"]["ssh"]["values"]["private_key_path"] == str(
        root / "keys" / "id_ed25519"
    )
    assert [(f["guest"], f["host"], f["host_ip"]) for f in forwarded(docker)] == [
        (22, settings.ssh_port, "127.0.0.1")
    ]
    for vm in ("libvirt", "virtualbox"):
        block = config["vm"][f"provider:{vm}"]
        vm_settings = every[vm]
        assert block["override"]["vm"]["values"]["box"] == vm_settings.box  # type: ignore[attr-defined]
        assert block["values"]["memory"] == vm_settings.memory  # type: ignore[attr-defined]
        assert sorted(f["guest"] for f in forwarded(block)) == sorted(lab.spec.ports)
        assert all(f["host_ip"] == "127.0.0.1" for f in forwarded(block))


@needs_ruby
def test_a_machine_on_another_host_gets_its_proxy_command_and_the_capabilities_probed(
    render_lab: RenderFn,
) -> None:
    """A simulated host (a container) has no SYS_RESOURCE to drop: the probed empty
    cap_drop renders no --cap-drop; the proxy command reaches the host's 127.0.0.1."""
    proxy = "ssh -p 2200 vagrant@127.0.0.1 -W %h:%p"
    every = docker_settings(privileged=False, cap_drop=[], proxy_command=proxy)
    docker = probe_vagrantfile(render_lab(lab_with_ports(), docker=every))["vm"]["provider:docker"]
    args = docker["values"]["create_args"]
    assert "--cap-add=ALL" in args
    assert not [a for a in args if a.startswith("--cap-drop")]
    assert docker["override"]["ssh"]["values"]["proxy_command"] == proxy


@needs_ruby
def test_a_local_machine_has_no_proxy_command_and_drops_sys_resource(
    render_lab: RenderFn,
) -> None:
    docker = probe_vagrantfile(render_lab(lab_with_ports(), docker=docker_settings()))
    block = docker["vm"]["provider:docker"]
    assert "--cap-drop=SYS_RESOURCE" in block["values"]["create_args"]
    assert "proxy_command" not in block["override"]["ssh"]["values"]


@needs_ruby
@pytest.mark.parametrize("rendered_privileged", [True, False])
def test_labgen_privileged_overrides_the_probed_choice(
    render_lab: RenderFn, rendered_privileged: bool
) -> None:
    """LABGEN_PRIVILEGED=1/0 at `vagrant up` time wins over what the render probed."""
    root = render_lab(lab_with_ports(), docker=docker_settings(privileged=rendered_privileged))
    for value, privileged in (("1", True), ("0", False)):
        docker = probe_vagrantfile(root, env={"LABGEN_PRIVILEGED": value})["vm"]["provider:docker"]
        assert bool(docker["values"].get("privileged")) == privileged
        assert ("--cap-add=ALL" in docker["values"]["create_args"]) == (not privileged)


@needs_ruby
def test_vagrantfile_keeps_hostile_values_intact(render_lab: RenderFn, tmp_path: Path) -> None:
    """Values reach Vagrant as written, however they are quoted; none runs as Ruby."""
    marker = tmp_path / "ruby-ran"
    hostile_key = (
        f"ssh-ed25519 AAAA it's \\ \\' \"q\" #{{`touch {marker}`}} #{{File.write('{marker}', 1)}}"
    )
    settings = docker_settings(network="c'#{x}\\", nameservers=["192.0.2.1'\\"])
    root = tmp_path / "hostile-render"
    root.mkdir()
    render.write_keypair(root, comment="unused")
    render.render_instance(lab_with_ports(), "unit", settings, hostile_key, root)
    config = probe_vagrantfile(root)
    docker = config["vm"]["provider:docker"]
    args = docker["values"]["create_args"]
    assert args[args.index("--network") + 1] == "c'#{x}\\"
    assert f"LABGEN_AUTHORIZED_KEY={hostile_key}" in docker["values"]["create_args"]
    assert "LABGEN_NAMESERVERS=192.0.2.1'\\" in docker["values"]["create_args"]
    assert not marker.exists()


def test_vagrantfile_never_calls_home(render_lab: RenderFn) -> None:
    text = (render_lab(lab_with_ports()) / "Vagrantfile").read_text(encoding="utf-8")
    lines = [line.strip() for line in text.splitlines()]
    assert "config.vm.box_check_update = false" in lines
    checkpoint = lines.index('ENV["VAGRANT_CHECKPOINT_DISABLE"] = "1"')
    assert checkpoint < next(
        i for i, line in enumerate(lines) if line.startswith("Vagrant.configure")
    )
    assert "override.ssh.insert_key = false" in lines  # never the well-known insecure key


# --- Vagrant's own opinion ----------------------------------------------------------


@pytest.fixture(scope="session")
def vagrant_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Vagrant home of the tests' own: the user's ~/.vagrant.d is not touched."""
    return tmp_path_factory.mktemp("vagrant-home")


def vagrant_validate(
    root: Path, provider: str, vagrant_home: Path, extra_env: dict[str, str | None] | None = None
) -> subprocess.CompletedProcess[str]:
    """`vagrant validate` in `root` for `provider`, with fake docker/VBoxManage that
    only answer version questions (and record every call)."""
    assert REAL_VAGRANT is not None
    fakes = root.parent / f"{root.name}-fakes"
    fakes.mkdir(exist_ok=True)
    log = fakes / "calls.log"
    fake_tool(fakes / "docker", log, 0, stdout="Docker version 20.10.24, build unit-test")
    fake_tool(fakes / "VBoxManage", log, 0, stdout="7.0.6r155176")
    env: dict[str, str | None] = {
        **os.environ,
        "PATH": f"{fakes}{os.pathsep}{ORIGINAL_PATH}",
        "VAGRANT_CHECKPOINT_DISABLE": "1",
        "VAGRANT_HOME": str(vagrant_home),
        "VAGRANT_DEFAULT_PROVIDER": provider,
        "VAGRANT_NO_COLOR": "1",
        # Should anything try the network anyway, it meets a closed port.
        "http_proxy": "http://127.0.0.1:9",
        "https_proxy": "http://127.0.0.1:9",
        **(extra_env or {}),
    }
    proc = subprocess.run(
        [REAL_VAGRANT, "validate"],
        cwd=root,
        env={k: v for k, v in env.items() if v is not None},
        capture_output=True,
        text=True,
        timeout=120,
    )
    calls = log.read_text().splitlines() if log.exists() else []
    # Validation asks versions; it must never create a container, network or VM.
    assert all(call in ("docker version", "VBoxManage --version") for call in calls), calls
    return proc


@needs_vagrant
@pytest.mark.parametrize(
    "provider, privileged",
    [("docker", True), ("docker", False), ("virtualbox", True)],
    ids=["docker-privileged", "docker-cap-add", "virtualbox"],
)
def test_vagrant_validates_the_vagrantfile(
    render_lab: RenderFn, vagrant_home: Path, provider: str, privileged: bool
) -> None:
    root = render_lab(lab_with_ports(), docker=docker_settings(privileged=privileged))
    proc = vagrant_validate(root, provider, vagrant_home)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "validated successfully" in proc.stdout


@needs_vagrant
@pytest.mark.parametrize(
    "provider, pattern, replacement, complaint",
    [
        ("docker", r"\n    d\.image = [^\n]*", "", r"image"),
        (
            "virtualbox",
            r"(\n    vb\.cpus = [^\n]*)",
            r"\1\n    vb.no_such_setting = 1",
            r"no_such_setting",
        ),
        (
            "docker",
            r"(\n    lv\.cpus = )[^\n]*",
            r"\1undefined_name_in_the_libvirt_block",
            r"undefined",
        ),
    ],
    ids=["docker-block", "virtualbox-block", "libvirt-block-ruby"],
)
def test_vagrant_validate_control_sees_a_broken_block(
    render_lab: RenderFn,
    vagrant_home: Path,
    provider: str,
    pattern: str,
    replacement: str,
    complaint: str,
) -> None:
    """Control: the validation above really looks at each block."""
    root = render_lab(lab_with_ports())
    vagrantfile = root / "Vagrantfile"
    text, count = re.subn(pattern, replacement, vagrantfile.read_text(encoding="utf-8"))
    assert count == 1, f"the control's pattern {pattern!r} no longer matches the Vagrantfile"
    vagrantfile.write_text(text, encoding="utf-8")
    proc = vagrant_validate(root, provider, vagrant_home)
    assert proc.returncode != 0
    assert re.search(complaint, proc.stdout + proc.stderr), proc.stdout + proc.stderr


@needs_vagrant
@pytest.mark.parametrize(
    "keep_env_line", [True, False], ids=["as-rendered", "control-without-line"]
)
def test_plain_vagrant_in_the_directory_skips_the_checkpoint(
    render_lab: RenderFn, vagrant_home: Path, keep_env_line: bool
) -> None:
    """An attendee running plain `vagrant` there, without VAGRANT_CHECKPOINT_DISABLE
    in their environment: the Vagrantfile sets it before Vagrant's checkpoint starts.
    (Debian's Vagrant lacks the checkpoint library; its debug log still says whether
    the check was disabled on request.)"""
    root = render_lab(lab_with_ports())
    if not keep_env_line:
        vagrantfile = root / "Vagrantfile"
        line = 'ENV["VAGRANT_CHECKPOINT_DISABLE"] = "1"'
        text = vagrantfile.read_text(encoding="utf-8")
        assert line in text
        vagrantfile.write_text(text.replace(line, ""), encoding="utf-8")
    proc = vagrant_validate(
        root,
        "docker",
        vagrant_home,
        extra_env={"VAGRANT_CHECKPOINT_DISABLE": None, "VAGRANT_LOG": "debug"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    disabled = "checkpoint disabled via explicit user request" in proc.stderr
    assert disabled == keep_env_line


@needs_ruby
@pytest.mark.parametrize("name", bundled_lab_names())
def test_vagrantfile_is_ruby(render_lab: RenderFn, name: str) -> None:
    root = render_lab(load_lab(name))
    proc = subprocess.run(
        [REAL_RUBY, "-c", str(root / "Vagrantfile")], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr


# --- quoting: the filters -------------------------------------------------------------

HOSTILE = [
    "",
    "plain",
    "it's",
    "'",
    "''",
    '"double" quotes',
    "back\\slash",
    "trailing backslash\\",
    "\\'",
    "\\\\'",
    "#{`touch /tmp/labgen-unit-pwned`}",
    "$(touch pwned) `touch pwned` ${HOME} $HOME",
    "line one\nline two\n",
    "\n__END__\nafter",
    "\n=begin\ncomment\n=end\n",
    "tab\there",
    "carriage\rreturn",
    "ünïcödé → ✓",
    "%s %d %n %q{x} %Q(y)",
    "-e -n --",
    "a\x04b\x1ac\x7f",
]


def ruby_round_trip(values: list[str], tmp_path: Path) -> list[str]:
    """Each value through ruby_literal, evaluated by Ruby, written back length-prefixed."""
    assert REAL_RUBY is not None
    program = "".join(
        f"s = {ruby_literal(v)}\nSTDOUT.write([s.bytesize].pack('N'))\nSTDOUT.write(s)\n"
        for v in values
    )
    script = tmp_path / "round_trip.rb"
    script.write_bytes(("# encoding: utf-8\n" + program).encode("utf-8"))
    proc = subprocess.run([REAL_RUBY, str(script)], capture_output=True, check=True)
    out, back = proc.stdout, []
    while out:
        size = int.from_bytes(out[:4], "big")
        back.append(out[4 : 4 + size].decode("utf-8"))
        out = out[4 + size :]
    return back


@needs_ruby
def test_ruby_literal_round_trips_hostile_strings(tmp_path: Path) -> None:
    values = [*HOSTILE, "a\x00b"]
    assert ruby_round_trip(values, tmp_path) == values


@needs_ruby
def test_ruby_literal_round_trips_crlf(tmp_path: Path) -> None:
    """Regression: Ruby reads CR LF inside a single-quoted literal as LF."""
    values = ["windows\r\nline end", "\r\n"]
    assert ruby_round_trip(values, tmp_path) == values


@pytest.mark.parametrize("shell", ["sh", "bash"])
def test_sh_filter_round_trips_hostile_strings(shell: str, tmp_path: Path) -> None:
    quote = render.jinja_env().filters["sh"]
    script = "".join(f"printf '%s\\0' {quote(v)}\n" for v in HOSTILE)
    proc = subprocess.run([shell, "-c", script], capture_output=True, cwd=tmp_path, check=True)
    assert proc.stdout.decode("utf-8").split("\0")[:-1] == HOSTILE
    assert list(tmp_path.iterdir()) == [], "quoting let a command run"


def test_comment_filter_keeps_text_on_one_line() -> None:
    comment = render.jinja_env().filters["comment"]
    for value in HOSTILE:
        assert "\n" not in comment(value) and "\r" not in comment(value)


# --- a lab whose texts try to be code -------------------------------------------------


@pytest.fixture
def hostile_lab(tmp_path: Path) -> tuple[Lab, Path]:
    """A valid lab whose titles, commands, texts and summary are full of shell
    syntax. Any of it that runs creates a file in `pwned/` (or the cwd)."""
    pwned = tmp_path / "pwned"
    pwned.mkdir()
    robot = tmp_path / "robot"
    robot.mkdir()
    p = shlex.quote(str(pwned))

    def evil(tag: str) -> str:
        return (
            f'it\'s "{tag}" $(touch {p}/{tag}-dollar) `touch {p}/{tag}-tick`; touch {p}/{tag}-semi '
            f"'; touch {p}/{tag}-quote; ' \"; touch {p}/{tag}-dq; \" $(touch rel-{tag}) "
            f"\\ %s %n -e ${{IFS}} && touch {p}/{tag}-and | tee {p}/{tag}-pipe > {p}/{tag}-redir"
        )

    folder = tmp_path / "labs" / "hostile-lab"
    folder.mkdir(parents=True)
    data = {
        "name": "hostile-lab",
        "title": evil("lab-title"),
        "summary": evil("summary") + "\n" + evil("summary2"),
        "engine": {"version": "20.10"},
        "images": ["busybox"],
        "steps": [
            {
                "id": "quotes",
                "title": evil("title1"),
                "explain": evil("explain1") + "\n\nUSAGE\n" + evil("explain1b") + "\n",
                "command": evil("command1") + "\n" + evil("command1b"),
                "run": f"echo robot one > {shlex.quote(str(robot))}/quotes",
            },
            {
                "id": "newlines",
                "title": "first line\n" + evil("title2") + "\r\ntouch " + str(pwned / "title2-cr"),
                "explain": "```\n$(touch " + str(pwned / "md") + ")\n```\n",
                "command": "\n".join(
                    ["docker run -it busybox \\", f"  touch {p}/continued", evil("command2")]
                ),
                "run": f"printf '%s\\n' 'robot two' > {shlex.quote(str(robot))}/newlines",
            },
            {
                "id": "no-run",
                "title": "100% `literal` $(title) %s",
                "explain": "Without `run`, the documented command is what runs.",
                "command": f"echo documented > {shlex.quote(str(robot))}/no-run",
            },
        ],
    }
    (folder / "lab.yaml").write_text(
        yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8"
    )
    (folder / "checks.py").write_text("", encoding="utf-8")
    lab = load_lab_dir(folder)
    for step, raw in zip(lab.steps, data["steps"], strict=True):
        assert (step.title, step.command) == (raw["title"], raw["command"])  # YAML kept them
    return lab, tmp_path


def local_helper(root: Path, lab: Lab) -> Path:
    """The rendered labgen-lab, pointed at the rendered lab/ instead of /opt/labgen."""
    helper = root / "lab" / "labgen-lab"
    text = helper.read_text(encoding="utf-8")
    line = f"LAB_DIR={shlex.quote(f'{LAB_ROOT_IN_MACHINE}/{lab.name}')}"
    assert text.splitlines().count(line) == 1, f"{line!r} not in the helper"
    local = root / "labgen-lab-local"
    local.write_text(text.replace(line, f"LAB_DIR={shlex.quote(str(root / 'lab'))}"))
    return local


def run_helper(local: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """bash LOCAL ARGS; output decoded as is (no newline translation: titles may hold CR)."""
    proc = subprocess.run(["bash", str(local), *args], capture_output=True, cwd=cwd, timeout=30)
    return subprocess.CompletedProcess(
        proc.args, proc.returncode, proc.stdout.decode("utf-8"), proc.stderr.decode("utf-8")
    )


def test_hostile_texts_stay_text(render_lab: RenderFn, hostile_lab: tuple[Lab, Path]) -> None:
    lab, tmp = hostile_lab
    root = render_lab(lab)
    cwd = tmp / "cwd"
    cwd.mkdir()
    helper = local_helper(root, lab)

    for script in [
        root / "provision.sh",
        root / "lab/labgen-lab",
        *(root / "lab/steps").glob("*.sh"),
    ]:
        proc = subprocess.run([shell_of(script), "-n", str(script)], capture_output=True, text=True)
        assert proc.returncode == 0, f"{script}:\n{proc.stderr}"

    listing = run_helper(helper, cwd, "list")
    assert listing.returncode == 0, listing.stderr
    expected = "".join(
        f"{n:2d}  {s.id:<20} {s.title.rstrip(chr(10))}\n" for n, s in enumerate(lab.steps, start=1)
    )
    assert listing.stdout == expected

    for step in lab.steps:
        shown = run_helper(helper, cwd, "show", step.id)
        assert shown.returncode == 0, shown.stderr
        # The title, then the explanation, then the documented command, all verbatim
        # (the helper may prefix the command's lines with a prompt).
        out = shown.stdout
        assert out.startswith(step.title.rstrip("\n") + "\n\n"), out
        rest = out[len(step.title.rstrip("\n")) + 2 :]
        assert rest.startswith(step.explain.rstrip("\n") + "\n"), out
        tail = rest[len(step.explain.rstrip("\n")) + 1 :].splitlines()
        command = step.command.rstrip("\n").splitlines()
        assert len(tail) >= len(command), out
        for shown_line, line in zip(tail[-len(command) :], command, strict=True):
            assert shown_line.endswith(line), (shown_line, line)

    # Running a step runs its robot command, and nothing of its texts.
    for step in lab.steps:
        ran = run_helper(helper, cwd, "run", step.id)
        assert ran.returncode == 0, ran.stderr
    robot = tmp / "robot"
    assert (robot / "quotes").read_text() == "robot one\n"
    assert (robot / "newlines").read_text() == "robot two\n"
    assert (robot / "no-run").read_text() == "documented\n"

    assert sorted(p.name for p in (tmp / "pwned").iterdir()) == []
    assert sorted(p.name for p in cwd.iterdir()) == []

    # The texts stay out of what runs as root or configures the machine.
    for name in ("Vagrantfile", "provision.sh"):
        assert "touch" not in (root / name).read_text(encoding="utf-8"), name


@pytest.mark.parametrize(
    "args",
    [
        ["show", "../lab.yaml"],
        ["show", "quotes/../quotes"],
        ["show", "QUOTES"],
        ["show", ""],
        ["run", "no-such-step"],
        ["run", "-rf"],
        ["show"],
        ["run", "quotes", "extra"],
        ["bogus-verb"],
    ],
    ids=lambda a: " ".join(a) or "(empty)",
)
def test_helper_refuses_unknown_steps(
    render_lab: RenderFn, hostile_lab: tuple[Lab, Path], args: list[str]
) -> None:
    lab, tmp = hostile_lab
    root = render_lab(lab)
    proc = run_helper(local_helper(root, lab), tmp, *args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stdout == ""
    assert not (tmp / "robot" / "quotes").exists()


def test_helper_help(render_lab: RenderFn, hostile_lab: tuple[Lab, Path]) -> None:
    lab, tmp = hostile_lab
    root = render_lab(lab)
    proc = run_helper(local_helper(root, lab), tmp, "--help")
    assert proc.returncode == 0
    for verb in ("list", "show STEP", "run STEP"):
        assert f"labgen-lab {verb}" in proc.stdout


def test_every_provider_renders_its_own_block(render_lab: RenderFn) -> None:
    """Every provider labgen offers has its block in the Vagrantfile, from its own
    partial (templates/providers/NAME.rb.j2), and no other block is there."""
    text = (render_lab(lab_with_ports()) / "Vagrantfile").read_text(encoding="utf-8")
    blocks = re.findall(r'config\.vm\.provider "([a-z]+)"', text)
    assert blocks == providers.names()
    for name in providers.names():
        partial = REPO / "templates" / "providers" / f"{name}.rb.j2"
        assert f'config.vm.provider "{name}"' in partial.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", ["bridge", "port-forwarding"])
def test_provisioning_keeps_the_labs_images_and_removes_the_others(
    render_lab: RenderFn, tmp_path: Path, name: str
) -> None:
    """Regression: the claim's clean-up compared `busybox` with `docker images`'s
    `busybox:latest` and removed the bridge lab's own image on every machine. The
    provisioning's image loop runs here against a docker that lists both substitutes."""
    lab = load_lab(name)
    script = (render_lab(lab) / "provision.sh").read_text(encoding="utf-8")
    loop = script[script.index("keep=") : script.index("done", script.index("keep=")) + 4]
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    removed = tmp_path / "removed"
    docker = bin_dir / "docker"
    docker.write_text(
        "#!/bin/sh\n"
        'case "$1" in\n'
        "  images) printf 'busybox:latest\\npython:3.7-slim\\n' ;;\n"
        f'  rmi) echo "$2" >> {shlex.quote(str(removed))} ;;\n'
        "  *) exit 97 ;;\n"
        "esac\n"
    )
    docker.chmod(0o755)
    proc = subprocess.run(
        ["sh", "-c", "set -eu\n" + loop],
        env={"PATH": f"{bin_dir}:/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    gone = removed.read_text().split() if removed.exists() else []
    kept = {render.tagged(image) for image in lab.spec.images}
    assert set(gone) == {"busybox:latest", "python:3.7-slim"} - kept
    assert kept  # the control: each of these labs uses an image
