"""labgen.inmachine.trace on recorded `iptables-save -c` dumps and trace runs.

The dumps under data/trace/ENGINE/ are this project's measurements (Docker 20.10, 26.1,
28.5 machines; /work/engines): counters before and after one request each. The run-*
files are what the trace script printed on a 20.10 lab machine.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from labgen.inmachine import trace, trace_lab
from labgen.machine import render
from labgen.ui import views as ui_views
from labgen.verbs import trace as trace_verb

DATA = Path(__file__).parent / "data" / "trace"
ENGINES = ("20.10", "26.1", "28.5")

OUTPUT_JUMP = "-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER"
PREROUTING_JUMP = "-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER"
DNAT = "-A DOCKER ! -i docker0 -p tcp -m tcp --dport 5000 -j DNAT --to-destination 172.17.0.2:5000"
RETURN = "-A DOCKER -i docker0 -j RETURN"


def request(engine: str, name: str) -> trace.Route:
    before = trace.parse_save((DATA / engine / f"{name}-before.txt").read_text())
    after = trace.parse_save((DATA / engine / f"{name}-after.txt").read_text())
    return trace.path(before, after)


def run(name: str, packets: bool = False) -> trace.TraceResult:
    raw = (DATA / name).read_text()
    return trace_verb.read_run(raw, "pf", "recorded", 1.0, packets)


@pytest.mark.parametrize("engine", ENGINES)
def test_localhost_meets_no_rule(engine: str) -> None:
    """docker-proxy serves localhost: OUTPUT's jump skips 127.0.0.0/8, no DNAT."""
    route = request(engine, "01-localhost")
    assert route.rules() == []
    assert all(hit.rule is None for hit in route.hits)


@pytest.mark.parametrize("engine", ENGINES)
def test_eth0_request_goes_output_docker_dnat(engine: str) -> None:
    route = request(engine, "02-eth0")
    assert route.rules() == [OUTPUT_JUMP, DNAT]
    jump, dnat = (h for h in route.hits if h.rule is not None)
    assert (jump.hook, jump.table, jump.depth, jump.packets) == ("OUTPUT", "nat", 0, 1)
    assert (dnat.chain, dnat.depth, dnat.packets, dnat.number) == ("DOCKER", 1, 1, 2)


@pytest.mark.parametrize("engine", ENGINES)
def test_request_from_a_container_returns_to_docker_proxy(engine: str) -> None:
    route = request(engine, "04-hairpin-container-to-172.17.0.1")
    assert route.rules() == [PREROUTING_JUMP, RETURN]
    assert DNAT not in route.rules()


def test_hits_follow_the_hooks_and_tables_in_kernel_order() -> None:
    """28.5's raw table comes before nat in PREROUTING; POSTROUTING comes last."""
    route = request("28.5", "04-hairpin-container-to-172.17.0.1")
    hooks = [hook for hook, _ in trace.HOOKS]
    ranks = [hooks.index(h.hook) for h in route.hits]
    assert ranks == sorted(ranks)
    wheres = [h.where for h in route.hits]
    assert wheres.index("raw PREROUTING policy ACCEPT") < wheres.index("nat PREROUTING #1")
    assert wheres[-1] == "nat POSTROUTING policy ACCEPT"
    # The policy of PREROUTING comes after the rules of the chain it jumped into.
    assert wheres.index("nat DOCKER #1") < wheres.index("nat PREROUTING policy ACCEPT")


def test_the_raw_table_is_only_in_28_5() -> None:
    tables = {
        e: set(trace.parse_save((DATA / e / "02-eth0-after.txt").read_text()).tables)
        for e in ENGINES
    }
    assert tables["20.10"] == tables["26.1"] == {"filter", "nat"}
    assert tables["28.5"] == {"raw", "filter", "nat"}


def test_policy_counters_of_old_iptables_are_pointed_out() -> None:
    """1.8.9 (20.10's machine) leaves policy counters at 0; 1.8.11+ count them."""
    old = request("20.10", "02-eth0")
    new = request("26.1", "02-eth0")
    assert any("1.8.9" in note for note in old.notes)
    assert not new.notes
    assert any(h.rule is None and h.chain == "POSTROUTING" for h in new.hits)


def test_rules_added_meanwhile_count_from_zero() -> None:
    """publish-port added three rules; none moved, all are named."""
    before = trace.parse_save((DATA / "20.10" / "pf-step-nat-baseline.txt").read_text())
    after = trace.parse_save((DATA / "20.10" / "pf-step-publish-port.txt").read_text())
    moved, notes = trace.deltas(before, after)
    assert moved == {}
    assert sum(n.startswith("new rule in") for n in notes) == 3
    assert any(DNAT in n for n in notes)


def test_zeroed_counters_are_said_and_counted_from_zero() -> None:
    result = run("run-20.10-zeroed.txt")
    assert any("zeroed meanwhile" in note for note in result.path.notes)
    assert result.path.rules() == [OUTPUT_JUMP, DNAT]
    assert all(h.packets > 0 for h in result.path.hits)


def test_a_recorded_run_from_another_container() -> None:
    result = run("run-20.10-other-container.txt")
    assert result.status == 0 and result.stdout.strip() == "200"
    assert result.path.rules() == [PREROUTING_JUMP, RETURN]
    assert result.iptables == "1.8.9 (nf_tables)"
    assert result.packets is None
    assert ui_views.trace_json(result)["path"]["hits"][1]["where"] == "nat DOCKER #1"


def test_packets_of_a_recorded_eth0_run() -> None:
    result = run("run-20.10-eth0-packets.txt", packets=True)
    assert result.packets is not None
    met = [w for w in result.packets if w.met_rules()]
    assert len(met) == 1, "only the SYN meets nat rules: nat sees a connection's first packet"
    steps = met[0].steps
    assert [(s.table, s.chain, s.verdict) for s in steps] == [
        ("nat", "OUTPUT", "JUMP:DOCKER"),
        ("nat", "DOCKER", "ACCEPT"),
    ]
    assert steps[1].rule == DNAT
    assert "SYN" in met[0].header.split()
    # The tracer's own chain never shows.
    assert not any(s.chain == trace.OWN_CHAIN for w in result.packets for s in w.steps)


def test_monitor_output_recorded_by_hand_parses_the_same() -> None:
    """The engines harness's own TRACE rule (in raw OUTPUT) is a rule like any other."""
    walks = trace_verb.parse_monitor((DATA / "20.10" / "trace-eth0-monitor.txt").read_text())
    dnat = [s for w in walks for s in w.steps if "DNAT" in s.rule]
    assert len(dnat) == 1 and dnat[0].chain == "DOCKER"


@pytest.mark.parametrize("packets", [False, True])
def test_the_script_is_valid_shell_and_removes_trace_rules_on_exit(packets: bool) -> None:
    text = trace_verb.script("curl -s 'http://localhost:5000/?a=1&b=2'", 1.0, packets)
    subprocess.run(["sh", "-n"], input=text, text=True, check=True)
    assert ("iptables -t raw -X LABGEN-TRACE" in text) == packets
    assert text.index("trap cleanup EXIT") < text.index("save before")


def test_a_dump_without_counters_is_refused() -> None:
    text = (DATA / "20.10" / "02-eth0-after.txt").read_text().replace("[1:60] ", "")
    with pytest.raises(trace.TraceError, match="iptables-save -c"):
        trace.parse_save(text)


def test_monitor_rules_read_the_same_from_iptables_1_8_9_and_1_8_13() -> None:
    """xtables-monitor prints "-4 -t nat -A ..." (1.8.9) or "iptables -t nat -A ..."
    (1.8.13, Docker 28.5's machine): both are read as iptables-save writes the rule."""
    for prefix in ("-4 -t nat", "iptables -t nat"):
        walks = trace_verb.parse_monitor(
            "PACKET: 2 1a OUT=lo SRC=10.0.0.1 DST=10.0.0.1 SYN\n"
            f" TRACE: 2 1a nat:DOCKER:rule:0x9:ACCEPT  {prefix} {DNAT}\n"
        )
        assert walks[0].steps[0].rule == DNAT


# -- labgen-lab trace: the same trace inside the machine, in plain text ----------------


def test_in_machine_plain_text_names_the_rules_in_hook_order() -> None:
    result = run("run-20.10-eth0-packets.txt", packets=True)
    text = trace_lab.plain(result)
    lines = text.splitlines()
    assert lines[0].startswith("$ recorded  (exit 0")
    jump = next(i for i, line in enumerate(lines) if OUTPUT_JUMP in line)
    dnat = next(i for i, line in enumerate(lines) if DNAT in line)
    assert jump < dnat and "└ " + DNAT in lines[dnat] and "+1" in lines[dnat]
    assert "Packets that met a rule (1 of" in text
    assert "\x1b" not in text and "[bold]" not in text, "plain text: no markup, no colours"


def test_in_machine_trace_is_kept_as_json_lines(tmp_path: Path) -> None:
    log = tmp_path / "new" / "traces.jsonl"
    result = run("run-20.10-eth0-packets.txt", packets=True)
    trace_lab.record(result, log)
    trace_lab.record(result, log)
    kept = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(kept) == 2 and kept[0] == json.loads(json.dumps(ui_views.trace_json(result)))
    assert [h["rule"] for h in kept[0]["path"]["hits"] if h["rule"]] == [OUTPUT_JUMP, DNAT]


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["--", "curl", "-s", "http://x:5000/?via=eth0"], "curl -s 'http://x:5000/?via=eth0'"),
        (["--", "curl -s x | head -1"], "curl -s x | head -1"),
        (["--packets", "--json", "--", "true"], "true"),
    ],
)
def test_in_machine_trace_reads_one_shell_line_or_argv(argv: list[str], line: str) -> None:
    assert trace_lab.parse_args(argv)[0] == line


@pytest.mark.parametrize("argv", [[], ["--"], ["--", " "], ["--bogus", "--", "true"], ["true"]])
def test_in_machine_trace_refuses_bad_usage_with_exit_2(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert trace_lab.main(argv) == 2
    assert "labgen-lab trace:" in capsys.readouterr().err


def test_in_machine_trace_needs_only_the_standard_library(tmp_path: Path) -> None:
    """What render.py ships runs with a bare python3 (-S: no site-packages, so no rich,
    no pydantic): as Debian's python3 in the lab machine runs it."""
    package = tmp_path / "labgen"
    package.mkdir()
    (package / "__init__.py").write_text("")
    source = Path(trace_lab.__file__).parent
    for module in [m.name for m in render.in_machine_modules() if m.name.startswith("trace")]:
        (package / module).write_text((source / module).read_text())
    proc = subprocess.run(
        [sys.executable, "-S", "-m", "labgen.trace_lab", "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: labgen-lab trace")
