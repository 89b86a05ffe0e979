"""scripts/remote/cluster/cloud-cleanup.sh run for real in the stub sandbox: the destroy
guard's create (arm) and delete (release), through the exact text the program declares."""

from __future__ import annotations

import pytest
from harness import run_program
from test_cluster_scale_in import run_delete
from test_cluster_scripts import ADMIN_CONF, make_sandbox

from components.kubernetes.cleanup import CleanupParams

GUARD = "dev-cp-0-cloud-cleanup"
LIST = "*get services --all-namespaces*"
PVS = "*get persistentvolumes*"
VOLUMES = ("pvc-1 Delete 5e0c-vol demo/data\npvc-2 Retain 77aa-vol demo/keep\n")
TWO = "demo/web\nshop/api\n"


@pytest.fixture(scope="module")
def graph():
    return run_program({"workerCount": 1})


def sandbox(tmp_path):
    sb = make_sandbox(tmp_path, hostname="dev-cp-0")
    sb.write("etc/kubernetes/admin.conf", ADMIN_CONF)
    return sb


def params(mode: str, timeout: int = 10, *, csi: bool = False, delete_volumes: bool = False) -> CleanupParams:
    return CleanupParams(mode=mode, cloud_cluster_name="dev-0badc0de", lb_timeout=timeout, volume_timeout=timeout,
                         resource=GUARD, cinder_csi=csi, delete_volumes=delete_volumes,
                         csi_driver="cinder.csi.openstack.org")


def test_arming_changes_nothing_and_needs_the_first_control_plane(tmp_path):
    sb = make_sandbox(tmp_path)
    res = sb.run("cluster/cloud-cleanup.sh", params("arm"))
    assert res.rc == 1 and "not the first control plane" in res.stderr, res
    sb.write("etc/kubernetes/admin.conf", ADMIN_CONF)
    for _ in range(2):
        res = sb.run("cluster/cloud-cleanup.sh", params("arm"))
        assert res.ok and res.changing() == [] and not res.called("kubectl"), res


def test_release_deletes_every_load_balancer_service_and_waits_until_they_are_gone(tmp_path, graph):
    sb = sandbox(tmp_path)
    sb.stub("kubectl", LIST, stdout="")  # once the controller has removed them
    sb.stub("kubectl", LIST, stdout=TWO, times=3)  # the list, then two probes while they go
    sb.stub("kubectl", PVS, stdout="")  # Cinder CSI is on by default: no volume here
    res = run_delete(sb, graph, GUARD)
    assert res.ok, res
    deleted = [c.args for c in res.called("kubectl", "*delete service*")]
    assert deleted == ["--request-timeout=30s delete service --namespace demo web --ignore-not-found --wait=false",
                       "--request-timeout=30s delete service --namespace shop api --ignore-not-found --wait=false"]
    assert "every LoadBalancer Service and its load balancer gone: ready" in res.stderr
    # the filter keeps type LoadBalancer only (jsonpath on the API's own list)
    (first, *_) = res.called("kubectl", LIST)
    assert '?(@.spec.type=="LoadBalancer")' in first.args
    # a second run (a retried destroy) finds nothing left and deletes nothing
    res = run_delete(sb, graph, GUARD)
    assert res.ok and "nothing to release" in res.stderr and not res.called("kubectl", "*delete*"), res


def test_a_release_that_does_not_finish_stops_the_destroy_and_names_what_is_left(tmp_path):
    sb = sandbox(tmp_path)
    sb.stub("kubectl", LIST, stdout=TWO)
    res = sb.run("cluster/cloud-cleanup.sh", params("release", timeout=10))
    assert res.rc == 1, res
    assert "after 10s these LoadBalancer Services are still being deleted: demo/web shop/api" in res.stderr
    assert "kube_service_dev-0badc0de_demo_web kube_service_dev-0badc0de_shop_api" in res.stderr
    assert len(res.called("kubectl", LIST)) <= 8, "the wait is bounded"


def test_an_unreachable_api_deletes_nothing_and_says_what_to_do(tmp_path):
    sb = sandbox(tmp_path)
    sb.stub("kubectl", LIST, exit=1, stderr="The connection to the server was refused")
    res = sb.run("cluster/cloud-cleanup.sh", params("release"))
    assert res.rc == 1 and not res.called("kubectl", "*delete*"), res
    assert "cannot reach the Kubernetes API" in res.stderr
    assert f"pulumi state delete' this command ({GUARD})" in res.stderr
    assert len(res.called("kubectl", LIST)) == 5  # retried, bounded


def test_by_default_volumes_stay_and_are_listed(tmp_path):
    sb = sandbox(tmp_path)
    sb.stub("kubectl", LIST, stdout="")
    sb.stub("kubectl", PVS, stdout=VOLUMES)
    res = sb.run("cluster/cloud-cleanup.sh", params("release", csi=True))
    assert res.ok and not res.called("kubectl", "*delete*"), res
    assert "stay (deleteVolumesOnDestroy is false)" in res.stderr and "5e0c-vol" in res.stderr
    assert 'driver=="cinder.csi.openstack.org"' in res.called("kubectl", PVS)[0].args


def test_delete_volumes_on_destroy_deletes_the_claims_and_their_pods_then_waits(tmp_path):
    sb = sandbox(tmp_path)
    sb.stub("kubectl", LIST, stdout="")
    sb.stub("kubectl", PVS, stdout="pvc-2 Retain 77aa-vol demo/keep\n")  # Retain stays: not waited for
    sb.stub("kubectl", PVS, stdout=VOLUMES, times=2)
    sb.stub("kubectl", "*get pods --all-namespaces*",
            stdout='demo/db-0 data\ndemo/web-1 \ndemo/scratch-2 {"volumeClaimTemplate":{}}\n')
    for _ in range(2):
        res = sb.run("cluster/cloud-cleanup.sh", params("release", csi=True, delete_volumes=True))
        assert res.ok, res
    first = [c.args for c in sb.run("cluster/cloud-cleanup.sh", params(
        "release", csi=True, delete_volumes=True)).calls if c.name == "kubectl"]
    deleting = next(i for i, a in enumerate(first) if "delete persistentvolumeclaims" in a)
    assert "delete persistentvolumeclaims --all --all-namespaces --wait=false" in first[deleting]
    # cordoned before: no StatefulSet pod (and claim, and volume) comes back (review finding 3)
    assert any("cordon --selector kubernetes.io/os=linux" in a for a in first[:deleting])
    assert "stay (reclaim policy Retain)" in res.stderr and "77aa-vol" in res.stderr
    assert any("delete pod --namespace demo db-0" in a for a in first)
    assert any("delete pod --namespace demo scratch-2" in a for a in first), "a generic ephemeral volume too"
    assert not any("web-1" in a and "delete" in a for a in first), "a pod without a claim stays"


def test_volumes_that_do_not_go_stop_the_destroy(tmp_path):
    sb = sandbox(tmp_path)
    sb.stub("kubectl", LIST, stdout="")
    sb.stub("kubectl", PVS, stdout=VOLUMES)
    sb.stub("kubectl", "*get pods --all-namespaces*", stdout="")
    res = sb.run("cluster/cloud-cleanup.sh", params("release", csi=True, delete_volumes=True))
    assert res.rc == 1 and "not deleted yet" in res.stderr and "5e0c-vol" in res.stderr, res


# --- cloud-ready.sh: every node initialized by the cloud controller --------------------------

NODES = "*get nodes -o jsonpath=*"
TAINT = "node.cloudprovider.kubernetes.io/uninitialized"


def test_initialized_waits_until_no_node_carries_the_taint(tmp_path, graph):
    sb = sandbox(tmp_path)
    sb.stub("kubectl", NODES, stdout="dev-cp-0 node-role.kubernetes.io/control-plane\ndev-worker-0 \n")
    sb.stub("kubectl", NODES, stdout=f"dev-cp-0 node-role.kubernetes.io/control-plane {TAINT}\n"
            f"dev-worker-0 {TAINT}\n", times=2)
    cmd = graph.named("dev-cp-0-cloud-initialized").plain("create")
    for _ in range(2):
        res = sb.run_command(cmd)
        assert res.ok and "every node initialized by the cloud controller: ready" in res.stderr, res
        assert all(c.args.split()[1] == "get" for c in res.called("kubectl")), "it only reads"


def test_initialized_times_out_with_the_nodes_and_the_controllers_logs(tmp_path):
    from components.kubernetes.cloud_controller import InitializedParams

    sb = sandbox(tmp_path)
    sb.stub("kubectl", NODES, stdout=f"dev-cp-0 {TAINT}\ndev-worker-0 \n")
    sb.stub("kubectl", "*logs daemonset/openstack-cloud-controller-manager*",
            stdout="E1203 Authentication failed\nE1203 retrying\n")
    res = sb.run("cluster/cloud-ready.sh", InitializedParams(uninitialized_taint=TAINT, init_timeout=10,
                                                              controller="openstack-cloud-controller-manager"))
    assert res.rc == 1, res
    assert "has not initialized: dev-cp-0." in res.stderr and "Authentication failed | E1203 retrying" in res.stderr
    assert len(res.called("kubectl", NODES)) <= 8
