"""The sample workloads' manifests (pure; workloads.py declares them): a kata app and its
runc twin (agnhost netexec), a Service, a client.

Every pod has a controller (a Deployment), so a drain can always evict it. The two app
Deployments spread one pod per node (the smoke test's cross-node check needs pods on two
nodes), and kata-app gets a PodDisruptionBudget where a drain has somewhere to move it.

Pod Security Admission: the namespace enforces `restricted`, the strictest level, and
every container here passes it (non-root, no privilege escalation, all capabilities
dropped, RuntimeDefault seccomp). Requests and limits are set on every container: for a
kata pod the limits size the VM (runtime-rs: vCPUs = ceil(limits + overhead), memory =
limits + overhead; without limits it falls back to default_vcpus/default_memory,
upstream-bootstrap.md §6.5).
"""

from __future__ import annotations

from typing import Any

from components import versions as v
from components.config import ClusterConfig
from components.kubernetes import demo
from components.kubernetes.runtime_class import kata_toleration

REPLICAS = 2
# agnhost's image has no USER: run as the alpine `nobody` account so runAsNonRoot holds.
NOBODY = 65534
APP_RESOURCES = {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}}
# kubeadm's default taint on control-plane nodes (kubeadm init phase mark-control-plane).
CONTROL_PLANE_TOLERATION = {
    "key": v.CONTROL_PLANE_ROLE,
    "operator": "Exists",
    "effect": "NoSchedule",
}
# 128 Mi, not less: the limit sizes the client's guest (limit + runtime-rs overhead_memory
# 32 MiB), which holds the guest kernel, kata-agent, agnhost and each `kubectl exec curl`
# (runtime-rs accepts anything from MIN_QEMU_MEMORY_SIZE_MB = 64; review-k8s K7).
CLIENT_RESOURCES = {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "200m", "memory": "128Mi"}}
# Pulumi's default await for a Deployment is 10 minutes; a Kata sandbox under nested
# virtualization plus the image pull can take longer (the kubelet's runtimeRequestTimeout
# alone is 10 minutes), review-k8s K9. pulumi-kubernetes reads this annotation
# (provider/pkg/await: metadata.TimeoutDuration).
AWAIT_TIMEOUT_SECONDS = 1200


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


def restricted_container(
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


def sample_node_count(cfg: ClusterConfig) -> int:
    """How many nodes the samples can run on: the workers, or the control planes of a
    cluster without workers (only then do the samples tolerate kubeadm's taint)."""
    return cfg.worker_count or cfg.control_plane_count


def _spread(labels: dict[str, str]) -> list[dict[str, Any]]:
    """At most one pod more on any node than on another, among the pods of one rollout.
    DoNotSchedule makes it a rule the smoke test can rely on; nodeTaintsPolicy Honor leaves
    out nodes the pods cannot tolerate (the default, Ignore, would count the tainted
    control planes as empty domains and leave the second pod of a one-worker cluster
    Pending). Nothing rebalances after a drain: a rollout restart spreads them again."""
    return [{
        "maxSkew": 1,
        "topologyKey": "kubernetes.io/hostname",
        "whenUnsatisfiable": "DoNotSchedule",
        "nodeTaintsPolicy": "Honor",
        "labelSelector": {"matchLabels": dict(labels)},
        # Count only the pods of the same ReplicaSet: otherwise, mid-rollout, the old pods
        # satisfy the skew and both new pods may land on one node (the ReplicaSet
        # controller removes old pods from crowded nodes first).
        # MatchLabelKeysInPodTopologySpread, on by default since 1.27.
        "matchLabelKeys": ["pod-template-hash"],
    }]


def _await(runtime_class: str | None) -> dict[str, str]:
    return {"pulumi.com/timeoutSeconds": str(AWAIT_TIMEOUT_SECONDS)} if runtime_class else {}


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
    container = restricted_container(
        "netexec",
        ["netexec", f"--http-port={demo.HTTP_PORT}"],
        APP_RESOURCES,
        [{"name": demo.PORT_NAME, "containerPort": demo.HTTP_PORT, "protocol": "TCP"}],
    )
    container["readinessProbe"] = {"tcpSocket": {"port": demo.PORT_NAME}, "periodSeconds": 5}
    annotations = _await(runtime_class) or {demo.RUNC_REASON_ANNOTATION: demo.RUNC_REASON}
    spec = _pod_spec(cfg, [container], runtime_class)
    spec["topologySpreadConstraints"] = _spread(labels)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": demo.NAMESPACE, "labels": labels, "annotations": annotations},
        "spec": {
            "replicas": REPLICAS,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": spec},
        },
    }


def app_disruption_budget(cfg: ClusterConfig) -> dict[str, Any] | None:
    """kata-app keeps one pod serving through a drain, when there is a second node to move
    the other to. With one node a budget would stall every drain of it until the drain
    timeout (nothing can come up elsewhere), so there is none (review-pulumi F4)."""
    if sample_node_count(cfg) < 2:
        return None
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": demo.KATA_APP, "namespace": demo.NAMESPACE},
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {demo.APP_LABEL: demo.KATA_APP}}},
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


def public_service(cfg: ClusterConfig) -> dict[str, Any]:
    """sampleLoadBalancer: kata-app behind an Octavia load balancer with a floating IP, open
    to allowedCidrs only (Octavia listener allowed_cidrs, from loadBalancerSourceRanges).
    externalTrafficPolicy Local: the amphora sends only to nodes running a kata-app pod
    (the controller's health monitor on the healthCheckNodePort), and kube-proxy does not
    masquerade, so the pod sees the amphora's address in the node subnet, which the
    NetworkPolicy kata-app-ingress-from-load-balancer admits (policies.py)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": demo.PUBLIC_SERVICE, "namespace": demo.NAMESPACE,
                     # pulumi-kubernetes waits for the load balancer's address: Octavia's amphora
                     # boots in 1-3 minutes, more under load
                     "annotations": {"pulumi.com/timeoutSeconds": str(AWAIT_TIMEOUT_SECONDS)}},
        "spec": {
            "type": "LoadBalancer",
            "externalTrafficPolicy": "Local",
            "loadBalancerSourceRanges": list(cfg.allowed_cidrs),
            "selector": {demo.APP_LABEL: demo.KATA_APP},
            "ports": [{"name": demo.PORT_NAME, "port": demo.PUBLIC_PORT, "targetPort": demo.PORT_NAME,
                       "protocol": "TCP"}],
        },
    }


def client_deployment(cfg: ClusterConfig) -> dict[str, Any]:
    """An idle agnhost (`pause`) carrying the allowed-client label; the smoke test execs
    curl in its pod. A one-replica Deployment, not a bare Pod: `kubectl drain` (no
    `--force`, scripts/remote/cluster/drain.sh) refuses a pod no controller manages, so a bare
    client would block every scale-in of the node it sits on (review-pulumi F4)."""
    labels = {demo.APP_LABEL: demo.CLIENT, **demo.CLIENT_LABELS}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": demo.CLIENT, "namespace": demo.NAMESPACE, "labels": labels,
                     "annotations": _await(v.KATA_HANDLER)},
        "spec": {
            "replicas": 1,
            # The selector is immutable: the caller label goes on the pods only.
            "selector": {"matchLabels": labels},
            # The client runs under Kata too: only the runc twin may use runc in kata-demo.
            "template": {"metadata": {"labels": {**labels, **demo.CALLER_LABELS}}, "spec": _pod_spec(
                cfg, [restricted_container("client", ["pause"], CLIENT_RESOURCES, None)], v.KATA_HANDLER)},
        },
    }
