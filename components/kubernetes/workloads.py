"""Sample workloads: a kata app and its runc twin (agnhost netexec), a Service, a client.

Every pod has a controller (a Deployment), so a drain can always evict it.

Pod Security Admission: the namespace enforces `restricted`, the strictest level, and
every container here passes it (non-root, no privilege escalation, all capabilities
dropped, RuntimeDefault seccomp). Requests and limits are set on every container: for a
kata pod the limits size the VM (runtime-rs: vCPUs = ceil(limits + overhead), memory =
limits + overhead; without limits it falls back to default_vcpus/default_memory,
upstream-bootstrap.md §6.5).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import versions as v
from components.config import ClusterConfig
from components.kubernetes import demo
from components.kubernetes.runtime_class import kata_toleration
from components.naming import type_token

REPLICAS = 2
# agnhost's image has no USER: run as the alpine `nobody` account so runAsNonRoot holds.
NOBODY = 65534
APP_RESOURCES = {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}}
# kubeadm's default taint on control-plane nodes (kubeadm init phase mark-control-plane).
CONTROL_PLANE_TOLERATION = {
    "key": "node-role.kubernetes.io/control-plane",
    "operator": "Exists",
    "effect": "NoSchedule",
}
CLIENT_RESOURCES = {"requests": {"cpu": "50m", "memory": "32Mi"}, "limits": {"cpu": "200m", "memory": "64Mi"}}


def namespace_manifest(cfg: ClusterConfig) -> dict[str, Any]:
    """kata-demo with PSA `restricted` enforced at the cluster's own minor (a future minor's
    stricter rules cannot break a running stack) and audited/warned at `latest` (they show
    up early as warnings)."""
    psa = "pod-security.kubernetes.io"
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": demo.NAMESPACE,
            "labels": {
                f"{psa}/enforce": "restricted",
                f"{psa}/enforce-version": f"v{cfg.kubernetes_minor}",
                f"{psa}/audit": "restricted",
                f"{psa}/audit-version": "latest",
                f"{psa}/warn": "restricted",
                f"{psa}/warn-version": "latest",
            },
        },
    }


def _container(
    name: str, args: list[str], resources: dict[str, Any], ports: list[dict] | None
) -> dict[str, Any]:
    c: dict[str, Any] = {
        "name": name,
        "image": v.AGNHOST_IMAGE,
        "args": args,
        "resources": resources,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": NOBODY,
            "runAsGroup": NOBODY,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }
    if ports:
        c["ports"] = ports
    return c


def _pod_spec(cfg: ClusterConfig, containers: list[dict], runtime_class: str | None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "automountServiceAccountToken": False,  # the samples never call the API
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": containers,
    }
    tolerations = []
    if runtime_class:
        spec["runtimeClassName"] = runtime_class  # the kata taint's toleration comes from it
    elif cfg.kata_dedicated_workers:
        # With a tainted kata pool the runc twin must still run next to the kata pods:
        # it is the smoke test's kernel comparison.
        tolerations.append(kata_toleration())
    if cfg.worker_count == 0:
        # Control planes only: they carry kubeadm's taint, and every node the kata label.
        tolerations.append(CONTROL_PLANE_TOLERATION)
    if tolerations:
        spec["tolerations"] = tolerations
    return spec


def app_deployment(cfg: ClusterConfig, name: str, runtime_class: str | None) -> dict[str, Any]:
    """netexec serving /hostname on demo.HTTP_PORT; `runtime_class=None` is the runc twin."""
    labels = {demo.APP_LABEL: name}
    container = _container(
        "netexec",
        ["netexec", f"--http-port={demo.HTTP_PORT}"],
        APP_RESOURCES,
        [{"name": demo.PORT_NAME, "containerPort": demo.HTTP_PORT, "protocol": "TCP"}],
    )
    container["readinessProbe"] = {"tcpSocket": {"port": demo.PORT_NAME}, "periodSeconds": 5}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": demo.NAMESPACE, "labels": labels,
                     **({} if runtime_class else {"annotations": {demo.RUNC_REASON_ANNOTATION: demo.RUNC_REASON}})},
        "spec": {
            "replicas": REPLICAS,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": _pod_spec(cfg, [container], runtime_class)},
        },
    }


def app_service() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": demo.KATA_APP, "namespace": demo.NAMESPACE},
        "spec": {
            "selector": {demo.APP_LABEL: demo.KATA_APP},
            "ports": [
                {
                    "name": demo.PORT_NAME,
                    "port": demo.HTTP_PORT,
                    "targetPort": demo.PORT_NAME,
                    "protocol": "TCP",
                }
            ],
        },
    }


def client_deployment(cfg: ClusterConfig) -> dict[str, Any]:
    """An idle agnhost (`pause`) carrying the allowed-client label; the smoke test execs
    curl in its pod. A one-replica Deployment, not a bare Pod: `kubectl drain` (no
    `--force`, scripts/cluster/drain.sh) refuses a pod no controller manages, so a bare
    client would block every scale-in of the node it sits on (review-pulumi F4)."""
    labels = {demo.APP_LABEL: demo.CLIENT, **demo.CLIENT_LABELS}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": demo.CLIENT, "namespace": demo.NAMESPACE, "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            # The client runs under Kata too: only the runc twin may use runc in kata-demo.
            "template": {"metadata": {"labels": labels}, "spec": _pod_spec(
                cfg, [_container("client", ["pause"], CLIENT_RESOURCES, None)], v.KATA_HANDLER)},
        },
    }


def demo_namespace(
    name: str,
    cfg: ClusterConfig,
    *,
    provider: k8s.Provider,
    parent: pulumi.Resource,
    depends_on: Sequence[pulumi.Resource],
) -> k8s.core.v1.Namespace:
    m = namespace_manifest(cfg)
    return k8s.core.v1.Namespace(
        name,
        metadata=m["metadata"],
        opts=pulumi.ResourceOptions(parent=parent, provider=provider, depends_on=list(depends_on)),
    )


class SampleWorkloads(pulumi.ComponentResource):
    """The kata app, its Service, the runc twin and the client. Every child waits for
    `after` (Calico ready, the RuntimeClass, the NetworkPolicies): a component's
    depends_on is not passed on to its children, so it is set on each."""

    def __init__(
        self,
        name: str,
        cfg: ClusterConfig,
        *,
        namespace: k8s.core.v1.Namespace,
        provider: k8s.Provider,
        after: Sequence[pulumi.Resource],
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__(type_token("kubernetes", "SampleWorkloads"), name, None, opts)
        child = pulumi.ResourceOptions(parent=self, provider=provider, depends_on=[namespace, *after])
        kata = app_deployment(cfg, demo.KATA_APP, v.KATA_HANDLER)
        runc = app_deployment(cfg, demo.RUNC_APP, None)
        svc, client = app_service(), client_deployment(cfg)
        self.kata_app = k8s.apps.v1.Deployment(
            f"{name}-{demo.KATA_APP}", metadata=kata["metadata"], spec=kata["spec"], opts=child
        )
        self.service = k8s.core.v1.Service(
            f"{name}-{demo.KATA_APP}-svc", metadata=svc["metadata"], spec=svc["spec"], opts=child
        )
        self.runc_app = k8s.apps.v1.Deployment(
            f"{name}-{demo.RUNC_APP}", metadata=runc["metadata"], spec=runc["spec"], opts=child
        )
        self.client = k8s.apps.v1.Deployment(
            f"{name}-{demo.CLIENT}", metadata=client["metadata"], spec=client["spec"], opts=child
        )
        self.register_outputs({"namespace": demo.NAMESPACE, "service": self.service.metadata})
