"""Kubernetes upgrades through the engine model (tests/engine_model.py): what `pulumi up`
runs, per node and in which order, when kubernetesVersion moves on a deployed stack; and
what the next `pulumi up` runs after one failed half-way (components/cluster/upgrade.py)."""

from __future__ import annotations

import pytest
from engine_model import simulate
from harness import UNREADABLE, Graph, run_program
from operations import node_actions, upgrade_order

from components.config import ConfigError

CP0, CP1, CP2 = "dev-cp-0", "dev-cp-1", "dev-cp-2"
W0, W1, W2 = "dev-worker-0", "dev-worker-1", "dev-worker-2"
SERVER = "openstack:compute/instance:Instance"
COMMAND = "command:remote:Command"
DRAIN, UPGRADE, UNCORDON = "drain for the upgrade to {v} (on dev-cp-0)", "upgrade to {v}: kubeadm upgrade node, " \
    "runtime and kubelet", "uncordon once it runs {v} (on dev-cp-0)"
APPLY = "upgrade to {v}: kubeadm upgrade apply, drain, runtime and kubelet, uncordon"


def up(before: dict, after: dict):
    old = run_program(before)
    steps, new = simulate(old, lambda fresh: run_program(after, deployed=old, fresh=fresh))
    actions = node_actions(steps, old, new)
    return steps, actions, new, old


def upgrade_steps(actions: dict, node: str, target: str) -> list[str]:
    want = {s.format(v=target) for s in (DRAIN, UPGRADE, UNCORDON, APPLY)}
    return [a for a in actions[node] if a in want]


def destructive(steps) -> list[str]:
    return [s.name for s in steps if s.op == "delete" and s.reg.type == COMMAND
            and s.reg.plain("delete") and not s.skipped]


@pytest.mark.parametrize("old,new,target", [("1.35", "1.36", "1.36.4"), ("1.36", "1.37", "1.37.1"),
                                            ("1.36.2", "1.36", "1.36.4")])
@pytest.mark.parametrize("runtime", ["containerd", "crio"])
def test_an_upgrade_drains_upgrades_and_uncordons_each_node_and_replaces_nothing(old, new, target, runtime):
    base = {"workerCount": 2, "containerRuntime": runtime, "allowUntestedKubernetesPatch": True}
    steps, actions, after, _ = up({**base, "kubernetesVersion": old}, {**base, "kubernetesVersion": new})
    assert not [s for s in steps if s.reg.type == SERVER], "no server is replaced or changed"
    assert not destructive(steps) and not [s for s in steps if s.op == "replace" and s.reg.plain("delete")]
    assert upgrade_steps(actions, CP0, target) == [APPLY.format(v=target)]
    for worker in (W0, W1):
        assert upgrade_steps(actions, worker, target) == [s.format(v=target) for s in (DRAIN, UPGRADE, UNCORDON)]
    assert upgrade_order(actions, after) == [[CP0], [W0], [W1]]


def test_control_planes_go_one_at_a_time_then_the_workers_in_batches():
    base = {"workerCount": 3, "controlPlaneCount": 3, "upgradeBatchSize": 2}
    _, actions, after, _ = up({**base, "kubernetesVersion": "1.36"}, {**base, "kubernetesVersion": "1.37"})
    assert upgrade_order(actions, after) == [[CP0], [CP1], [CP2], [W0, W1], [W2]]
    assert upgrade_steps(actions, CP1, "1.37.1") == [s.format(v="1.37.1") for s in (DRAIN, UPGRADE, UNCORDON)]


def test_calico_moves_once_every_control_plane_runs_the_new_version():
    base = {"workerCount": 1, "controlPlaneCount": 3}
    old = run_program({**base, "kubernetesVersion": "1.36"})
    new = run_program({**base, "kubernetesVersion": "1.37"}, deployed=old)
    provider = next(r for r in new if r.type == "pulumi:providers:kubernetes")
    for cp in (CP1, CP2):
        assert new.depends_on(provider, new.named(f"{CP0}-membership-{cp}"))
    assert not new.depends_on(provider, new.named(f"{CP0}-membership-{W0}"))
    fresh = run_program(base)  # a new cluster: Calico still installs while nodes join
    provider = next(r for r in fresh if r.type == "pulumi:providers:kubernetes")
    assert not fresh.depends_on(provider, fresh.named(f"{CP0}-membership-{CP2}"))


def test_a_cluster_at_its_version_joins_its_workers_side_by_side():
    """Only an upgrade chains the workers; a fresh stack or a scale-out does not wait."""
    graph = run_program({"workerCount": 3})
    joins = [graph.named(f"{w}-kubeadm-join") for w in (W0, W1, W2)]
    assert not any(graph.depends_on(a, graph.named(f"{CP0}-membership-{b}"))
                   for a in joins for b in (W0, W1, W2))
    again = run_program({"workerCount": 3}, deployed=graph)
    assert not again.depends_on(again.named(f"{W1}-kubeadm-join"), again.named(f"{CP0}-membership-{W0}"))


def test_unknown_deployed_outputs_take_the_safe_order():
    """When the stack's last outputs cannot be read, an upgrade may be under way: batches."""
    graph = run_program({"workerCount": 2}, deployed={UNREADABLE: True})
    assert graph.depends_on(graph.named(f"{CP0}-join-credentials-{W1}"), graph.named(f"{CP0}-membership-{W0}"))


def _partial(old: Graph, new: Graph, done: set[str]) -> Graph:
    """The state after a `pulumi up` that failed half-way: what succeeded has its new inputs;
    a failed update and everything after it keep the old ones (upgrades.md §5.3)."""
    regs = [new.named(r.name) if r.name in done else r for r in old]
    return Graph(regs, [], dict(old.exports))


def test_the_next_up_after_a_failure_on_the_second_worker_resumes_there():
    base = {"workerCount": 3}
    old = run_program({**base, "kubernetesVersion": "1.35"})
    steps, new = simulate(old, lambda fresh: run_program({**base, "kubernetesVersion": "1.36"}, deployed=old,
                                                         fresh=fresh))
    order = [s.name for s in steps]
    failed = f"{W1}-kubeadm-join"
    # Everything but W1's join and what waits for it succeeded (the engine stops scheduling
    # what depends on a failed step; the rest of the worker chain depends on it).
    blocked = {s.name for s in steps if new.depends_on(new.named(s.name), new.named(failed))} | {failed}
    done = {n for n in order if n not in blocked}
    state = _partial(old, new, done)
    # Commands that ran again in the failed up hold their new outputs (a new token) in state.
    ran = {s.name for s in steps if s.name in done and s.reg.type == COMMAND and s.op in ("update", "replace")}
    # A failed up records no new kubernetesVersion: the preview still sees 1.36.4.
    assert state.exports["kubernetesVersion"].value == "1.35.8"
    again, _ = simulate(state, lambda fresh: run_program({**base, "kubernetesVersion": "1.36"},
                                                         deployed=state, fresh=fresh | ran))
    actions = node_actions(again, state, new)
    assert set(actions) == {W1, W2}, actions
    assert upgrade_steps(actions, W1, "1.36.4") == [UPGRADE.format(v="1.36.4"), UNCORDON.format(v="1.36.4")]
    assert upgrade_steps(actions, W2, "1.36.4") == [s.format(v="1.36.4") for s in (DRAIN, UPGRADE, UNCORDON)]
    # And the next hop cannot start meanwhile: the stack still says 1.35.8.
    with pytest.raises(ConfigError, match="katak8s:kubernetesVersion: cannot jump from 1.35.8 to 1.37.1") as err:
        run_program({**base, "kubernetesVersion": "1.37"}, deployed=state)
    assert "stopped half-way, set that version again" in str(err.value)


def test_the_kubernetes_version_output_waits_for_every_node():
    """Stack outputs are registered once all resolve (pulumi/runtime/stack.py run_in_stack ->
    register_outputs serializes every export); one that faults sends none, and the engine
    keeps the old outputs (step_executor.go executeRegisterResourceOutputs). So the version
    is recorded only once init and every node's membership (the last upgrade step) succeeded."""
    import asyncio

    from test_cluster_graph import build

    got = {}

    def fn():
        cluster = build()
        got["task"] = asyncio.ensure_future(cluster.kubernetes_version.resources())
        got["cluster"] = cluster

    run_program({"workerCount": 2, "controlPlaneCount": 3}, fn=fn)
    cluster = got["cluster"]
    waits_for = got["task"].result()
    assert waits_for == {cluster.init.command, *(p.command for p in cluster.memberships.values())}


def test_the_recorded_version_is_the_lowest_a_node_reports():
    """`pulumi up --target` can skip some nodes' steps (their stdout stays as the state has
    it): the stack then records the version those nodes still run, never the target."""
    from components.cluster.upgrade import observed_version

    outs = ["kubelet=v1.37.1\n", "kubelet=v1.36.4\n", "noise\nkubelet=v1.37.1\n"]
    assert observed_version(outs, "1.37.1") == "1.36.4"
    # A step whose state predates the line counts as the last recorded version.
    assert observed_version(["kubelet=v1.37.1\n", ""], "1.37.1", "1.36.4") == "1.36.4"
    assert observed_version(["", ""], "1.37.1") == "1.37.1"  # a new stack
    assert observed_version(["kubelet=v1.36.10\n", "kubelet=v1.36.9\n"], "x") == "1.36.9"
    assert observed_version(["kubelet=vgarbage\n"], "1.36.4") == "1.36.4"
