"""Pure naming helpers: every physical name, type token and cluster tag comes from here."""

from __future__ import annotations

PACKAGE = "katak8s"
CONTROL_PLANE = "control-plane"
WORKER = "worker"
_ROLE_ABBREV = {CONTROL_PLANE: "cp", WORKER: "worker"}


def type_token(module: str, type_name: str) -> str:
    """`katak8s:<module>:<Type>`, the token of every ComponentResource here."""
    return f"{PACKAGE}:{module}:{type_name}"


def node_name(cluster: str, role: str, index: int) -> str:
    """`<cluster>-cp-<i>` / `<cluster>-worker-<i>`: the server, hostname and Kubernetes
    node name at once, so it must stay a lowercase RFC 1123 label (clusterName is
    validated to at most 40 characters, which leaves room for the suffix)."""
    return f"{cluster}-{_ROLE_ABBREV[role]}-{index}"


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
