"""Scale-in scripts run for real in the stub sandbox: registration, drain, reset and the
Node deletion, each through the exact `delete` text the Pulumi program declares."""

from __future__ import annotations

import shlex

import pytest
from fake_cluster import live_node
from sandbox import Sandbox
from test_cluster_graph import cluster_graph
from test_cluster_scripts import ADMIN_CONF, CONTAINERD, make_sandbox

from components.cluster import MemberParams


@pytest.fixture(scope="module")
def graph():
    return cluster_graph({"workerCount": 2})


# --- membership: registration, drain, reset -------------------------------------------------

def test_membership_waits_boundedly_for_registration(tmp_path):
    sb = make_sandbox(tmp_path)
    params = MemberParams(node_name="dev-worker-0", register_timeout=10, kubernetes_version="v1.36.4",
                          ready_timeout=10)
    live_node(sb, "dev-cp-0", "1.36.4", api=sb.base / "api", control_plane=True)
    res = sb.run("cluster/member.sh", params)
    assert res.rc == 1 and "not registered after 10s" in res.stderr, res
    assert len(res.called("kubectl", "*get node*")) <= 5
    (sb.base / "api" / "nodes" / "dev-worker-0").mkdir()
    (sb.base / "api" / "nodes" / "dev-worker-0" / "kubelet").write_text("v1.36.4")
    res = sb.run("cluster/member.sh", params)
    assert res.ok and res.changing() == [], res


def run_delete(sb: Sandbox, graph, name: str):
    """Run a Command's exact `delete` text, `sudo -n timeout 1800 bash -c BUNDLE`, and check
    that both wrappers received the multi-line bundle intact. The calls after those two are
    the bundle's own."""
    text = graph.named(name).plain("delete")
    argv = shlex.split(text)
    assert argv[:6] == ["sudo", "-n", "timeout", "1800", "bash", "-c"] and len(argv) == 7
    assert "\n" in argv[6]
    res = sb.run_command(text)
    assert [c.argv for c in res.calls[:2]] == [tuple(argv), tuple(argv[2:])], res
    return res


def run_drain(sb: Sandbox, graph, node: str = "dev-worker-1"):
    return run_delete(sb, graph, f"dev-cp-0-membership-{node}")


def test_scale_in_drains_and_keeps_the_node_object_for_the_reset(tmp_path, graph):
    sb = make_sandbox(tmp_path, hostname="dev-cp-0")
    sb.write("etc/kubernetes/admin.conf", ADMIN_CONF)
    sb.stub("kubectl", "*get node dev-worker-1*", stdout="node/dev-worker-1\n")
    res = run_drain(sb, graph)
    assert res.ok, res
    kube = [c.args for c in res.called("kubectl")]
    # No `kubectl delete node` yet: the reset (next) needs the Node object; delete-node.sh
    # (the credentials' delete, last) removes it.
    assert kube == ["get node dev-worker-1 --ignore-not-found -o name", "cordon dev-worker-1",
                    "drain dev-worker-1 --ignore-daemonsets --delete-emptydir-data --timeout=300s",
                    "get volumeattachments -o " + ATTACHED]
    assert not any("--force" in c.line or "--disable-eviction" in c.line for c in res.calls[2:])


ATTACHED = ('jsonpath={range .items[?(@.spec.nodeName=="dev-worker-1")]}{.metadata.name} '
            '{.spec.source.persistentVolumeName}{"\\n"}{end}')


def test_scale_in_waits_until_the_nodes_volumes_are_detached(tmp_path, graph):
    """A pod's volume must leave the node while the node (and its server) still exist, so it
    attaches where the pod went (issue #17 §6: scale-in of a node with volumes)."""
    sb = make_sandbox(tmp_path, hostname="dev-cp-0")
    sb.write("etc/kubernetes/admin.conf", ADMIN_CONF)
    sb.stub("kubectl", "*get node dev-worker-1*", stdout="node/dev-worker-1\n")
    sb.stub("kubectl", "*get volumeattachments*", stdout="")
    sb.stub("kubectl", "*get volumeattachments*", stdout="csi-1a2b pvc-data\n", times=3)
    res = run_drain(sb, graph)
    assert res.ok and "every volume detached from dev-worker-1: ready" in res.stderr, res
    assert len(res.called("kubectl", "*get volumeattachments*")) == 4
    assert not res.called("kubectl", "delete *")


def test_volumes_that_stay_attached_stop_the_scale_in_before_the_reset(tmp_path, graph):
    sb = make_sandbox(tmp_path, hostname="dev-cp-0")
    sb.write("etc/kubernetes/admin.conf", ADMIN_CONF)
    sb.stub("kubectl", "*get node dev-worker-1*", stdout="node/dev-worker-1\n")
    sb.stub("kubectl", "*get volumeattachments*", stdout="csi-1a2b pvc-data\n")
    res = run_drain(sb, graph)
    assert res.rc == 1 and "volumes are still attached to dev-worker-1" in res.stderr, res
    assert "csi-1a2b pvc-data" in res.stderr and "was NOT deleted" in res.stderr
    # bounded: the drain's unused time plus the reserve, polled every 2 s (sleep is a stub here)
    assert len(res.called("kubectl", "*get volumeattachments*")) <= (300 + 90) // 2 + 2


STATE_QUERY = ("get node dev-worker-1 --ignore-not-found -o jsonpath={.metadata.name},"
               '{.spec.unschedulable},{.status.conditions[?(@.type=="Ready")].status}')


def run_delete_node(sb: Sandbox, graph):
    return run_delete(sb, graph, "dev-cp-0-join-credentials-dev-worker-1")


@pytest.mark.parametrize("state", ["dev-worker-1,true,True", "dev-worker-1,true,Unknown",
                                   "dev-worker-1,,Unknown"])
def test_scale_in_deletes_the_node_object_last(tmp_path, graph, state):
    sb = make_sandbox(tmp_path, hostname="dev-cp-0")
    sb.write("etc/kubernetes/admin.conf", ADMIN_CONF)
    sb.stub("kubectl", "*get node dev-worker-1*", stdout=state)
    res = run_delete_node(sb, graph)
    assert res.ok, res
    assert [c.args for c in res.called("kubectl")] == [STATE_QUERY, "delete node dev-worker-1 --ignore-not-found"]


def test_delete_node_keeps_a_live_node_and_never_guesses(tmp_path, graph):
    sb = make_sandbox(tmp_path)
    sb.write("etc/kubernetes/admin.conf", ADMIN_CONF)
    # Schedulable and Ready: not drained (its credentials were replaced by hand?): kept.
    sb.stub("kubectl", "*get node dev-worker-1*", stdout="dev-worker-1,,True")
    res = run_delete_node(sb, graph)
    assert res.rc == 1 and "schedulable and Ready" in res.stderr, res
    assert not res.called("kubectl", "delete*")
    sb.stub("kubectl", "*get node dev-worker-1*", stdout="")  # already gone
    res = run_delete_node(sb, graph)
    assert res.ok and "no Node object to delete" in res.stderr and not res.called("kubectl", "delete*"), res
    sb.stub("kubectl", "*get node*", exit=1, stderr="The connection to the server was refused\n")
    res = run_delete_node(sb, graph)
    assert res.rc == 1 and "cannot reach the API" in res.stderr and not res.called("kubectl", "delete*"), res


def test_a_failed_drain_stops_the_scale_in_with_a_clear_message(tmp_path, graph):
    sb = make_sandbox(tmp_path)
    sb.write("etc/kubernetes/admin.conf", ADMIN_CONF)
    sb.stub("kubectl", "*get node dev-worker-1*", stdout="node/dev-worker-1\n")
    sb.stub("kubectl", "*drain dev-worker-1*", exit=1, stderr=(
        'error when evicting pods/"web-0" -n "shop" (will retry after 5s): Cannot evict pod as it would '
        "violate the pod's disruption budget.\nerror: global timeout reached: 5m0s\n"))
    res = run_drain(sb, graph)
    assert res.rc == 1, res
    assert "violate the pod's disruption budget" in res.stderr  # kubectl's own reason is shown
    assert "did not finish within 300s" in res.stderr and "was NOT deleted" in res.stderr
    assert "kubectl uncordon dev-worker-1" in res.stderr
    assert not res.called("kubectl", "*delete node*")


def test_drain_skips_a_node_already_gone_but_never_an_unreachable_api(tmp_path, graph):
    sb = make_sandbox(tmp_path)
    sb.write("etc/kubernetes/admin.conf", ADMIN_CONF)
    res = run_drain(sb, graph)  # kubectl get prints nothing: no such node
    assert res.ok and "nothing to drain" in res.stderr and not res.called("kubectl", "*cordon*"), res
    sb.stub("kubectl", "*get node*", exit=1, stderr="The connection to the server was refused\n")
    res = run_drain(sb, graph)
    assert res.rc == 1 and "cannot reach the API" in res.stderr, res
    assert not res.called("kubectl", "*cordon*") and not res.called("kubectl", "*delete*")


def test_the_join_delete_resets_the_node_once(tmp_path, graph):
    sb = make_sandbox(tmp_path, hostname="dev-worker-1")
    sb.write("etc/kubernetes/kubelet.conf", "apiVersion: v1\n")
    sb.write("etc/cni/net.d/10-calico.conflist", "{}\n")
    sb.stub("kubeadm", "reset *", run='rm -f "$ROOT/etc/kubernetes/kubelet.conf"')
    res = run_delete(sb, graph, "dev-worker-1-kubeadm-join")
    assert res.ok, res
    assert [c.args for c in res.called("kubeadm")] == [f"reset -f --cri-socket {CONTAINERD}"]
    assert not sb.exists("etc/cni/net.d")
    assert [c.args for c in res.called("iptables")] == ["-F", "-t nat -F", "-t mangle -F", "-X"]
    again = run_delete(sb, graph, "dev-worker-1-kubeadm-join")
    assert again.ok and not again.called("kubeadm") and "nothing to reset" in again.stderr


CP_RESET = ("[reset] Reading configuration from the cluster...\n"
            "W0729 14:36:33.882387 reset.go:120] [reset] Unable to fetch the kubeadm-config ConfigMap from "
            'cluster: failed to get node registration: failed to get corresponding node: nodes "dev-cp-2" '
            "not found\n[preflight] Running pre-flight checks\n"
            "W0729 14:36:35.733502 removeetcdmember.go:106] [reset] No kubeadm config, using etcd pod spec "
            "to get data directory\n[reset] Deleted contents of the etcd data directory: /var/lib/etcd\n")


def test_a_control_plane_reset_that_keeps_its_etcd_member_stops_the_scale_in(tmp_path):
    graph = cluster_graph({"controlPlaneCount": 5, "workerCount": 1})
    sb = make_sandbox(tmp_path, hostname="dev-cp-2")
    sb.write("etc/kubernetes/kubelet.conf", "apiVersion: v1\n")
    sb.write("etc/kubernetes/manifests/etcd.yaml", "kind: Pod\n")
    # kubeadm reset only WARNS when it cannot find the member (its Node object is gone).
    sb.stub("kubeadm", "reset *", stdout=CP_RESET, run='rm -rf "$ROOT/etc/kubernetes"')
    res = run_delete(sb, graph, "dev-cp-2-kubeadm-join")
    assert res.rc == 1 and "did NOT remove its etcd member" in res.stderr, res
    assert "member remove" in res.stderr and "Unable to fetch the kubeadm-config" in res.stderr
    # The same warning on a worker (no etcd member) is not an error; a clean control-plane
    # reset neither.
    sb.write("etc/kubernetes/kubelet.conf", "apiVersion: v1\n")
    assert run_delete(sb, graph, "dev-worker-0-kubeadm-join").ok
    sb.write("etc/kubernetes/kubelet.conf", "apiVersion: v1\n")
    sb.write("etc/kubernetes/manifests/etcd.yaml", "kind: Pod\n")
    sb.stub("kubeadm", "reset *", stdout="[reset] Deleted contents of the etcd data directory: /var/lib/etcd\n",
            run='rm -rf "$ROOT/etc/kubernetes"')
    assert run_delete(sb, graph, "dev-cp-2-kubeadm-join").ok



# --- a control plane's Node goes only after etcd stopped listing it (review-node F10) -------

MEMBERS = ("8e9e05c52164694d, started, dev-cp-0, https://10.42.0.11:2380, https://10.42.0.11:2379, false\n"
           "91bc3c398fb3c146, started, dev-cp-2, https://10.42.0.13:2380, https://10.42.0.13:2379, false\n")
STALE = MEMBERS + "fd422379fda50e48, started, dev-cp-1, https://10.42.0.12:2380, https://10.42.0.12:2379, false\n"


@pytest.fixture(scope="module")
def ha_graph():
    return cluster_graph({"controlPlaneCount": 3, "workerCount": 1})


UNSTARTED = MEMBERS + "6e3bd23ae5f1eae0, unstarted, , https://10.42.0.12:2380, , false\n"


@pytest.mark.parametrize("members,exit,deleted,says", [
    (MEMBERS, 0, True, "removed from the cluster"),
    (STALE, 0, False, "etcd still lists a member for dev-cp-1"),
    (UNSTARTED, 0, False, "etcd lists an unstarted member"),  # no name yet: found by its status
    ("", 1, False, "cannot list the etcd members"),
])
def test_a_control_planes_node_is_deleted_only_when_etcd_no_longer_lists_it(tmp_path, ha_graph, members, exit,
                                                                          deleted, says):
    sb = make_sandbox(tmp_path, hostname="dev-cp-0")
    sb.write("etc/kubernetes/admin.conf", ADMIN_CONF)
    sb.stub("kubectl", "*get node dev-cp-1*", stdout="dev-cp-1,true,Unknown")  # drained and reset
    sb.stub("kubectl", "*exec etcd-dev-cp-0 -- etcdctl*member list*", exit=exit, stdout=members,
            stderr="" if exit == 0 else "error: unable to upgrade connection\n")
    res = run_delete(sb, ha_graph, "dev-cp-0-join-credentials-dev-cp-1")
    assert (res.rc == 0) == deleted and says in res.stderr, res
    assert bool(res.called("kubectl", "delete node*")) == deleted
    if not deleted and exit == 0:
        assert "member remove" in res.stderr  # how to fix it by hand


def test_a_workers_node_needs_no_etcd_check(tmp_path, graph):
    sb = make_sandbox(tmp_path)
    sb.write("etc/kubernetes/admin.conf", ADMIN_CONF)
    sb.stub("kubectl", "*get node dev-worker-1*", stdout="dev-worker-1,true,True")
    res = run_delete_node(sb, graph)
    assert res.ok and not res.called("kubectl", "*etcdctl*") and res.called("kubectl", "delete node*"), res
