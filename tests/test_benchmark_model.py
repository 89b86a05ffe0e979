"""The benchmark's model stays true to the program (no timing here: the benchmark prints
figures, benchmarks/bench.py). A renamed phase must not silently drop out of the model."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import bench  # noqa: E402


@pytest.fixture(scope="module")
def graphs():
    return {size: bench._graph(workers, cps) for size, (cps, workers) in
            {"1+2": (1, 2), "3+6": (3, 6)}.items()}


def test_every_duration_matches_a_real_resource(graphs):
    g = graphs["3+6"]
    for typ, part, _seconds, why in bench.DURATIONS:
        matched = [r for r in g if r.type == typ and bench.duration(r.type, r.name) == _seconds]
        assert matched, f"no {typ} named *{part}* in the program: {why}"


def test_critical_path_does_not_grow_with_the_cluster(graphs):
    small, large = (bench.critical_path(graphs[s]) for s in ("1+2", "3+6"))
    assert small[0] == large[0] and small[0] >= 3  # bootstrap, init, kubeconfig on cp-0
    assert small[1] == large[1]
    chain = large[2]
    assert "bench-cp-0-kubeadm-init (90 s)" in chain
    assert not any(n.startswith("bench-worker-") for n in chain), "a worker is on the critical path"


def test_only_the_kata_phases_rerun_when_kata_changes():
    figures = bench.stability(1, 1)
    assert figures["re_eval_changed"] == 0 and figures["scale_out_changed_existing"] == []
    assert figures["kata_version_changed_phases"] == ["bench-cp-0-kata", "bench-worker-0-kata"]


# --- bounded parallelism and SSH sessions (benchmarks/schedule.py, issue #15) ---------------
import schedule  # noqa: E402


def _run(graph, parallel):
    return schedule.simulate(graph, bench._edges(graph), lambda r: bench.duration(r.type, r.name), parallel)


def test_one_worker_runs_every_step_in_turn_and_unbounded_workers_follow_the_critical_path(graphs):
    g = graphs["1+2"]
    total = sum(bench.duration(r.type, r.name) for r in g if r.custom)
    assert _run(g, 1).makespan_s == total
    assert _run(g, 10_000).makespan_s == bench.longest(g, lambda r: bench.duration(r.type, r.name))


def test_fewer_workers_never_finish_sooner_and_never_run_more_ssh_steps_than_workers(graphs):
    g = graphs["3+6"]
    runs = [_run(g, p) for p in (2, 8, 64)]
    assert runs[0].makespan_s >= runs[1].makespan_s >= runs[2].makespan_s
    assert [r.peak_ssh <= p for r, p in zip(runs, (2, 8, 64), strict=True)] == [True] * 3
    assert runs[0].ssh_steps == sum(1 for r in g if r.type in schedule.SSH_TYPES)


def test_every_ssh_step_is_a_session_on_the_jump_host(graphs):
    """Every step dials through the dedicated jump host; none dials it as its target."""
    g = graphs["1+2"]
    sessions = schedule.ssh_sessions(g)
    assert sessions.held_with_leak == sessions.through_jump == sum(1 for r in g if r.type in schedule.SSH_TYPES)
    assert sessions.to_jump == 0
    legacy = bench._graph(2, 1, jumpHost="first-control-plane")
    old = schedule.ssh_sessions(legacy)  # the first control plane relays, and runs its own steps
    assert old.to_jump == sum(1 for r in legacy if r.type in schedule.SSH_TYPES and r.name.startswith("bench-cp-0-"))
    assert old.held_with_leak == sessions.held_with_leak


def test_the_workflow_deploys_at_the_recommended_parallelism():
    text = (bench.ROOT / ".github" / "workflows" / "deploy.yml").read_text()
    assert f"parallel: ${{{{ vars.PULUMI_PARALLEL || {bench.RECOMMENDED_PARALLEL} }}}}" in text


# Issue #15's goals: at most 10 resources and 6 SSH steps per added worker (19 and 16 with a
# CopyToRemote per phase; 12 and 9 with scripts/remote once per node, library.py; 9 and 6
# with the bootstrap phases in one command, steps.py).
PER_WORKER_GOAL = (10, 6)


def test_an_added_worker_costs_no_more_than_issue_15s_goal():
    resources, ssh = schedule.per_node(bench._graph(2, 1), bench._graph(3, 1))
    assert resources <= PER_WORKER_GOAL[0] and ssh <= PER_WORKER_GOAL[1], (resources, ssh)
    assert resources >= ssh > 0


def test_no_ssh_step_targets_the_jump_host(graphs):
    """It relays; nothing runs on it (it is no cluster member)."""
    for g in graphs.values():
        targets = {schedule._connection(r).get("host") for r in g if r.type in schedule.SSH_TYPES}
        assert not [t for t in targets if "jump-host" in str(t)], targets


def test_every_upgrade_duration_matches_a_real_resource():
    import upgrade_model

    g = bench._graph(2, 5)  # five control planes: cp-1 .. cp-4 exist
    for typ, part, _seconds, why in upgrade_model.UPGRADE_DURATIONS:
        assert [r for r in g if r.type == typ and (r.name.endswith(part) or (part.endswith("-") and part in r.name))], \
            f"no {typ} named *{part}*: {why}"


def test_the_configs_session_count_is_the_graphs():
    """config_rules.held_sessions sizes the jump host warning before any resource exists; it
    must count what the program declares."""
    from harness import run_program

    from components.config_rules import held_sessions

    for workers, cps in ((2, 1), (3, 3)):
        g = bench._graph(workers, cps)
        assert held_sessions(cps, workers) == schedule.ssh_sessions(g).held_with_leak
    for occm, csi in ((False, True), (False, False)):
        g = run_program({"workerCount": 2, "cloudProvider": occm, "cinderCsi": csi})
        assert held_sessions(1, 2, occm, csi) == schedule.ssh_sessions(g).held_with_leak, (occm, csi)
