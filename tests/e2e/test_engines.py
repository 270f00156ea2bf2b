"""The Docker engine as a dimension: machines with 20.10, 26.1 and 28.5, each checked
against its own engine's expected state, and the checks telling the engines apart.

(Every lab on every engine, step by step: test_verify.py's `verify --all --engine all`.)
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from helpers import labgen, labgen_json, show

pytestmark = pytest.mark.e2e

LAB = "port-forwarding"
# The checks of publish-port whose expected state differs between 28 and the older
# engines, as the lab's notes say (measured: the hairpin MASQUERADE, the raw DROP, and
# FORWARD's path to DOCKER).
DIFFERING = {
    "test_rules_for_the_containers_own_address",
    "test_filter_lets_port_5000_through_to_the_container",
}


def test_a_28_5_machine_runs_the_whole_lab(bring_up: Callable[..., str]) -> None:
    """`labgen up port-forwarding --engine 28.5 && labgen run --all && labgen check`."""
    bring_up(LAB, "--engine", "28.5")
    code, rows = labgen_json("status")
    assert [(r["instance"], r["engine"]) for r in rows] == [(LAB, "28.5")]
    version = labgen("ssh", LAB, "--", "docker", "version", "--format", "{{.Server.Version}}")
    assert version.stdout.startswith("28.5."), show(version)

    run = labgen("run", LAB, "--all")
    assert run.returncode == 0, show(run)
    assert "On Docker 28.5:" in run.stdout  # the engine's note, shown with its step
    code, checked = labgen_json("check", LAB)
    assert code == 0, json.dumps(checked, indent=2)
    assert checked["results"] and all(r["outcome"] == "passed" for r in checked["results"])


@pytest.mark.parametrize(
    "engine, others", [("28.5", ["20.10", "26.1"]), ("26.1", ["28.5"]), ("20.10", ["28.5"])]
)
def test_one_engines_expectations_fail_on_another_engines_machine(
    bring_up: Callable[..., str], engine: str, others: list[str]
) -> None:
    """Where the lab says two engines differ, each engine's expected state fails on the
    other's machine, naming the checks that differ; its own passes."""
    bring_up(LAB, "--engine", engine)
    run = labgen("run", LAB, "nat-baseline", "publish-port")
    assert run.returncode == 0, show(run)
    code, own = labgen_json("check", LAB)
    assert code == 0, json.dumps(own, indent=2)
    for other in others:
        code, held = labgen_json("check", LAB, "--expect-engine", other)
        assert code == 1, f"{other}'s expectations passed on a {engine} machine"
        # Names carry testinfra's host parameter: test_x[paramiko://default].
        failing = {r["name"].split("[")[0] for r in held["results"] if r["outcome"] != "passed"}
        assert failing == DIFFERING, json.dumps(held, indent=2)


def test_an_unknown_engine_is_refused_before_anything_starts(labgen_home: object) -> None:
    proc = labgen("up", LAB, "--engine", "19.03")
    assert proc.returncode == 2, show(proc)
    assert "'19.03' is not one of" in proc.stderr
    env_proc = labgen("verify", LAB, "--engine", "19.03")
    assert env_proc.returncode == 2, show(env_proc)
    assert "unknown Docker engine '19.03'" in env_proc.stderr
