"""metrics-server, reading every kubelet over TLS it verifies (`kubectl top`, HPAs).

class KubeletMetrics(pulumi.ComponentResource), token katak8s:kubernetes:KubeletMetrics
    KubeletMetrics(name, cfg, *, provider, ip_prefixes, approver_after, metrics_after, opts=None)
    .approver: helm.v3.Release (kubelet-csr-approver), or None (cfg.csr_approver false: no kubelet
               serving certificates)
    .metrics_server: helm.v3.Release, or None (metricsServer false)
    .ready: the releases

kubeadm's kubelets sign their own serving certificate, which nothing can verify; metrics-
server would need --kubelet-insecure-tls, "for testing purposes only" (metrics-server
docs/command-line-flags.txt). Instead every kubelet runs with serverTLSBootstrap
(components/cluster/kubeadm.py) and files a kubernetes.io/kubelet-serving CSR, which
kube-controller-manager signs with the cluster CA once approved. Nothing in Kubernetes
approves them: kubelet-csr-approver does, and only a CSR that a node filed for itself
(username system:node:<name>), whose DNS name is that node's, one katak8s gives (the
regex), and whose IPs are all in `ip_prefixes` (postfinance/kubelet-csr-approver
internal/controller/csr_controller.go, regex_ip_checks.go): any node may still name any
address of the node subnet. Until its CSR is approved a kubelet serves no TLS at all, so
`kubectl logs/exec` to it fail too: the approver goes in early, beside the cloud
controller, on the control planes, tolerating the taint nodes carry until the controller
initialized them. It stays for the cluster's life: kubelets renew their certificate
(kube-controller-manager signs it for a year, --cluster-signing-duration) at 70-90 % of
its life, even with metricsServer turned off.

metrics-server runs on the control planes, the system pool (components/kubernetes/system.py):
it scrapes every kubelet from there, which the API server's own kubelet rule of the firewall
already admits, so no pod on a worker, Kata's included, gains a path to the kubelets. Two
replicas, spread over the control planes, with a disruption budget when there are two or
more of them. The API server reaches it through the chart's APIService, which skips TLS
verification of metrics-server's self-signed certificate (chart default `tls.type:
metrics-server`, as upstream's components.yaml): the unverified hop is API server ->
metrics-server inside the pod network, never metrics-server -> kubelet. (The API server
itself does not verify kubelets either: kubeadm sets no --kubelet-certificate-authority.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import naming
from components import versions as v
from components.config import ClusterConfig
from components.kubernetes.cloud_controller import UNINITIALIZED_TAINT
from components.kubernetes.provider import pinned_release
from components.naming import type_token

NAMESPACE = "kube-system"
APPROVER_RELEASE = "kubelet-csr-approver"
METRICS_RELEASE = "metrics-server"
METRICS_LABELS = {"app.kubernetes.io/name": "metrics-server"}  # the chart's selectorLabels (_helpers.tpl)
# metrics-server is Ready once it scraped the kubelets (readyz), which needs their approved
# certificates and its control plane Ready (calico-node, image pulls), as the approver.
METRICS_TIMEOUT_SECONDS = 1500
# The approver needs the pod network (Calico making a control plane Ready) and its image from
# ghcr.io: as long as Cinder CSI's wait (storage.RELEASE_TIMEOUT_SECONDS).
APPROVER_TIMEOUT_SECONDS = 1500


def node_name_regex(cluster_name: str) -> str:
    """The names katak8s gives nodes (naming.node_name), as the approver's providerRegex: a
    Go RE2 expression the chart renders unquoted into YAML (templates/deployment.yaml), so
    it must stay free of ': ' and ' #'. clusterName is a lowercase RFC 1123 label: no
    character of it needs escaping."""
    roles = "|".join(naming.ROLE_ABBREV[role] for role in (naming.CONTROL_PLANE, naming.WORKER))
    return f"^{cluster_name}-({roles})-[0-9]+$"


def serving_ip_prefixes(node_cidr: str, floating_ips: Sequence[pulumi.Input[str]]) -> pulumi.Output[list[str]]:
    """What a kubelet may put in its certificate: its fixed IP, in the node subnet, and, with
    the cloud controller, a node's floating IP (cp-0's on a single control plane, every
    node's with floatingIpPerNode), which the controller reports as an ExternalIP
    (cloud-provider-openstack pkg/openstack/instances_addresses.go nodeAddresses) and the
    kubelet adds to its next CSR (kubernetes pkg/kubelet/certificate/kubelet.go
    addressesToHostnamesAndIPs). Each floating IP alone, not its pool: a neighbour's floating
    IP never becomes a valid name for a node here. A new node's floating IP updates the
    approver, long before that node joins."""
    def prefixes(ips: list[str]) -> list[str]:
        return [node_cidr, *sorted(f"{ip}/{32 if ':' not in ip else 128}" for ip in ips if ip)]
    return pulumi.Output.all(*floating_ips).apply(lambda ips: prefixes(list(ips)))


def approver_values(cfg: ClusterConfig, ip_prefixes: Sequence[str]) -> dict[str, Any]:
    """kubelet-csr-approver chart values (charts/kubelet-csr-approver/values.yaml, v1.2.14)."""
    return {
        "providerRegex": node_name_regex(cfg.cluster_name),
        # Every IP in the CSR must lie in one of these, or the CSR is denied (WhitelistedIPCheck).
        "providerIpPrefixes": list(ip_prefixes),
        # Neutron's DNS rarely resolves node names; the address check above stands in for it.
        "bypassDnsResolution": True,
        "nodeSelector": {v.CONTROL_PLANE_ROLE: ""},
        # Evicted last: without it no kubelet gets or renews its serving certificate.
        "priorityClassName": "system-cluster-critical",
        "tolerations": [
            {"key": v.CONTROL_PLANE_ROLE, "operator": "Exists", "effect": "NoSchedule"},
            # Before the cloud controller initialized the control planes (cloud_controller.py).
            {"key": UNINITIALIZED_TAINT, "operator": "Exists", "effect": "NoSchedule"},
        ],
    }


def metrics_values(cfg: ClusterConfig) -> dict[str, Any]:
    """metrics-server chart values (charts/metrics-server/values.yaml at
    metrics-server-helm-chart-3.13.1). The chart's defaultArgs stay: no --kubelet-insecure-tls,
    InternalIP first (the node subnet the approver admits)."""
    return {
        "replicas": 2,
        # As CoreDNS's (system.py): with one control plane a budget would only stall its drain.
        # AlwaysAllow: unready replicas never block a drain (policy/v1, Kubernetes 1.27+).
        "podDisruptionBudget": {"enabled": cfg.control_plane_count >= 2, "maxUnavailable": 1,
                                "unhealthyPodEvictionPolicy": "AlwaysAllow"},
        "nodeSelector": {v.CONTROL_PLANE_ROLE: ""},
        # Like the approver, it need not wait for the cloud controller: it reaches the kubelets
        # by the node-ip address they register with, and needs neither DNS nor a Node's cloud
        # labels, so it starts beside the controller instead of after it.
        "tolerations": [{"key": v.CONTROL_PLANE_ROLE, "operator": "Exists", "effect": "NoSchedule"},
                        {"key": UNINITIALIZED_TAINT, "operator": "Exists", "effect": "NoSchedule"}],
        "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{
            "weight": 100,
            "podAffinityTerm": {"labelSelector": {"matchLabels": dict(METRICS_LABELS)},
                                "topologyKey": "kubernetes.io/hostname"}}]}},
    }


class KubeletMetrics(pulumi.ComponentResource):
    def __init__(self, name: str, cfg: ClusterConfig, *, provider: k8s.Provider,
                 ip_prefixes: pulumi.Input[Sequence[str]], approver_after: list[pulumi.Resource],
                 metrics_after: list[pulumi.Resource], opts: pulumi.ResourceOptions | None = None):
        super().__init__(type_token("kubernetes", "KubeletMetrics"), name, None, opts)
        self.approver: k8s.helm.v3.Release | None = None
        self.metrics_server: k8s.helm.v3.Release | None = None
        if cfg.csr_approver:
            self.approver = pinned_release(
                self, f"{name}-csr-approver", provider, release=APPROVER_RELEASE, chart=v.CSR_APPROVER_CHART,
                version=v.CSR_APPROVER_CHART_VERSION, repo=v.CSR_APPROVER_CHART_REPO, namespace=NAMESPACE,
                values=pulumi.Output.from_input(ip_prefixes).apply(lambda p: approver_values(cfg, p)),
                timeout=APPROVER_TIMEOUT_SECONDS, after=approver_after)
        if cfg.metrics_server and cfg.kubelet_serving_certificates and self.approver:
            self.metrics_server = pinned_release(
                self, f"{name}-metrics-server", provider, release=METRICS_RELEASE, chart=v.METRICS_SERVER_CHART,
                version=v.METRICS_SERVER_CHART_VERSION, repo=v.METRICS_SERVER_CHART_REPO, namespace=NAMESPACE,
                values=metrics_values(cfg), timeout=METRICS_TIMEOUT_SECONDS, after=[self.approver, *metrics_after])
        self.ready: list[pulumi.Resource] = [r for r in (self.approver, self.metrics_server) if r]
        self.register_outputs({"metricsServer": self.metrics_server is not None})
