"""Where the cluster's own services run, and what keeps a drain from taking them down.

The placement, decided once for every stack:
- The control planes are the system pool. tigera-operator (calico.operator_values) and
  calico-kube-controllers (calico.installation_spec controlPlaneNodeSelector) are pinned
  there: both can write cluster state, so neither shares a host with untrusted pods.
- CoreDNS is kubeadm's (it re-renders the Deployment at every `kubeadm upgrade`, so it is
  not patched here). It tolerates the control-plane taint and prefers one replica per node
  (kubernetes/kubernetes cmd/kubeadm/app/phases/addons/dns/manifests.go). Without
  kataDedicatedWorkers it runs on any node; with them the workers are tainted for Kata
  pods and CoreDNS runs on the control planes only, as a runc pod never beside an
  untrusted one. A separate runc "system pool" was weighed and left out: it would add
  nodes to every stack for what the control planes already host.
- calico-node and calico-typha run everywhere (they tolerate every taint).

PodDisruptionBudget for CoreDNS, `maxUnavailable: 1`, when it has two nodes to run on:
a drain then moves one replica at a time and DNS keeps answering. With one such node (one
control plane and a dedicated kata pool, or a one-node cluster) a budget would stall
every drain of that node until the drain timeout, since the evicted replica has nowhere to
go; there is none, and a drain of that node interrupts DNS (docs/kubernetes.md).
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.config import ClusterConfig
from components.kubernetes import demo
from components.naming import type_token


def dns_node_count(cfg: ClusterConfig) -> int:
    """How many nodes CoreDNS can run on."""
    if cfg.kata_dedicated_workers and cfg.worker_count:
        return cfg.control_plane_count
    return cfg.control_plane_count + cfg.worker_count


def dns_disruption_budget(cfg: ClusterConfig) -> dict[str, Any] | None:
    if dns_node_count(cfg) < 2:
        return None
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "coredns", "namespace": demo.DNS_NAMESPACE},
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": dict(demo.DNS_LABELS)}},
    }


class SystemServices(pulumi.ComponentResource):
    """The disruption budgets of the cluster's own services (module docstring)."""

    def __init__(
        self,
        name: str,
        cfg: ClusterConfig,
        *,
        provider: k8s.Provider,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__(type_token("kubernetes", "SystemServices"), name, None, opts)
        pdb = dns_disruption_budget(cfg)
        self.dns_budget = pdb and k8s.policy.v1.PodDisruptionBudget(
            f"{name}-coredns-pdb",
            metadata=pdb["metadata"],
            spec=pdb["spec"],
            opts=pulumi.ResourceOptions(parent=self, provider=provider),
        )
        self.register_outputs({"dnsDisruptionBudget": pdb is not None})
