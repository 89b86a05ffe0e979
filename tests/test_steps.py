"""A node's bootstrap command runs four phases (components/nodes/steps.py, scripts/remote/
steps.sh), run for real in the sandbox through its exact command line: per-phase re-runs
and resumes are kept on the node by a stamp of each phase's program."""

from __future__ import annotations

import dataclasses

import pytest
from sandbox import Sandbox
from test_bootstrap_cases import cfg_for, spec
from test_bootstrap_kube_packages import kube_sandbox
from test_bootstrap_runtime import DEFAULT_V3_EMPTY_IMPORTS

from components.nodes import bootstrap, phase, steps

SKIPPED = "unchanged since it last succeeded here: skipped"


def command(cfg, **replace_params) -> str:
    """The worker's bootstrap command line; `replace_params` = {phase: {field: value}}."""
    specs = [spec(cfg, n) for n in bootstrap.BOOTSTRAP_PHASES]
    rendered = steps.programs([(s.name, s.script, dataclasses.replace(s.params, **replace_params.get(s.name, {})))
                               for s in specs])
    return phase.command_line(steps.render_steps(rendered), steps.command_timeout(rendered))


def ran(res) -> list[str]:
    """The phases that ran (their scripts log as `[katak8s <phase>]`), in order."""
    seen: list[str] = []
    for name in bootstrap.BOOTSTRAP_PHASES:
        if f"[katak8s {name}] INFO" in res.stderr or f"[katak8s {name}] ERROR" in res.stderr:
            seen.append(name)
    return seen


@pytest.fixture
def sb(tmp_path) -> Sandbox:
    return kube_sandbox(tmp_path)  # serves the Kubernetes repository and its packages


def test_a_failed_phase_is_resumed_there_and_the_done_ones_are_skipped(sb):
    cfg = cfg_for()
    first = sb.run_command(command(cfg), timeout=300)
    # The sandbox's containerd prints no default config yet: the runtime phase fails.
    assert first.rc != 0 and ran(first) == ["preflight", "kernel", "runtime"], first
    sb.stub("containerd", "config default", stdout=DEFAULT_V3_EMPTY_IMPORTS)
    second = sb.run_command(command(cfg), timeout=300)
    assert second.ok, second
    assert ran(second) == ["runtime", "kube-packages"], second
    assert f"[katak8s preflight] {SKIPPED}" in second.stderr and f"[katak8s kernel] {SKIPPED}" in second.stderr
    before = sb.snapshot()
    third = sb.run_command(command(cfg), timeout=300)
    assert third.ok and ran(third) == [] and third.changing() == [], third
    assert sb.snapshot() == before, "a no-op re-run rewrote files"


def test_a_change_re_runs_only_the_phase_it_concerns(sb):
    sb.stub("containerd", "config default", stdout=DEFAULT_V3_EMPTY_IMPORTS)
    cfg = cfg_for()
    assert sb.run_command(command(cfg), timeout=300).ok
    flavor = sb.run_command(command(cfg, preflight={"flavor": "m2.xlarge"}), timeout=300)
    assert flavor.ok and ran(flavor) == ["preflight"], flavor
    for name in ("kernel", "runtime", "kube-packages"):
        assert f"[katak8s {name}] {SKIPPED}" in flavor.stderr


def test_each_phase_keeps_its_program_for_the_operator(sb):
    sb.stub("containerd", "config default", stdout=DEFAULT_V3_EMPTY_IMPORTS)
    line = command(cfg_for())
    assert sb.run_command(line, timeout=300).ok
    parsed = dict(steps.parse(phase.program_of(line)))
    for name in bootstrap.BOOTSTRAP_PHASES:
        assert sb.path(f"{phase.DEFAULT_HOME}/{name}.sh").read_text() == parsed[name] + "\n"


def test_parse_reads_back_what_render_steps_wrote():
    cfg = cfg_for()
    rendered = steps.programs([(s.name, s.script, s.params) for s in (spec(cfg, n) for n in ("kernel", "kata"))])
    assert steps.parse(steps.render_steps(rendered)) == rendered
    assert steps.parse(rendered[0][1]) is None  # a program of one phase


def test_a_server_from_a_snapshot_or_another_releases_run_takes_every_phase_again(sb):
    """A stamp binds the program to this server (cloud-init's instance id) and to the program
    kept as ~/.katak8s/<phase>.sh: a snapshot of a bootstrapped node, or a node where
    another katak8s release ran the phase since, is not taken as done."""
    sb.stub("containerd", "config default", stdout=DEFAULT_V3_EMPTY_IMPORTS)
    sb.write("var/lib/cloud/data/instance-id", "11111111-aaaa\n")
    line = command(cfg_for())
    assert sb.run_command(line, timeout=300).ok
    sb.write("var/lib/cloud/data/instance-id", "22222222-bbbb\n")  # booted from its snapshot
    again = sb.run_command(line, timeout=300)
    assert again.ok and ran(again) == list(bootstrap.BOOTSTRAP_PHASES), again
    sb.write(f"{phase.DEFAULT_HOME}/kernel.sh", "# another release's kernel phase\n")
    other = sb.run_command(line, timeout=300)
    assert other.ok and ran(other) == ["kernel"], other


def test_a_failed_phase_is_named_with_its_exit_status(sb):
    res = sb.run_command(command(cfg_for()), timeout=300)  # no containerd default config here
    assert res.rc != 0
    assert "[katak8s runtime] failed (exit 1): the next pulumi up resumes at this phase" in res.stderr, res
