"""The smoke test's checks against fake clusters: a healthy one passes, each way of being
broken fails exactly the right checks, and every check fails in at least one of them."""

from __future__ import annotations

import http.client
import json
from collections.abc import Callable

import pytest
from smoke_fake import (
    ALL_CHECKS,
    CLIENT_POD,
    FAR_URL,
    HOST_KERNEL,
    FakeCluster,
    fake_nft,
    fake_node,
    fake_pod,
    fake_tigerastatus,
)

from components import versions as v
from components.kubernetes import demo
from scripts import smoke_checks as sc
from scripts import smoke_metrics as sm
from scripts import smoke_probes as sp
from scripts import smoke_public as spub
from scripts import smoke_volumes as sv
from scripts.smoke_client import METADATA_URL


def test_a_healthy_cluster_passes_every_check_and_leaves_no_probe_behind():
    cluster = FakeCluster()
    res = sc.run_checks(cluster)
    assert all(r.ok and not r.skipped for r in res), sc.render_table(res)
    assert {r.check for r in res} == ALL_CHECKS
    assert ("kata-app-1", ("uname", "-r")) in cluster.execs and ("kata-app-2", ("uname", "-r")) in cluster.execs
    assert cluster.created == {}, "a probe outlived the run"
    # the guard's counters are shown, and the probes ran beside a kata-app pod
    (guard,) = [r for r in res if r.check == sp.GUARD_DROPPED]
    assert guard.detail == "k-worker-0: forward drops 41 -> 44"


def test_leftovers_of_an_interrupted_run_are_deleted_before_the_probes_start():
    cluster = FakeCluster()
    cluster.created[("", sp.NAMESPACE)] = sp.probe_namespace()
    cluster.created[(demo.NAMESPACE, sp.CALLER)] = sp.caller_probe("k-worker-0")
    res = sc.run_checks(cluster)
    assert all(r.ok for r in res), sc.render_table(res)
    assert cluster.deleted[:2] == [("pod", sp.CALLER, True), ("namespace", sp.NAMESPACE, True)]


def _set(path: Callable[[FakeCluster], dict], key, value) -> Callable[[FakeCluster], None]:
    return lambda c: path(c).__setitem__(key, value)


def _move_pod(index: int, node: str) -> Callable[[FakeCluster], None]:
    return lambda c: c.pods[index]["spec"].__setitem__("nodeName", node)


KATA_CLASS, KATA_KERNEL = "kata pods run with the RuntimeClass", "kata pod kernel differs from its node's"
SERVICE, TWIN_DENY = "service answers the allowed client", "default-deny egress holds for the runc twin"
TWIN, TWIN_KERNEL = "runc twin runs without a RuntimeClass", "runc pod kernel matches its node's"
PROBE_CHECKS = set(sp.CHECKS)

# breakage -> (how, the exact set of checks that must fail)
BREAKAGES: dict[str, tuple[Callable[[FakeCluster], None], set[str]]] = {
    "metrics-server cannot scrape a node (its serving certificate unapproved)": (
        lambda c: c.unreported.add("k-worker-1"), {sm.NODES}),
    "the metrics API fails (registered, unavailable)": (
        lambda c: setattr(c, "metrics_error", "Error from server (ServiceUnavailable): the server is currently "
                                              "unable to handle the request"), set(sm.CHECKS)),
    "node not ready": (
        lambda c: c.nodes.__setitem__(2, fake_node("k-worker-1", ready=False)),
        # worker-1 is no longer eligible: one node left, so the spread checks are skipped
        {"all nodes Ready"},
    ),
    "a node without the kata label": (
        lambda c: c.nodes[0]["metadata"]["labels"].pop(v.KATA_NODE_LABEL),
        {"kata label on every node"},
    ),
    "no kata label anywhere": (
        lambda c: [n["metadata"]["labels"].pop(v.KATA_NODE_LABEL) for n in c.nodes],
        {"kata label on every node", KATA_CLASS},  # and no eligible node: spread skipped
    ),
    "calico degraded": (
        lambda c: c.tigerastatus.__setitem__(0, fake_tigerastatus("calico", "False", "True")),
        {"Calico reports Available"},
    ),
    "no tigerastatus at all": (lambda c: c.tigerastatus.clear(), {"Calico reports Available"}),
    "handler renamed": (
        _set(lambda c: c.objects[("runtimeclass", "kata")], "handler", "runc"),
        {"RuntimeClass kata"},
    ),
    "runtime class missing": (lambda c: c.objects.pop(("runtimeclass", "kata")), {"pods"}),
    # the fake then runs the pod with runc, so its kernel is the host's too
    "kata pod without class": (
        lambda c: c.pods[0]["spec"].pop("runtimeClassName"),
        {KATA_CLASS, KATA_KERNEL},
    ),
    "kata pod pending": (
        _set(lambda c: c.pods[1]["status"], "phase", "Pending"),
        {KATA_CLASS, sc.SPREAD},  # one running kata-app pod is not a spread
    ),
    # kata-app-2, the pod behind the load balancer's answer, is gone too
    "one kata pod short": (lambda c: c.pods.pop(1), {KATA_CLASS, SERVICE, sc.SPREAD, spub.ANSWERS}),
    "twin with class": (_set(lambda c: c.pods[2]["spec"], "runtimeClassName", "kata"), {TWIN, TWIN_KERNEL}),
    "kata deployment scaled to zero": (
        lambda c: [c.pods.pop(0), c.pods.pop(0), c.objects[("deployment", demo.KATA_APP)]["spec"].update(replicas=0)],
        # nothing to probe from or beside: fails, never skipped
        {KATA_CLASS, KATA_KERNEL, SERVICE, sc.SPREAD, sc.CROSS_NODE, *PROBE_CHECKS, spub.ANSWERS},
    ),
    "kata shares the host kernel": (lambda c: setattr(c, "guest_kernel", HOST_KERNEL), {KATA_KERNEL}),
    "client blocked": (
        _set(lambda c: c.curl, (CLIENT_POD, sc.SERVICE_URL), sc.ExecResult(28, "", "timeout")),
        {SERVICE},
    ),
    "answer from a runc pod": (
        _set(lambda c: c.curl, (CLIENT_POD, sc.SERVICE_URL), sc.ExecResult(0, "runc-app-1", "")),
        {SERVICE},
    ),
    "twin egress open": (
        _set(lambda c: c.curl, ("runc-app-1", sc.SERVICE_URL), sc.ExecResult(0, "kata-app-1", "")),
        {TWIN_DENY},
    ),
    "twin refused instead of dropped": (
        _set(lambda c: c.curl, ("runc-app-1", sc.SERVICE_URL), sc.ExecResult(7, "", "refused")),
        {TWIN_DENY},
    ),
    "kata-app pods on one node": (
        lambda c: [_move_pod(0, "k-worker-1")(c)],
        {sc.SPREAD, sc.CROSS_NODE},  # and the client shares that node: no cross-node path
    ),
    "mtu black hole between nodes": (
        _set(lambda c: c.curl, (CLIENT_POD, FAR_URL), sc.ExecResult(28, "", "timeout")),
        {sc.CROSS_NODE},
    ),
    "payload truncated": (
        _set(lambda c: c.curl, (CLIENT_POD, FAR_URL), sc.ExecResult(0, sc.PAYLOAD[:1400], "")),
        {sc.CROSS_NODE},
    ),
    "kata-app ingress rule missing": (
        _set(lambda c: c.curl, (sp.CALLER, sc.SERVICE_URL), sc.ExecResult(0, "kata-app-1", "")),
        {sp.REFUSED},
    ),
    "metadata down on the node": (
        _set(lambda c: c.curl, (sp.NODE, METADATA_URL), sc.ExecResult(7, "", "refused")),
        {sp.NODE_ANSWERS},
    ),
    "guard missing": (lambda c: setattr(c, "guard_loaded", False), {sp.POD_BLOCKED, sp.GUARD_DROPPED}),
    # a timeout from a pod with no network at all proves nothing
    "guard probe without a network": (lambda c: setattr(c, "guard_network", False),
                                      {sp.POD_BLOCKED, sp.GUARD_DROPPED}),
    "service account never appears": (lambda c: setattr(c, "sa_missing", 10 ** 6), PROBE_CHECKS),
    "blocked, but not by the guard": (lambda c: setattr(c, "guard_counts", False), {sp.GUARD_DROPPED}),
    "probe pod never ready": (lambda c: c.never_ready.add(sp.GUARD), PROBE_CHECKS),
    "probes refused by admission": (lambda c: setattr(c, "refuse_create", "admission webhook denied"),
                                    {*PROBE_CHECKS, *sv.CHECKS}),
    # Cinder volumes in Kata pods (scripts/smoke_volumes.py)
    "filesystem volume not writable": (
        _set(lambda c: c.volume_exec, sv.FS_POD, sc.ExecResult(1, "", "sh: can't create /data/probe: Read-only")),
        {sv.FILESYSTEM}),
    "block device missing in the guest": (
        _set(lambda c: c.volume_exec, sv.BLOCK_POD, sc.ExecResult(1, "", "")), {sv.BLOCK}),
    "volume never attached": (lambda c: c.never_ready.add(sv.BLOCK_POD), {sv.BLOCK}),
    # the sample load balancer (scripts/smoke_public.py)
    "load balancer without an address": (
        lambda c: c.objects[("service", demo.PUBLIC_SERVICE)].update(status={"loadBalancer": {}}), {spub.ANSWERS}),
    "load balancer unreachable": (lambda c: setattr(c, "public_answer", OSError("timed out")), {spub.ANSWERS}),
    "load balancer answers from a runc pod": (lambda c: setattr(c, "public_answer", "runc-app-1"), {spub.ANSWERS}),
    "load balancer speaks no HTTP": (
        lambda c: setattr(c, "public_answer", http.client.BadStatusLine("garbage")), {spub.ANSWERS}),
}


def test_every_check_fails_in_at_least_one_breakage():
    """No always-true check (review-k8s K5c): each one has a breakage below that fails it."""
    failing = set().union(*(expected for _, expected in BREAKAGES.values()))
    assert ALL_CHECKS <= failing, ALL_CHECKS - failing


@pytest.fixture(autouse=True)
def _no_real_sleep(monkeypatch):
    monkeypatch.setattr(sp.time, "sleep", lambda s: None)


@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_each_breakage_fails_exactly_the_checks_it_should(breakage):
    cluster = FakeCluster()
    mutate, expected = BREAKAGES[breakage]
    mutate(cluster)
    res = sc.run_checks(cluster)
    assert {r.check for r in res if not r.ok} == expected, sc.render_table(res)
    assert cluster.created == {}, "a probe outlived the run"


@pytest.mark.parametrize("how", ["one worker", "second worker tainted", "second worker cordoned"])
def test_with_one_eligible_node_the_cross_node_checks_are_skipped_not_passed(how):
    cluster = FakeCluster()
    if how == "one worker":
        cluster.nodes.pop(2)
        cluster.pods = [p for p in cluster.pods if p["spec"]["nodeName"] != "k-worker-1"]
        cluster.pods.append(fake_pod(CLIENT_POD, demo.CLIENT, "k-worker-0", v.KATA_HANDLER, "10.244.1.9"))
        cluster.pods.append(fake_pod("kata-app-2", demo.KATA_APP, "k-worker-0", v.KATA_HANDLER, "10.244.1.7"))
        cluster.pods.append(fake_pod("runc-app-2", demo.RUNC_APP, "k-worker-0", None, "10.244.1.8"))
        cluster.curl[(CLIENT_POD, sc.SERVICE_URL)] = sc.ExecResult(0, "kata-app-2", "")
    elif how == "second worker tainted":
        cluster.nodes[2]["spec"]["taints"] = [{"key": "gpu", "value": "true", "effect": "NoSchedule"}]
    else:
        cluster.nodes[2]["spec"]["unschedulable"] = True
    res = sc.run_checks(cluster)
    skipped = {r.check for r in res if r.skipped}
    assert skipped == {sc.SPREAD, sc.CROSS_NODE} and all(r.ok for r in res), sc.render_table(res)
    assert "one node can run kata-app" in next(r for r in res if r.skipped).detail
    assert sc.render_table(res).endswith(f"{len(ALL_CHECKS) - 1} passed, 0 failed, 2 skipped")


def test_a_toleration_makes_a_tainted_node_eligible():
    cluster = FakeCluster()
    for n in cluster.nodes[1:]:
        n["spec"]["taints"] = [{"key": v.KATA_TAINT.key, "value": v.KATA_TAINT.value, "effect": "NoSchedule"}]
    pod = cluster.pods[0]
    assert sc.eligible_nodes({sc.name(n): n for n in cluster.nodes}, pod) == []
    pod["spec"]["tolerations"] = [{"key": v.KATA_TAINT.key, "operator": "Equal", "value": "true",
                                   "effect": "NoSchedule"}]
    assert sc.eligible_nodes({sc.name(n): n for n in cluster.nodes}, pod) == ["k-worker-0", "k-worker-1"]


def test_guard_drops_reads_the_forward_chain_of_nft_json_only():
    assert sp.guard_drops(fake_nft(7)) == 7  # the output chain's 1000 (the node's own) is not counted
    for bad in ("", "{}", json.dumps({"nftables": [{"table": {}}]})):
        with pytest.raises(ValueError):
            sp.guard_drops(bad)


def test_table_and_exit_status():
    res = [sc.Result("a check", True, "fine"), sc.Result("another check", False, "broken"),
           sc.Result("a third", True, "one node", skipped=True)]
    text = sc.render_table(res)
    assert text.splitlines() == [
        "CHECK          RESULT  DETAIL",
        "a check        PASS    fine",
        "another check  FAIL    broken",
        "a third        SKIP    one node",
        "1 passed, 1 failed, 1 skipped",
    ]


def test_volume_probes_are_skipped_without_a_default_class_and_clean_up_after_themselves():
    cluster = FakeCluster()
    res = {r.check: r for r in sc.run_checks(cluster)}
    assert res[sv.FILESYSTEM].ok and "virtiofs" in res[sv.FILESYSTEM].detail
    assert not [k for k in cluster.created if k[0] == sv.NAMESPACE], "the probe namespace is deleted"
    claims = [m for m in [sv.claim("fs", "Filesystem"), sv.claim("block", "Block")]]
    assert all("storageClassName" not in c["spec"] for c in claims), "the default class is what is probed"
    del cluster.objects[("storageclass", v.DEFAULT_STORAGE_CLASS)]
    res = {r.check: r for r in sc.run_checks(cluster)}
    assert res[sv.FILESYSTEM].skipped and res[sv.BLOCK].skipped and "cinderCsi false" in res[sv.BLOCK].detail



def test_the_load_balancer_check_fetches_its_address_and_skips_without_it():
    cluster = FakeCluster()
    res = {r.check: r for r in sc.run_checks(cluster)}
    assert res[spub.ANSWERS].ok and cluster.fetched == [f"http://203.0.113.80:{demo.PUBLIC_PORT}/hostname"]
    del cluster.objects[("service", demo.PUBLIC_SERVICE)]
    res = {r.check: r for r in sc.run_checks(cluster)}
    assert res[spub.ANSWERS].skipped and "sampleLoadBalancer false" in res[spub.ANSWERS].detail


def test_an_api_error_on_the_load_balancer_is_a_failure_not_a_skip(monkeypatch):
    cluster = FakeCluster()

    def refuse(kind, name, namespace=None):
        raise sc.ClientError('services "kata-app-public" is forbidden: User cannot get resource')

    monkeypatch.setattr(cluster, "get", refuse)
    (res,) = spub.check_load_balancer(cluster, ["kata-app-1"])
    assert not res.ok and not res.skipped and "forbidden" in res.detail


# --- metrics-server (scripts/smoke_metrics.py) ---------------------------------------------------


def test_metrics_report_every_node_and_sample_pod():
    cluster = FakeCluster()
    res = {r.check: r for r in sc.run_checks(cluster)}
    assert res[sm.NODES].ok and res[sm.NODES].detail == "3 nodes report CPU and memory"
    assert res[sm.RUNC_PODS].ok and res[sm.KATA_PODS].ok and not res[sm.KATA_PODS].skipped
    assert cluster.metrics_lists == 2, "all reported at once: no retry"


def _pods(cluster, *names):
    return [p for p in cluster.pods if p["metadata"]["name"] in names]


def _nodes(cluster, runtime="containerd://2.1.4"):
    nodes = {n["metadata"]["name"]: n for n in cluster.nodes}
    for n in nodes.values():
        n["status"]["nodeInfo"]["containerRuntimeVersion"] = runtime
    return nodes


def test_a_node_metrics_server_cannot_scrape_fails_after_the_retries(monkeypatch):
    slept = []
    monkeypatch.setattr(sm.time, "sleep", slept.append)
    cluster = FakeCluster()
    cluster.unreported = {"k-worker-1", "runc-app-2"}
    (nodes, runc, _) = sm.check_metrics(cluster, _nodes(cluster), _pods(cluster, "kata-app-1"),
                                        _pods(cluster, "runc-app-1", "runc-app-2"))
    assert not nodes.ok and "missing: k-worker-1" in nodes.detail and "kubectl get csr" in nodes.detail
    assert not runc.ok and "runc-app-2" in runc.detail
    assert slept == [sm.PAUSE_SECONDS] * (sm.ATTEMPTS - 1)


def test_kata_pods_without_metrics_are_a_skip_naming_the_runtime_and_cri_o_is_not_waited_for(monkeypatch):
    slept = []
    monkeypatch.setattr(sm.time, "sleep", slept.append)
    cluster = FakeCluster()
    cluster.unreported = {"kata-app-1"}
    kata, runc = _pods(cluster, "kata-app-1"), _pods(cluster, "runc-app-1")
    res = {r.check: r for r in sm.check_metrics(cluster, _nodes(cluster, "cri-o://1.36.2"), kata, runc)}
    assert res[sm.KATA_PODS].skipped and "kata-app-1 (cri-o)" in res[sm.KATA_PODS].detail
    assert res[sm.NODES].ok and res[sm.RUNC_PODS].ok and slept == [], "a CRI-O Kata gap is not waited for"
    res = {r.check: r for r in sm.check_metrics(cluster, _nodes(cluster), kata, runc)}
    assert res[sm.KATA_PODS].skipped and "kata-app-1 (containerd)" in res[sm.KATA_PODS].detail
    assert len(slept) == sm.ATTEMPTS - 1, "under containerd it is waited for"


def test_a_transient_api_error_is_retried():
    cluster = FakeCluster()
    calls = []
    real = cluster._metrics

    def flaky(kind, namespace):
        calls.append(kind)
        if len(calls) == 1:
            raise sc.ClientError("Error from server (ServiceUnavailable): the server is currently unable")
        return real(kind, namespace)

    cluster._metrics = flaky
    res = sm.check_metrics(cluster, _nodes(cluster), _pods(cluster, "kata-app-1"), _pods(cluster, "runc-app-1"))
    assert all(r.ok and not r.skipped for r in res), res


def test_without_the_metrics_api_the_checks_skip_and_a_failing_one_fails():
    """Review of c4d4b20, finding 2: a registered but broken metrics API is no SKIP."""
    cluster = FakeCluster()
    del cluster.objects[("apiservice", sm.METRICS_API)]
    res = sm.check_metrics(cluster, _nodes(cluster), [], _pods(cluster, "runc-app-1"))
    assert all(r.skipped and "metricsServer false" in r.detail for r in res)
    cluster = FakeCluster()
    cluster.metrics_error = 'error: the server doesn\'t have a resource type "nodes"'
    res = sm.check_metrics(cluster, _nodes(cluster), [], _pods(cluster, "runc-app-1"))
    assert all(not r.ok and not r.skipped and "resource type" in r.detail for r in res)
    # an APIService the client may not read is no "metricsServer false" either
    cluster = FakeCluster()

    def forbidden(kind, name, namespace=None):
        raise sc.ClientError('apiservices.apiregistration.k8s.io "v1beta1.metrics.k8s.io" is forbidden')

    cluster.get = forbidden
    res = sm.check_metrics(cluster, _nodes(cluster), [], _pods(cluster, "runc-app-1"))
    assert all(not r.ok and not r.skipped and "forbidden" in r.detail for r in res)
