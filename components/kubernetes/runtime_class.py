"""The `kata` RuntimeClass: the only way a pod asks for a Kata VM.

One class only. Per-hypervisor classes (kata-qemu, kata-clh) would need one CRI runtime
handler per hypervisor on the nodes; the node configuration registers exactly one,
versions.KATA_HANDLER, bound to the stack's kataHypervisor. A class whose handler no
node serves would schedule pods that then fail with "no runtime for handler".
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import versions as v
from components.config import ClusterConfig
from components.naming import type_token


def kata_toleration() -> dict[str, str]:
    """Toleration of the dedicated kata pool's taint (the same versions.KATA_TAINT the
    workers' kubeadm JoinConfiguration registers)."""
    return {
        "key": v.KATA_TAINT.key,
        "operator": "Equal",
        "value": v.KATA_TAINT.value,
        "effect": v.KATA_TAINT.effect,
    }


def pod_fixed(cfg: ClusterConfig) -> dict[str, str]:
    """overhead.podFixed: kata-deploy's VMM + guest kernel + agent cost, plus, under CRI-O,
    the whole fixed-size VM (versions.CRIO_KATA_VM): there the pod's limits do not size the
    VM, so the scheduler and the pod cgroup (sandbox_cgroup_only) must hold all of it."""
    hv = cfg.hypervisor
    if cfg.container_runtime != "crio":
        return {"cpu": hv.overhead_cpu, "memory": hv.overhead_memory}
    cpu_m = int(hv.overhead_cpu.removesuffix("m")) + 1000 * v.CRIO_KATA_VM.vcpus
    memory_mi = int(hv.overhead_memory.removesuffix("Mi")) + v.CRIO_KATA_VM.memory_mib
    return {"cpu": f"{cpu_m}m", "memory": f"{memory_mi}Mi"}


def runtime_class_manifest(cfg: ClusterConfig) -> dict[str, Any]:
    """node.k8s.io/v1 RuntimeClass, as kata-deploy renders it (templates/runtimeclasses.yaml,
    upstream-bootstrap.md §6.6) but with our single handler.

    overhead.podFixed: kata-deploy's per-shim defaults, carried in versions.HYPERVISORS
    (qemu 320Mi/250m, clh 130Mi/250m): the VMM + guest kernel + agent cost the scheduler
    adds to every kata pod's requests; under CRI-O plus the fixed VM (pod_fixed).
    scheduling.nodeSelector: the RuntimeClass admission merges it into every kata pod, so
    they land only on nodes whose runtime has the handler.
    """
    hv = cfg.hypervisor
    scheduling: dict[str, Any] = {"nodeSelector": {v.KATA_NODE_LABEL: "true"}}
    if cfg.kata_dedicated_workers:
        scheduling["tolerations"] = [kata_toleration()]
    return {
        "apiVersion": "node.k8s.io/v1",
        "kind": "RuntimeClass",
        "metadata": {"name": v.KATA_HANDLER, "labels": {"katak8s.io/hypervisor": hv.name}},
        "handler": v.KATA_HANDLER,
        "overhead": {"podFixed": pod_fixed(cfg)},
        "scheduling": scheduling,
    }


class KataRuntimeClasses(pulumi.ComponentResource):
    """Declares the RuntimeClass; `.names` is what stacks export as runtimeClassNames."""

    def __init__(
        self,
        name: str,
        cfg: ClusterConfig,
        *,
        provider: k8s.Provider,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__(type_token("kubernetes", "KataRuntimeClasses"), name, None, opts)
        m = runtime_class_manifest(cfg)
        self.kata = k8s.node.v1.RuntimeClass(
            f"{name}-{v.KATA_HANDLER}",
            metadata=m["metadata"],
            handler=m["handler"],
            overhead=m["overhead"],
            scheduling=m["scheduling"],
            opts=pulumi.ResourceOptions(parent=self, provider=provider),
        )
        self.names: list[str] = [v.KATA_HANDLER]
        self.register_outputs({"names": self.names, "handler": self.kata.handler})
