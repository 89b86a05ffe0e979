"""metrics-server with kubelet serving certificates (issue #17 §4): serverTLSBootstrap at init,
kubelet-csr-approver, metrics-server without --kubelet-insecure-tls, their order, the kubelet
rules of the firewall, and what a deployed stack fixes. The whole program runs under the
mocks (harness.run_program)."""

from __future__ import annotations

import re

import pytest
import yaml
from harness import UNREADABLE, run_program, unsecret

from components import naming
from components import versions as v
from components.config import ConfigError, parse_config
from components.deployed import DeployedState, refusals
from components.kubernetes import metrics
from components.kubernetes.cloud_controller import UNINITIALIZED_TAINT

RELEASE = "kubernetes:helm.sh/v3:Release"
RULE = "openstack:networking/secGroupRule:SecGroupRule"
BASE = {"controlPlaneFlavor": "f", "workerFlavor": "f", "externalNetwork": "public",
        "allowedCidrs": ["203.0.113.0/24"]}
# What a stack deployed before katak8s managed metrics-server recorded (no kubeletServingCertificates).
LEGACY = {"kubernetesVersion": v.KUBERNETES_PATCHES["1.36"], "containerRuntime": "containerd",
          "controlPlanePrivateIps": ["10.42.0.10"], "workerPrivateIps": ["10.42.0.11"], "jumpHost": "dedicated",
          "cloudProvider": True, "cloudClusterName": "dev-0badc0de", "defaultStorageClass": "cinder"}


def _cfg(**raw):
    return parse_config({**BASE, **raw}, stack="dev")


def _kubelet(g) -> dict:
    docs = {d["kind"]: d for d in yaml.safe_load_all(g.named("dev-cp-0-kubeadm-init").plain("stdin"))}
    return docs["KubeletConfiguration"]


def _release(g, chart):
    found = [r for r in g.of_type(RELEASE) if r.plain("chart") == chart]
    return found[0] if found else None


def _kubelet_sources(g) -> set[str]:
    """The names of the rules that admit the kubelet port: network-<target>-tcp-10250-from-<source>."""
    return {r.name for r in g.of_type(RULE) if f"tcp-{v.KUBELET_PORT}-" in r.name}


@pytest.fixture(scope="module")
def graph():
    return run_program({"workerCount": 2})


# --- a new stack ----------------------------------------------------------------------------


def test_kubelets_ask_the_cluster_ca_for_their_serving_certificates(graph):
    """Set once, in the KubeletConfiguration kubeadm init uploads (kubelet-config): joins and
    upgrades read it there, so the join configurations carry nothing of it."""
    assert _kubelet(graph)["serverTLSBootstrap"] is True
    join = unsecret(graph.named("dev-worker-0-kubeadm-join").inputs["stdin"])
    assert "serverTLSBootstrap" not in join
    assert graph.exports["kubeletServingCertificates"].value is True


def test_metrics_server_verifies_the_kubelets(graph):
    rel = _release(graph, v.METRICS_SERVER_CHART)
    assert (rel.plain("version"), rel.plain("repositoryOpts")["repo"]) == (
        v.METRICS_SERVER_CHART_VERSION, v.METRICS_SERVER_CHART_REPO)
    values = rel.plain("values")
    assert "insecure" not in yaml.safe_dump(values)  # neither --kubelet-insecure-tls nor a way to it
    assert "args" not in values and "defaultArgs" not in values  # the chart's: InternalIP first
    assert values["replicas"] == 2
    assert values["podDisruptionBudget"]["enabled"] is False  # one control plane here


def test_the_approver_admits_only_katak8s_nodes_and_their_addresses(graph):
    rel = _release(graph, v.CSR_APPROVER_CHART)
    assert (rel.plain("version"), rel.plain("repositoryOpts")["repo"]) == (
        v.CSR_APPROVER_CHART_VERSION, v.CSR_APPROVER_CHART_REPO)
    values = rel.plain("values")
    # the node subnet, and cp-0's floating IP (a single control plane's API address), which
    # the cloud controller reports as an ExternalIP the kubelet puts in its next CSR
    assert values["providerIpPrefixes"] == ["10.42.0.0/24", "<floating IP of dev-cp-0-fip>/32"]
    assert values["bypassDnsResolution"] is True
    pattern = re.compile(values["providerRegex"])  # RE2 and Python agree on this subset
    for role in (naming.CONTROL_PLANE, naming.WORKER):
        for i in (0, 7, 12):
            assert pattern.match(naming.node_name("dev", role, i))
    for other in ("dev-jump-host", "devx-cp-0", "dev-cp-", "dev-cp-0.evil", "prod-worker-1", "dev-worker-1a"):
        assert not pattern.match(other), other
    assert ": " not in values["providerRegex"] and " #" not in values["providerRegex"]  # rendered unquoted
    # on the control planes, before the cloud controller initialized them
    assert values["nodeSelector"] == {v.CONTROL_PLANE_ROLE: ""}
    assert {t["key"] for t in values["tolerations"]} == {v.CONTROL_PLANE_ROLE, UNINITIALIZED_TAINT}


def test_every_node_floating_ip_is_an_address_a_kubelet_may_claim():
    g = run_program({"workerCount": 2, "floatingIpPerNode": True})
    prefixes = _release(g, v.CSR_APPROVER_CHART).plain("values")["providerIpPrefixes"]
    assert prefixes[0] == "10.42.0.0/24"
    assert sorted(prefixes[1:]) == sorted(f"<floating IP of {n}-fip>/32"
                                          for n in ("dev-cp-0", "dev-worker-0", "dev-worker-1"))


def test_order_approver_and_metrics_server_beside_the_cloud_controller(graph):
    approver, server = _release(graph, v.CSR_APPROVER_CHART), _release(graph, v.METRICS_SERVER_CHART)
    operator = _release(graph, "tigera-operator")
    installation = graph.of_type("kubernetes:operator.tigera.io/v1:Installation")[0]
    initialized = graph.named("dev-cp-0-cloud-initialized")
    # the approver must not wait for the Installation: calico-kube-controllers waits for the
    # cloud controller, and until the approver runs no kubelet serves TLS
    assert graph.depends_on(approver, operator) and not graph.depends_on(approver, installation)
    # metrics-server neither: it starts beside the cloud controller (the modeled critical path)
    assert graph.depends_on(server, approver) and not graph.depends_on(server, initialized)
    assert not graph.depends_on(server, installation)
    tolerated = {t["key"] for t in server.plain("values")["tolerations"]}
    assert tolerated == {v.CONTROL_PLANE_ROLE, UNINITIALIZED_TAINT}  # never the kata taint


def test_no_worker_reaches_a_kubelet_metrics_server_scrapes_from_the_control_planes(graph):
    """metrics-server runs on the control planes, so the API server's kubelet rule serves it
    too, and no pod on a worker (Kata's included) gains a path to any kubelet (review of
    c4d4b20, finding 6)."""
    cp, w, port = naming.CONTROL_PLANE, naming.WORKER, v.KUBELET_PORT
    expected = {f"network-{t}-tcp-{port}-from-{cp}" for t in (cp, w)}
    assert _kubelet_sources(graph) == expected
    assert _kubelet_sources(run_program({"workerCount": 2, "metricsServer": False})) == expected
    values = _release(graph, v.METRICS_SERVER_CHART).plain("values")
    assert values["nodeSelector"] == {v.CONTROL_PLANE_ROLE: ""}


def test_budget_only_with_two_control_planes_to_run_on():
    one = metrics.metrics_values(_cfg(workerCount=3))
    assert one["podDisruptionBudget"]["enabled"] is False  # one control plane: a budget would stall its drain
    three = metrics.metrics_values(_cfg(controlPlaneCount=3, workerCount=0))
    assert three["podDisruptionBudget"] == {"enabled": True, "maxUnavailable": 1,
                                            "unhealthyPodEvictionPolicy": "AlwaysAllow"}
    assert v.KATA_TAINT.key not in {t["key"] for t in three["tolerations"]}  # no pod beside Kata's


def test_metrics_server_off_installs_neither_and_keeps_kubeadm_as_before():
    g = run_program({"workerCount": 1, "metricsServer": False})
    assert "serverTLSBootstrap" not in _kubelet(g)
    assert not _release(g, v.METRICS_SERVER_CHART) and not _release(g, v.CSR_APPROVER_CHART)
    assert g.exports["kubeletServingCertificates"].value is False


# --- deployed stacks ------------------------------------------------------------------------------


def test_a_stack_deployed_before_keeps_it_off_with_a_warning():
    """Its init step must see no change: serverTLSBootstrap there would re-run kubeadm init."""
    g = run_program({"workerCount": 1}, deployed=LEGACY)
    assert "serverTLSBootstrap" not in _kubelet(g)
    assert not _release(g, v.METRICS_SERVER_CHART) and not _release(g, v.CSR_APPROVER_CHART)
    assert g.exports["kubeletServingCertificates"].value is False
    assert any("metricsServer stays off" in msg for _, msg in g.logs)
    assert _kubelet_sources(g) == _kubelet_sources(run_program({"workerCount": 1, "metricsServer": False}))


def test_turning_it_on_for_a_cluster_without_serving_certificates_is_refused():
    deployed = {**LEGACY, "kubeletServingCertificates": False}
    problems = refusals(deployed, _cfg(), ssh_public_key=None)
    assert len(problems) == 1 and problems[0].startswith("katak8s:metricsServer: cannot turn metrics-server on")
    assert refusals(deployed, _cfg(metricsServer=False), ssh_public_key=None) == []
    with pytest.raises(ConfigError, match="metricsServer: cannot turn"):
        run_program({"workerCount": 1}, deployed=deployed)


def test_turning_it_off_keeps_the_approver_and_the_kubelets_as_they_are():
    """The kubelets keep renewing their certificates, so the approver stays; kubeadm's
    configuration does not change."""
    deployed = {**LEGACY, "kubeletServingCertificates": True}
    g = run_program({"workerCount": 1, "metricsServer": False}, deployed=deployed)
    assert _kubelet(g)["serverTLSBootstrap"] is True
    assert _release(g, v.CSR_APPROVER_CHART) and not _release(g, v.METRICS_SERVER_CHART)
    assert g.exports["kubeletServingCertificates"].value is True


def test_unreadable_outputs_keep_the_approver_whatever_metrics_server_says():
    """Review of c4d4b20, finding 1: with the outputs lost, metricsServer false must not
    delete the approver of a cluster whose kubelets need it (init.sh refuses the mismatch)."""
    g = run_program({"workerCount": 1, "metricsServer": False}, deployed={UNREADABLE: True})
    assert _release(g, v.CSR_APPROVER_CHART) and not _release(g, v.METRICS_SERVER_CHART)
    assert "serverTLSBootstrap" not in _kubelet(g)
    fresh = run_program({"workerCount": 1, "metricsServer": False})  # a new stack: nothing to keep
    assert not _release(fresh, v.CSR_APPROVER_CHART)


def test_unreadable_outputs_keep_the_configuration():
    cfg = DeployedState({}, readable=False).settle(_cfg(), stack="o/p/s")
    assert cfg.metrics_server and cfg.kubelet_serving_certificates
    g = run_program({"workerCount": 1}, deployed={UNREADABLE: True})
    assert _kubelet(g)["serverTLSBootstrap"] is True
    assert any("metricsServer could not be checked" in msg for _, msg in g.logs)
