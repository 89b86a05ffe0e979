"""The parameters of every cluster-formation script (scripts/remote/cluster/*.sh), as frozen data.

Each dataclass renders to the `KEY='value'` lines of its program (components/nodes/phase.py
render_env); a field is a script input, so a new value re-runs exactly the commands whose
script reads it. The upgrade fields come from components/cluster/upgrade.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from components.cluster.upgrade import ClusterUpgrade, NodeUpgrade, UpgradeMarks


@dataclass(frozen=True, kw_only=True)
class InitParams(NodeUpgrade, ClusterUpgrade):
    """cp-0: kubeadm init once, then the first step of every upgrade (`kubeadm upgrade apply`)."""

    node_name: str
    kubernetes_version: str  # vX.Y.Z
    readyz_timeout: int
    cri_socket: str  # for the automatic `kubeadm reset` of a half-made init
    removed_gates: tuple[str, ...]  # kubeadm gates the target no longer knows (versions.REMOVED_KUBEADM_GATES)


@dataclass(frozen=True, kw_only=True)
class KubeconfigParams:
    node_name: str


@dataclass(frozen=True, kw_only=True)
class CredentialParams(ClusterUpgrade):
    """cp-0, before a node's join: drain it if it runs an older Kubernetes, mint its credentials."""

    node_name: str  # the joining node
    token_ttl: str
    control_plane: bool
    readyz_timeout: int
    kubernetes_version: str  # the target: a node running an older one is drained for its upgrade


@dataclass(frozen=True, kw_only=True)
class JoinParams(NodeUpgrade):
    """The node: kubeadm join once; on a joined node at an older version, its upgrade."""

    node_name: str
    kubernetes_version: str
    cri_socket: str
    control_plane: bool
    mint_resource: str  # Pulumi name of the node's credentials command (for recovery)


@dataclass(frozen=True, kw_only=True)
class ResetParams:
    node_name: str
    cri_socket: str


@dataclass(frozen=True, kw_only=True)
class DeleteNodeParams:
    node_name: str
    control_plane: bool  # then its etcd member must be gone first (review-node F10)
    etcd_pod: str  # the first control plane's etcd static pod, where etcdctl runs


@dataclass(frozen=True, kw_only=True)
class MemberParams(UpgradeMarks):
    """cp-0, after a node's join: wait until registered; after its upgrade, uncordon it."""

    node_name: str
    register_timeout: int
    kubernetes_version: str
    ready_timeout: int


@dataclass(frozen=True, kw_only=True)
class DrainParams:
    node_name: str
    drain_timeout: int
    # What a scale-in waits, beyond the drain's unused time, for the node's volumes to detach
    # (config_rules.DETACH_RESERVE_SECONDS; drain.sh).
    detach_reserve: int
