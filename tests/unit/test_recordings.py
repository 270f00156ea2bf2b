"""Recorded step outputs: normalisation, the file format, drift, and what verify does with
them (compare, strict, record) on real outputs of the seed labs (no machine)."""

from __future__ import annotations

import doctest
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from labgen.checks.reader import read_checks
from labgen.core.lab import iter_labs, load_lab
from labgen.core.results import (
    COMPARED,
    DRIFT,
    FAIL,
    MISSING,
    NO_RECORDINGS,
    PASS,
    RAN,
    SAME,
    CheckResult,
    LabReport,
    StepReport,
)
from labgen.docs import junit, recordings
from labgen.verbs import verify
from unit_helpers import REPO

# What port-forwarding's count-eth0 printed on a 20.10 machine, as captured by verify
# (2026-11-25): the machine's own eth0 (host indexes, the provider's subnet), the
# counters, the log line.
COUNT_ETH0 = """\
547: eth0@if548: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP group default  link-netnsid 0
    inet 172.30.1.2/24 brd 172.30.1.255 scope global eth0
       valid_lft forever preferred_lft forever
Chain PREROUTING (policy ACCEPT 2 packets, 120 bytes)
    pkts      bytes target     prot opt in     out     source               destination         
       2      120 DOCKER     0    --  *      *       0.0.0.0/0            0.0.0.0/0            ADDRTYPE match dst-type LOCAL

Chain OUTPUT (policy ACCEPT 2 packets, 120 bytes)
    pkts      bytes target     prot opt in     out     source               destination         
       1       60 DOCKER     0    --  *      *       0.0.0.0/0           !127.0.0.0/8          ADDRTYPE match dst-type LOCAL

Chain DOCKER (2 references)
    pkts      bytes target     prot opt in     out     source               destination         
       0        0 RETURN     0    --  docker0 *       0.0.0.0/0            0.0.0.0/0           
       1       60 DNAT       6    --  !docker0 *       0.0.0.0/0            0.0.0.0/0            tcp dpt:5000 to:172.17.0.2:5000
172.30.1.2 - - [25/Nov/2026 09:51:20] "GET /?via=eth0 HTTP/1.1" 200 -
"""  # noqa: E501, W291 (iptables' own long lines and trailing spaces)

# The same step on another machine, another time: every volatile part differs.
COUNT_ETH0_AGAIN = (
    COUNT_ETH0.replace("547: eth0@if548", "1203: eth0@if1204")
    .replace("172.30.1.", "172.30.7.")
    .replace("2 packets, 120 bytes", "2 packets, 104 bytes")
    .replace("      120 DOCKER", "      104 DOCKER")
    .replace("09:51:20", "10:02:59")
)

SS = """\
State  Recv-Q Send-Q Local Address:Port  Peer Address:PortProcess                               
LISTEN 0      4096         0.0.0.0:5000       0.0.0.0:*    users:(("docker-proxy",pid=464,fd=4))
LISTEN 0      4096      127.0.0.11:36879      0.0.0.0:*                                         
LISTEN 0      128          0.0.0.0:22         0.0.0.0:*    users:(("sshd",pid=7,fd=3))          
"""  # noqa: W291
SS_AGAIN = """\
State  Recv-Q Send-Q Local Address:Port  Peer Address:PortProcess
LISTEN 0      4096      127.0.0.11:41007      0.0.0.0:*   
LISTEN 0      128          0.0.0.0:22         0.0.0.0:*    users:(("sshd",pid=8,fd=3))
LISTEN 0      4096         0.0.0.0:5000       0.0.0.0:*    users:(("docker-proxy",pid=1656,fd=4))
"""  # noqa: W291 (as Docker 28.5's machine printed it)

CURL = (
    "<html>\n</html>\n"
    "  % Total    % Received % Xferd  Average Speed   Time    Time     Time  Current\n"
    "                                 Dload  Upload   Total   Spent    Left  Speed\n"
    "  0     0    0     0    0     0      0      0 --:--:-- --:--:-- --:--:--     0"
    "\r100   570  100   570    0     0   206k      0 --:--:-- --:--:-- --:--:--  278k\n"
)

DOCKER_PS = """\
c0c2aca1fc183767500296d9d181a5202ffcf82c562c1ee53961e70ccac2754f
CONTAINER ID   IMAGE     COMMAND   CREATED                  STATUS                  PORTS     NAMES
c0c2aca1fc18   busybox   "sh"      Less than a second ago   Up Less than a second             nstest
"""
DOCKER_PS_AGAIN = """\
f572abc6448faebe2d8d6362cb5396082eef4163ddcdec3c32c246d3ce4dfb40
CONTAINER ID   IMAGE     COMMAND   CREATED        STATUS         PORTS     NAMES
f572abc6448f   busybox   "sh"      1 second ago   Up 1 second              nstest
"""


@pytest.mark.parametrize(
    ("first", "second"),
    [(COUNT_ETH0, COUNT_ETH0_AGAIN), (SS, SS_AGAIN), (DOCKER_PS, DOCKER_PS_AGAIN)],
)
def test_two_runs_normalise_to_the_same_text(first: str, second: str) -> None:
    assert first != second
    assert recordings.normalise(first) == recordings.normalise(second)


def test_packet_counters_are_kept_and_byte_counts_are_not() -> None:
    text, rules = recordings.normalise(COUNT_ETH0)
    assert "       1        B DNAT       6    --  !docker0 *" in text  # the step's point
    assert "       2        B DOCKER" in text
    assert "(policy ACCEPT 2 packets, B bytes)" in text
    # One packet more through DNAT is drift, not noise.
    more = COUNT_ETH0.replace("       1       60 DNAT", "       2      120 DNAT")
    assert recordings.normalise(more)[0] != text
    assert {"iptables-bytes", "interface-index", "eth0-address", "log-time"} <= set(rules)
    assert "<eth0-address> - - [DD/Mon/YYYY hh:mm:ss]" in text
    assert "172.30" not in text and "547" not in text
    assert not any(line != line.rstrip() for line in text.split("\n"))


def test_the_bridge_address_is_not_the_machines_address() -> None:
    inside = "    inet 172.17.0.2/16 brd 172.17.255.255 scope global eth0\n"
    assert recordings.normalise(inside)[0] == inside


# curl 8 (Debian sid's, on the 28.5 machine) as verify captured it: the meter on stderr,
# the body on stdout, merged by arrival.
METER_28 = (
    "  % Total    % Received % Xferd  Average Speed  Time    Time    Time   Current\n"
    "                                 Dload  Upload  Total   Spent   Left   Speed\n"
    "\r  0      0   0      0   0      0      0      0                              0"
    "\r100    639 100    639   0      0 145.7k      0                              0"
    "\r100    639 100    639   0      0 127.1k      0                              0\n"
)


def test_curl_progress_meter_is_dropped_and_stdout_kept() -> None:
    assert recordings.normalise(CURL) == ("<html>\n</html>\n", ["curl-progress"])


def test_curl_progress_meter_pieces_glued_anywhere_around_the_body_are_dropped() -> None:
    """The meter comes in pieces, the body in one: wherever the body lands between two
    pieces (seen: right after `  0      0   `), the normalised output is the body's."""
    body = "<!DOCTYPE HTML>\n<html>\n</html>\n"
    start = METER_28.index("Speed\n") + 5
    cuts = [0, start] + [i for i in range(start, len(METER_28) + 1) if METER_28[i - 1] in " \r\n"]
    for cut in cuts:
        text = METER_28[:cut] + body + METER_28[cut:]
        assert recordings.normalise(text) == (body, ["curl-progress"]), repr(text)


def test_every_rule_has_a_name_a_reason_and_a_valid_pattern() -> None:
    names = [rule.name for rule in recordings.RULES]
    assert len(set(names)) == len(names)
    for rule in recordings.RULES:
        assert rule.why and re.fullmatch(r"[a-z0-9-]+", rule.name)
        assert rule.block is not None or re.compile(rule.pattern)


def test_docstring_examples_run() -> None:
    assert doctest.testmod(recordings).failed == 0
    assert doctest.testmod(verify).failed == 0


def test_a_recording_file_round_trips_and_rewriting_the_same_output_changes_nothing(
    tmp_path: Path,
) -> None:
    text, rules = recordings.normalise(COUNT_ETH0)
    rec = recordings.Recording(
        "pf", "count-eth0", "20.10", "20.10.24", "0.2.0", "2026-11-25", tuple(rules), text
    )
    assert recordings.write(tmp_path, rec) is True
    path = tmp_path / "recorded" / "20.10" / "count-eth0.txt"
    assert recordings.parse(path.read_text(encoding="utf-8")) == rec
    assert recordings.load(tmp_path, "20.10") == {"count-eth0": rec}
    assert recordings.engines_recorded(tmp_path) == ["20.10"]
    # Another day, another labgen: same output and engine, so the file stays as it was.
    later = recordings.Recording(
        *[*vars(rec).values()][:4], "0.3.0", "2026-12-01", rec.rules, rec.output
    )
    assert recordings.write(tmp_path, later) is False
    assert recordings.parse(path.read_text(encoding="utf-8")).date == "2026-11-25"
    with pytest.raises(recordings.RecordingError, match="not a labgen recording"):
        recordings.parse("hello\n", "x.txt")


def _report(outputs: dict[str, str], strict: bool = False) -> LabReport:
    steps = [StepReport(step, step, status=PASS, output=out) for step, out in outputs.items()]
    return LabReport("pf", "verify-pf", steps, "20.10", strict=strict)


def test_compare_finds_drift_names_lab_engine_and_step_and_strict_fails(tmp_path: Path) -> None:
    text, _ = recordings.normalise(COUNT_ETH0)
    recorded = recordings.Recording("pf", "count-eth0", "20.10", "20.10.24", "0.2.0", "d", (), text)
    same = _report({"count-eth0": COUNT_ETH0_AGAIN}, strict=True)
    verify.compare(same.steps[0], recorded, "pf@20.10")
    same.recordings = COMPARED
    assert same.steps[0].recording == SAME and same.ok and not same.drifted

    changed = COUNT_ETH0.replace("       1       60 DNAT", "       0        0 DNAT")
    drifted = _report({"count-eth0": changed}, strict=True)
    verify.compare(drifted.steps[0], recorded, "pf@20.10")
    drifted.recordings = COMPARED
    step = drifted.steps[0]
    assert step.recording == DRIFT
    assert "--- recorded pf@20.10 step count-eth0" in step.drift
    assert "-       1        B DNAT" in step.drift and "+       0        B DNAT" in step.drift
    assert not drifted.ok  # --strict
    assert drifted.to_json()["drift"] is True
    drifted.strict = False
    assert drifted.ok  # without --strict drift is reported, not a failure


def test_a_step_without_a_recording_is_never_no_drift() -> None:
    report = _report({"curl": "x"}, strict=True)
    verify.compare(report.steps[0], None, "pf@20.10")
    report.recordings = COMPARED
    assert report.steps[0].recording == MISSING and not report.ok
    # A lab with no recordings at all for the engine verifies as before.
    bare = _report({"curl": "x"}, strict=True)
    bare.recordings = NO_RECORDINGS
    assert bare.ok and bare.steps[0].recording == ""


def test_record_writes_only_steps_that_ran_and_removes_stale(tmp_path: Path) -> None:
    lab_dir = tmp_path / "pf"
    lab_dir.mkdir()
    (lab_dir / "recorded" / "20.10").mkdir(parents=True)
    (lab_dir / "recorded" / "20.10" / "gone.txt").write_text("old", encoding="utf-8")
    report = _report({"a": "one\n", "b": ""})
    report.steps[1].status = RAN
    report.steps.append(StepReport("c", "c", status="n/a"))
    report.docker = "20.10.24+dfsg1"
    lab = SimpleNamespace(name="pf", path=lab_dir, spec=SimpleNamespace(normalise=[]))
    assert verify.record(lab, report) == 2  # type: ignore[arg-type]
    assert sorted(p.name for p in (lab_dir / "recorded" / "20.10").iterdir()) == ["a.txt", "b.txt"]
    assert verify.record(lab, report) == 0  # type: ignore[arg-type]
    rec = recordings.load(lab_dir, "20.10")["a"]
    assert (rec.docker, rec.output) == ("20.10.24+dfsg1", "one\n")


def test_junit_has_a_recorded_output_case_failing_only_with_strict(tmp_path: Path) -> None:
    lab = load_lab("port-forwarding")
    steps = [StepReport(s.id, s.title, status=PASS) for s in lab.steps]
    steps[0].recording, steps[0].drift = DRIFT, "--- a\n+++ b\n-x\n+y\n"
    steps[1].recording = SAME
    for strict, failures in ((True, 1), (False, 0)):
        report = LabReport(lab.name, "m", steps, "20.10", recordings=COMPARED, strict=strict)
        out = tmp_path / f"{strict}.xml"
        junit.write_junit(out, [lab], [report])
        xml = out.read_text(encoding="utf-8")
        assert xml.count('name="recorded-output"') == 2
        assert xml.count("output drifted from its recording") >= 1
        assert xml.count("<failure") == failures


def test_committed_recordings_parse_and_name_their_lab_step_and_engine() -> None:
    """Every committed recording is a recording of a step its lab has, on an engine the
    lab is verified on, with the exact Docker version of that engine."""
    for lab in iter_labs():
        for engine in recordings.engines_recorded(lab.path):
            assert engine in lab.engines
            for step, rec in recordings.load(lab.path, engine).items():
                assert step in {s.id for s in lab.steps}, f"{lab.name}: stale {step}"
                assert (rec.lab, rec.step, rec.engine) == (lab.name, step, engine)
                assert rec.docker.startswith(engine + "."), rec.docker
                assert recordings.normalise(rec.output)[0] == rec.output  # already normal


def test_junit_fails_a_step_whose_own_checks_passed_but_whose_state_did_not_hold(
    tmp_path: Path,
) -> None:
    """Issue 21's stronger rule: an earlier check that stopped holding fails the step
    though its own checks passed; the JUnit suite must not read green."""
    lab = load_lab("port-forwarding")
    step = lab.steps[1].id
    own = [
        CheckResult(c.name, c.name, step, "passed", "", 0.1)
        for c in read_checks(lab)
        if c.step == step
    ]
    steps = [StepReport(s.id, s.title, status=PASS) for s in lab.steps]
    steps[1].status, steps[1].checks = FAIL, own
    steps[1].reason = "check test_x (from step nat-baseline) no longer holds after step b"
    report = LabReport(lab.name, "m", steps, "20.10")
    out = tmp_path / "out.xml"
    junit.write_junit(out, [lab], [report])
    xml = out.read_text(encoding="utf-8")
    assert xml.count("<failure") == 1
    assert 'name="expected-state"' in xml and "no longer holds after step b" in xml


@pytest.mark.parametrize(
    "printed, normal",
    [
        ("3: br-e03521cde528: <BROADCAST>", "N: br-xxxxxxxxxxxx: <BROADCAST>"),
        ("64 bytes from 172.18.0.3: seq=0 ttl=64 time=0.071 ms", "time=<t> ms"),
        (
            "round-trip min/avg/max = 0.071/0.085/0.100 ms",
            "round-trip min/avg/max = <min/avg/max> ms",
        ),
        ("rtt min/avg/max/mdev = 0.041/0.052/0.063/0.011 ms", "= <min/avg/max> ms"),
        ("2 packets transmitted, 2 received, 0% packet loss, time 1001ms", "time <t>ms"),
        ("# ExtServers: [host(10.0.2.3)]", "# ExtServers: [<host resolvers>]"),
        ("index.html 100% |****| 639 0:00:00 ETA", "639 <eta> ETA"),
    ],
)
def test_the_names_and_times_a_network_lab_prints_are_normalised(printed: str, normal: str) -> None:
    """Issue 21, item 2: a lab that makes its own network prints these differently each run."""
    assert normal in recordings.normalise(printed)[0]


def test_a_labs_own_rules_apply_first_and_are_named_in_the_header(tmp_path: Path) -> None:
    from labgen.core.lab import load_lab_dir

    lab_dir = tmp_path / "user-bridge"
    shutil.copytree(REPO / "labs" / "bridge", lab_dir, ignore=shutil.ignore_patterns("recorded"))
    text = (
        (lab_dir / "lab.yaml")
        .read_text(encoding="utf-8")
        .replace("name: bridge", "name: user-bridge")
    )
    rule = '  - {pattern: "labnet-(?P<v>[0-9]+)", replacement: N, reason: a counter of ours}\n'
    (lab_dir / "lab.yaml").write_text(text + "normalise:\n" + rule, encoding="utf-8")
    lab = load_lab_dir(lab_dir)
    output, applied = recordings.normalise("made labnet-42\n", recordings.lab_rules(lab))
    assert (output, applied) == ("made labnet-N\n", ["user-bridge/1"])


def test_a_labs_rule_that_is_not_a_regular_expression_is_bad_input(tmp_path: Path) -> None:
    lab_dir = tmp_path / "bad-rule"
    shutil.copytree(REPO / "labs" / "bridge", lab_dir, ignore=shutil.ignore_patterns("recorded"))
    text = (
        (lab_dir / "lab.yaml").read_text(encoding="utf-8").replace("name: bridge", "name: bad-rule")
    )
    rule = '  - {pattern: "(unclosed", replacement: X, reason: broken}\n'
    (lab_dir / "lab.yaml").write_text(text + "normalise:\n" + rule, encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "labgen", "lint", str(lab_dir)], capture_output=True, text=True
    )
    assert proc.returncode == 2, proc.stderr + proc.stdout
    assert "normalise" in proc.stdout + proc.stderr
    assert "not a regular expression" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
