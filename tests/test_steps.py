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
