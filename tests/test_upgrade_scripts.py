"""The upgrade steps run FOR REAL in the stub sandbox (tests/sandbox.py), one sandbox per
node around one fake API (tests/fake_cluster.py), with the exact bundles the program
declares, in the order its graph gives (components/cluster/upgrade.py): init on cp-0, then
per node credentials (drain), join (upgrade), membership (uncordon). Every step runs twice;
the second run changes nothing."""

from __future__ import annotations

import pytest
from fake_cluster import FakeCluster
from harness import run_program

from components import versions as v
from components.nodes import steps

CP0, W0, W1 = "dev-cp-0", "dev-worker-0", "dev-worker-1"
INIT_STDIN = "controlPlaneEndpoint: 10.42.0.11:6443\n"
TOKEN_ONLY = ("kubeadm token create",)  # credentials mint a fresh token on every run, by design


def bundles(config: dict) -> dict[str, str]:
    """Command name -> the program it runs on its node (components/nodes/phase.py)."""
    graph = run_program(config)
    programs = {r.name: graph.program(r.name) for r in graph.of_type("command:remote:Command")
                if r.plain("create", "").startswith("sudo ")}
    # A node's bootstrap command runs four phases (components/nodes/steps.py): each by name too.
    for name, program in list(programs.items()):
        for phase_name, sub in steps.parse(program) or []:
            programs[f"{name.removesuffix('-bootstrap')}-{phase_name}"] = sub
    return programs


def step(cluster: FakeCluster, bundle: dict[str, str], name: str, *, twice: bool = True):
    """Run the bundle of command `name` on the node it targets; again, and check the second
    run changed nothing (the credentials mint their token again, nothing else)."""
    host = next(n for n in sorted(cluster.nodes, key=len, reverse=True) if name.startswith(n + "-"))
    node = cluster.nodes[host]
    stdin = INIT_STDIN if name.endswith("kubeadm-init") else "joined: the config is not read\n"
    res = node.sb.run_bundle(bundle[name], env=node.sb.env_extra, stdin=stdin)
    if twice and res.ok:
        before = node.sb.snapshot()
        log = len(cluster.api_log())
        again = node.sb.run_bundle(bundle[name], env=node.sb.env_extra, stdin=stdin)
        assert again.ok, again
        changing = [c.line for c in again.changing() if not c.line.startswith(TOKEN_ONLY)]
        assert changing == [], changing
        assert [e for e in cluster.api_log()[log:] if not e.startswith("kubectl get")] == []
        assert node.sb.snapshot() == before
    return res


def make_cluster(tmp_path, runtime: str, ubuntu: str, version: str) -> FakeCluster:
    cluster = FakeCluster(tmp_path, runtime=runtime, ubuntu=ubuntu, cluster_version=version)
    cluster.node(CP0, version, control_plane=True, first=True)
    cluster.node(W0, version)
    cluster.node(W1, version)
    cluster.offer(version)
    return cluster


ORDER = [f"{CP0}-kubeadm-init",
         f"{CP0}-join-credentials-{W0}", f"{W0}-kubeadm-join", f"{CP0}-membership-{W0}",
         f"{CP0}-join-credentials-{W1}", f"{W1}-kubeadm-join", f"{CP0}-membership-{W1}"]


@pytest.mark.parametrize("ubuntu", ["24.04", "26.04"])
@pytest.mark.parametrize("runtime", ["containerd", "crio"])
@pytest.mark.parametrize("hop", [("1.35.8", "1.36"), ("1.36.4", "1.37"), ("1.36.2", "1.36.4")])
def test_an_upgrade_takes_every_node_to_the_target_one_at_a_time(tmp_path, runtime, ubuntu, hop):
    old, new = hop
    target = v.kubernetes_patch(new)
    cluster = make_cluster(tmp_path, runtime, ubuntu, old)
    cluster.offer(target)
    bundle = bundles({"workerCount": 2, "containerRuntime": runtime, "kubernetesVersion": new,
                      "allowUntestedKubernetesPatch": True})
    held = []
    for name in ORDER:
        res = step(cluster, bundle, name)
        assert res.ok, (name, res)
        held.append(cluster.cordoned())
    assert max(len(h) for h in held) <= 1, held  # never two nodes out at once
    assert cluster.cluster_version() == f"v{target}"
    assert {n: cluster.kubelet(n) for n in cluster.nodes} == {n: f"v{target}" for n in cluster.nodes}
    assert cluster.cordoned() == set() and all(cluster.annotations(n) == {} for n in cluster.nodes)
    drains = [e.split()[2] for e in cluster.api_log() if e.startswith("kubectl drain")]
    assert drains == [CP0, W0, W1]
    log = cluster.api_log()
    # cp-0: `kubeadm upgrade apply` before its drain (the health check needs a schedulable node).
    for node in cluster.nodes.values():
        kubeadm = [c.args for c in _calls(node, "kubeadm") if c.args.startswith("upgrade")]
        assert kubeadm == ([f"upgrade apply v{target} --yes"] if node.name == CP0 else ["upgrade node"])
        assert node.sb.installed_version("kubelet") == f"{target}-1.1"
        assert {"kubeadm", "kubelet", "kubectl"} <= set(node.sb.held())
        pause = v.PAUSE_IMAGES[v.kubernetes_minor(target)]
        assert node.sb.read("etc/katak8s/pause-image").strip() == pause
        if runtime == "crio":
            assert node.sb.installed_version("cri-o").startswith(v.kubernetes_minor(target) + ".")
        else:
            assert f"sandbox = '{pause}'" in node.sb.read("etc/containerd/conf.d/10-katak8s.toml")
    assert log.index(f"kubectl uncordon {CP0}") < log.index(f"kubectl cordon {W0}")


def _calls(node, name):
    """Every call of `name` in the node's sandbox so far."""
    from sandbox import parse_calls
    return [c for c in parse_calls(node.sb.log.read_bytes()) if c.name == name]


UP = {"workerCount": 2, "kubernetesVersion": "1.37"}


def upgrade_cluster(tmp_path, runtime: str = "containerd") -> tuple[FakeCluster, dict[str, str]]:
    cluster = make_cluster(tmp_path, runtime, "24.04", "1.36.4")
    cluster.offer("1.37.1")
    return cluster, bundles({**UP, "containerRuntime": runtime})


def test_a_failure_on_the_second_worker_resumes_there_and_uncordons_only_what_the_upgrade_cordoned(tmp_path):
    cluster, bundle = upgrade_cluster(tmp_path)
    operator_cordoned = "dev-worker-0"  # cordoned by its operator before the upgrade
    (cluster.api / "nodes" / operator_cordoned / "unschedulable").touch()
    for name in ORDER[:5]:
        assert step(cluster, bundle, name).ok, name
    w1 = cluster.nodes[W1]
    (w1.sb.base / "kubeadm-upgrade-fails").touch()
    failed = step(cluster, bundle, f"{W1}-kubeadm-join", twice=False)
    assert failed.rc == 1 and "kubeadm upgrade node failed on dev-worker-1" in failed.stderr, failed
    assert "'pulumi up' again" in failed.stderr
    assert cluster.cordoned() == {W0, W1} and cluster.kubelet(W1) == "v1.36.4"
    # The next `pulumi up` re-runs the failed join (its update is retried), then what follows it.
    (w1.sb.base / "kubeadm-upgrade-fails").unlink()
    log = len(cluster.api_log())
    for name in ORDER[5:]:
        assert step(cluster, bundle, name).ok, name
    assert not [e for e in cluster.api_log()[log:] if W0 in e and not e.startswith("kubectl get")]
    assert cluster.kubelet(W1) == "v1.37.1"
    assert cluster.cordoned() == {operator_cordoned}, "the operator's cordon stays, the upgrade's goes"


def test_a_drain_that_a_disruption_budget_blocks_stops_before_the_node_changes(tmp_path):
    cluster, bundle = upgrade_cluster(tmp_path)
    assert step(cluster, bundle, ORDER[0]).ok
    (cluster.api / "nodes" / W0 / "drain-fails").touch()
    res = step(cluster, bundle, ORDER[1], twice=False)
    assert res.rc == 1 and res.stdout == "", res  # no credentials printed by a failed step
    assert "draining dev-worker-0 failed or took over 300s" in res.stderr and "disruption budget" in res.stderr
    assert "the upgrade resumes at dev-worker-0" in res.stderr
    assert cluster.cordoned() == {W0} and cluster.kubelet(W0) == "v1.36.4"
    assert cluster.annotations(W0) == {v.UPGRADE_CORDON_ANNOTATION: "v1.37.1"}  # not yet drained for it
    (cluster.api / "nodes" / W0 / "drain-fails").unlink()
    for name in ORDER[1:4]:
        assert step(cluster, bundle, name).ok, name
    assert cluster.cordoned() == set() and cluster.kubelet(W0) == "v1.37.1"


def test_the_upgrade_never_holds_more_nodes_than_the_batch(tmp_path):
    cluster, bundle = upgrade_cluster(tmp_path)
    assert step(cluster, bundle, ORDER[0]).ok
    assert step(cluster, bundle, ORDER[1]).ok  # dev-worker-0 drained, its upgrade not run yet
    res = step(cluster, bundle, ORDER[4], twice=False)  # dev-worker-1's drain out of turn
    assert res.rc == 1 and "dev-worker-0 still hold the upgrade's cordon" in res.stderr, res
    assert cluster.cordoned() == {W0}
    two = bundles({**UP, "upgradeBatchSize": 2})
    assert step(cluster, two, ORDER[4]).ok and cluster.cordoned() == {W0, W1}


def test_a_node_that_is_not_cordoned_is_not_upgraded(tmp_path):
    cluster, bundle = upgrade_cluster(tmp_path)
    assert step(cluster, bundle, ORDER[0]).ok
    res = step(cluster, bundle, f"{W0}-kubeadm-join", twice=False)
    assert res.rc == 1 and "dev-worker-0 is not cordoned" in res.stderr, res
    node = cluster.nodes[W0]
    assert node.sb.installed_version("kubelet") == "1.36.4-1.1" and not res.called("systemctl", "restart*")


@pytest.mark.parametrize("versions,words", [
    ({W0: "v1.36.2", W1: "v1.36.4"}, "an earlier upgrade stopped half-way. Set katak8s:kubernetesVersion to 1.36.4"),
    ({W0: "v1.35.8"}, "kubelets more than one minor behind v1.37.1: dev-worker-0=v1.35.8"),
])
def test_the_first_step_refuses_a_cluster_an_earlier_upgrade_left_half_done(tmp_path, versions, words):
    """The stack cannot see at preview an earlier hop that stopped half-way (a failed `up`
    records no new version): the first step reads every kubelet before anything changes."""
    cluster, bundle = upgrade_cluster(tmp_path)
    for name, version in versions.items():
        (cluster.api / "nodes" / name / "kubelet").write_text(version)
    res = step(cluster, bundle, ORDER[0], twice=False)
    assert res.rc == 1 and words in res.stderr, res
    assert not [c for c in res.calls if c.name == "kubeadm" and c.args.startswith("upgrade")]
    assert cluster.cluster_version() == "v1.36.4" and res.changing() == []


def test_gates_the_new_kubeadm_does_not_know_leave_kubeadm_config_first(tmp_path):
    cluster, bundle = upgrade_cluster(tmp_path)
    config = cluster.api / "cluster-config"
    config.write_text(config.read_text() + "featureGates:\n  NodeLocalCRISocket: true\n  SomeOtherGate: false\n")
    assert step(cluster, bundle, ORDER[0]).ok
    text = config.read_text()
    assert "NodeLocalCRISocket" not in text and "SomeOtherGate: false" in text
    log = cluster.api_log()
    assert log.index("kubectl replace -f -") < len(log)
    calls = [c.args for c in _calls(cluster.nodes[CP0], "kubeadm") if c.args.startswith("upgrade")]
    assert calls == ["upgrade apply v1.37.1 --yes"]


def test_a_joined_node_keeps_its_packages_in_the_kube_packages_phase(tmp_path):
    """The bootstrap phase also carries the version: on a joined node it leaves the move to
    the upgrade steps (drained), instead of refusing or installing under the pods."""
    cluster, bundle = upgrade_cluster(tmp_path)
    node = cluster.nodes[W0]
    res = node.sb.run_bundle(bundle[f"{W0}-kube-packages"], env=node.sb.env_extra)
    assert res.ok and "the upgrade steps move it to 1.37.1" in res.stderr, res
    assert node.sb.installed_version("kubelet") == "1.36.4-1.1"
    assert not res.called("apt-get", "install*") and not res.called("systemctl", "restart*")
    (cluster.api / "nodes" / W0 / "kubelet").write_text("v1.38.0")
    node.sb.installed("kubelet", "1.38.0-1.1")
    res = node.sb.run_bundle(bundle[f"{W0}-kube-packages"], env=node.sb.env_extra)
    assert res.rc == 1 and "kubeadm has no downgrade" in res.stderr


def test_an_apply_that_failed_after_the_static_pods_moved_runs_again(tmp_path):
    """Its static pods and kubeadm-config already say the target: only kubeadm's own success
    (the mark) counts, so the phases after them (addons, post-upgrade) are not skipped."""
    cluster, bundle = upgrade_cluster(tmp_path)
    cp0 = cluster.nodes[CP0]
    (cp0.sb.base / "kubeadm-fails-late").touch()
    res = step(cluster, bundle, ORDER[0], twice=False)
    assert res.rc == 1 and cluster.cluster_version() == "v1.37.1", res
    (cp0.sb.base / "kubeadm-fails-late").unlink()
    assert step(cluster, bundle, ORDER[0]).ok
    applies = [c.args for c in _calls(cp0, "kubeadm") if c.args.startswith("upgrade apply")]
    assert applies == ["upgrade apply v1.37.1 --yes"] * 2
    # join-credentials.sh hands the saved init config to `kubeadm init phase upload-certs`,
    # which the next kubeadm refuses for a version below its oldest control plane.
    assert "kubernetesVersion: v1.37.1" in cp0.sb.read("etc/kubernetes/katak8s/kubeadm-init.yaml")


def test_the_kube_packages_phase_judges_by_the_kubelet_not_by_kubeadm(tmp_path):
    """cp-0's upgrade installs the new kubeadm before its drain; a re-run of the bootstrap
    phase then (a script edit) must not move the kubelet undrained."""
    cluster, bundle = upgrade_cluster(tmp_path)
    node = cluster.nodes[CP0]
    node.sb.installed("kubeadm", "1.37.1-1.1")
    res = node.sb.run_bundle(bundle[f"{CP0}-kube-packages"], env=node.sb.env_extra)
    assert res.ok and "the upgrade steps move it" in res.stderr, res
    assert node.sb.installed_version("kubelet") == "1.36.4-1.1" and not res.called("apt-get", "install*")


def test_the_steps_report_the_kubelet_they_read(tmp_path):
    """What components/cluster/upgrade.py observed_version records as the cluster's version."""
    cluster, bundle = upgrade_cluster(tmp_path)
    outs = {name: step(cluster, bundle, name).stdout for name in ORDER}
    assert [out for name, out in outs.items() if "-membership-" in name or "init" in name] == ["kubelet=v1.37.1\n"] * 3


@pytest.mark.parametrize("me,other", [(W1, W0), (W0, W1)])
def test_two_drains_started_at_once_never_both_go_on(tmp_path, me, other):
    """When the graph does not chain them (the stack's outputs were lost), two drains can
    pass the batch check together: a drain that then sees more marks than the batch undoes
    its own cordon and stops, whatever the names."""
    cluster, bundle = upgrade_cluster(tmp_path)
    assert step(cluster, bundle, ORDER[0]).ok
    (cluster.api / "nodes" / me / "race").write_text(other)
    res = step(cluster, bundle, f"{CP0}-join-credentials-{me}", twice=False)
    assert res.rc == 1 and "started at the same moment" in res.stderr, res
    assert me not in cluster.cordoned() and v.UPGRADE_CORDON_ANNOTATION not in cluster.annotations(me)
    assert not [e for e in cluster.api_log() if e.startswith(f"kubectl drain {me}")]


def test_a_drain_that_backs_off_keeps_an_earlier_runs_cordon_and_mark(tmp_path):
    cluster, bundle = upgrade_cluster(tmp_path)
    assert step(cluster, bundle, ORDER[0]).ok
    (cluster.api / "nodes" / W0 / "drain-fails").touch()
    assert step(cluster, bundle, ORDER[1], twice=False).rc == 1  # W0 cordoned + marked
    (cluster.api / "nodes" / W0 / "drain-fails").unlink()
    mark = cluster.api / "nodes" / W1 / "annotations" / v.UPGRADE_CORDON_ANNOTATION.replace("/", "_")
    mark.write_text("v1.37.1")  # another drain marked W1 meanwhile
    res = step(cluster, bundle, ORDER[1], twice=False)
    assert res.rc == 1 and "at most 1 node(s) are upgraded at once" in res.stderr, res
    assert W0 in cluster.cordoned() and v.UPGRADE_CORDON_ANNOTATION in cluster.annotations(W0)
