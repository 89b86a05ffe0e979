"""Pure naming helpers: every physical name, type token and cluster tag comes from here."""

from __future__ import annotations

import hashlib

PACKAGE = "katak8s"
CONTROL_PLANE = "control-plane"
WORKER = "worker"
ROLE_ABBREV = {CONTROL_PLANE: "cp", WORKER: "worker"}


def type_token(module: str, type_name: str) -> str:
    """`katak8s:<module>:<Type>`, the token of every ComponentResource here."""
    return f"{PACKAGE}:{module}:{type_name}"


def node_name(cluster: str, role: str, index: int) -> str:
    """`<cluster>-cp-<i>` / `<cluster>-worker-<i>`: the server, hostname and Kubernetes
    node name at once, so it must stay a lowercase RFC 1123 label (clusterName is
    validated to at most 40 characters, which leaves room for the suffix)."""
    return f"{cluster}-{ROLE_ABBREV[role]}-{index}"


def cluster_tag(cluster: str) -> str:
    """The tag every OpenStack resource carries, so a sweep can find leftovers:
    `openstack server list --tags katak8s-cluster=<name>` (and the same for networks)."""
    return f"{PACKAGE}-cluster={cluster}"


def cluster_metadata(cluster: str, role: str | None = None) -> dict[str, str]:
    """Nova metadata for instances (key/value, shown by `openstack server show`)."""
    meta = {f"{PACKAGE}-cluster": cluster}
    if role:
        meta[f"{PACKAGE}-role"] = role
    return meta


def cloud_cluster_name(cluster: str, stack: str) -> str:
    """The cluster name the OpenStack cloud controller (and Cinder CSI) put in what they
    create: load balancers are named `kube_service_<name>_<ns>_<svc>` and looked up by that
    name (cloud-provider-openstack pkg/openstack/loadbalancer.go), so two clusters of one
    project must never share it. `stack` is the fully qualified `<org>/<project>/<stack>`:
    two stacks with the same clusterName still differ. components/deployed.py keeps the
    first value a stack deployed, so renaming the stack later does not orphan its LBs."""
    return f"{cluster}-{hashlib.sha256(stack.encode()).hexdigest()[:8]}"
