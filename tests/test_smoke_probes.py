"""The smoke test's probe pods (scripts/smoke_probes.py): valid, least-privileged manifests,
placed beside a kata-app pod, waited for with one deadline."""

from __future__ import annotations

import kubernetes_validate
import pytest
from smoke_fake import ROOT, FakeCluster
from test_kubernetes_program import VALIDATED_MINORS, schema_version
from test_kubernetes_samples import assert_restricted

from components import versions as v
from components.kubernetes import demo
from scripts import smoke_checks as sc
from scripts import smoke_probes as sp

PROBE_MANIFESTS = {
    "namespace": sp.probe_namespace(),
    "caller": sp.caller_probe("k-worker-0"),
    "guard": sp.guard_probe("k-worker-0"),
    "node": sp.node_probe("k-worker-0"),
}


@pytest.mark.parametrize("minor", VALIDATED_MINORS)
@pytest.mark.parametrize("probe", sorted(PROBE_MANIFESTS))
def test_probe_manifests_validate_strictly(probe, minor):
    assert kubernetes_validate.validate(PROBE_MANIFESTS[probe], schema_version(minor), strict=True) == minor


def test_the_caller_probe_is_admitted_in_kata_demo_and_differs_from_the_client_by_its_role_label_only():
    caller = sp.caller_probe("k-worker-0")
    assert caller["metadata"]["namespace"] == demo.NAMESPACE
    assert_restricted("caller", caller["spec"])  # kata-demo enforces Pod Security restricted
    labels = caller["metadata"]["labels"]
    assert demo.CALLER_LABELS.items() <= labels.items()
    assert not demo.CLIENT_LABELS.items() & labels.items()
    assert caller["spec"]["runtimeClassName"] == v.KATA_HANDLER


def test_the_guard_probe_is_a_kata_pod_in_a_namespace_without_policies_and_the_node_probe_sees_the_host():
    guard, node = sp.guard_probe("k-worker-0"), sp.node_probe("k-worker-0")
    assert guard["metadata"]["namespace"] == node["metadata"]["namespace"] == sp.NAMESPACE != demo.NAMESPACE
    assert guard["spec"]["runtimeClassName"] == v.KATA_HANDLER and "hostNetwork" not in guard["spec"]
    assert node["spec"]["hostNetwork"] is True and "runtimeClassName" not in node["spec"]
    (mount,) = node["spec"]["containers"][0]["volumeMounts"]
    assert mount == {"name": "host", "mountPath": "/host", "readOnly": True}
    for pod in (guard, node):  # both beside the same kata-app pod
        assert pod["spec"]["nodeName"] == "k-worker-0"
    sec = node["spec"]["containers"][0]["securityContext"]
    assert not sec.get("privileged") and sec["capabilities"] == {"drop": ["ALL"], "add": ["NET_ADMIN", "SYS_CHROOT"]}
    assert sp.probe_namespace()["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"
    # the guard's table and chain are the ones scripts/remote/node/10-kernel.sh loads
    rules = (ROOT / "tests" / "golden" / "bootstrap-metadata-guard.nft").read_text()
    assert f"table {' '.join(sp.GUARD_TABLE)} {{" in rules and f"chain {sp.GUARD_CHAIN} {{" in rules


def test_a_new_namespace_without_its_service_account_yet_is_waited_for():
    cluster = FakeCluster()
    cluster.sa_missing = 3
    slept: list[float] = []
    res = sp.check_probes(cluster, "k-worker-0", sleep=slept.append)
    assert all(r.ok for r in res), sc.render_table(res)
    assert slept == [1, 1, 1] and cluster.created == {}


def test_the_probes_share_one_deadline():
    cluster, asked = FakeCluster(), []
    now = iter([0.0, 100.0, 350.0, 590.0])
    real_wait = cluster.wait_ready

    def wait(namespace, pod, timeout):
        asked.append(timeout)
        return real_wait(namespace, pod, 600)
    cluster.wait_ready = wait
    sp.check_probes(cluster, "k-worker-0", clock=lambda: next(now))
    assert asked == [500, 250, 10]  # 600 s in all, not 600 s each


@pytest.mark.parametrize("minor", VALIDATED_MINORS)
def test_volume_probe_manifests_validate_strictly(minor):
    from scripts import smoke_volumes as sv

    for m in (sv.namespace(), sv.claim("fs", "Filesystem"), sv.claim("block", "Block"),
              sv.pod(sv.FS_POD, "fs", block=False), sv.pod(sv.BLOCK_POD, "block", block=True)):
        assert kubernetes_validate.validate(m, schema_version(minor), strict=True) == minor, m["kind"]
