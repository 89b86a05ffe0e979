"""The outputs contract: what other stacks read through StackReference (README.md, "Outputs").

The names are a stable interface. Only `kubeconfig` and `sshPrivateKey` are secrets, and
they are wrapped here explicitly so no caller can export them in plain text by mistake.
"""

from __future__ import annotations

from typing import Any

import pulumi

from components import versions as v
from components.config import ClusterConfig

# Every exported name, in the order the README's "Outputs" section documents them.
OUTPUT_NAMES: tuple[str, ...] = (
    "kubeconfig", "apiEndpoint", "clusterName", "kubernetesVersion", "kataVersion",
    "containerRuntime", "runtimeClassNames", "controlPlanePrivateIps", "workerPrivateIps",
    "sshUser", "sshJumpHost", "sshPrivateKey", "sshPublicKey", "networkId", "subnetId", "securityGroupIds",
    "podCidr", "serviceCidr", "jumpHost", "cloudProvider", "cloudClusterName",
    "defaultStorageClass", "kubeletServingCertificates",
)
SECRET_OUTPUTS = frozenset({"kubeconfig", "sshPrivateKey"})


def stack_outputs(cfg: ClusterConfig, *, access: Any, network: Any, endpoint: Any, nodes: Any,
                  cluster: Any, addons: Any) -> dict[str, Any]:
    """The value of every output (pure wiring; export_outputs exports them)."""
    values: dict[str, Any] = {
        "kubeconfig": cluster.kubeconfig,
        "apiEndpoint": pulumi.Output.from_input(endpoint.public_host).apply(
            lambda host: f"https://{host}:{v.API_PORT}"),
        "clusterName": cfg.cluster_name,
        # Resolved only once every node runs it (components/cluster/upgrade.py).
        "kubernetesVersion": cluster.kubernetes_version,
        "kataVersion": cfg.kata_version,
        "containerRuntime": cfg.container_runtime,
        "runtimeClassNames": list(addons.runtime_class_names),
        "controlPlanePrivateIps": [t.private_ip for t in nodes.control_planes],
        "workerPrivateIps": [t.private_ip for t in nodes.workers],
        "sshUser": cfg.ssh_user,
        "sshJumpHost": nodes.jump_host,
        "sshPrivateKey": access.private_key,
        # Also what components/deployed.py compares a new key with on the next `up`.
        "sshPublicKey": access.public_key,
        "networkId": network.network_id,
        "subnetId": network.subnet_id,
        "securityGroupIds": dict(sorted(network.security_group_ids.items())),
        "podCidr": cfg.pod_cidr,
        "serviceCidr": cfg.service_cidr,
        # Also what components/deployed.py keeps on the next `up` when jumpHost is unset.
        "jumpHost": nodes.jump.kind,
        # Whether the OpenStack cloud controller runs, and the cluster name its load balancers
        # and volumes carry; components/deployed.py keeps both on the next `up`.
        "cloudProvider": cfg.cloud_provider,
        "cloudClusterName": cfg.cloud_cluster_name,
        "defaultStorageClass": addons.default_storage_class,
        # Whether kubelets serve CA-signed certificates (fixed at init); components/deployed.py
        # keeps it on the next `up`.
        "kubeletServingCertificates": cfg.kubelet_serving_certificates,
    }
    for name in SECRET_OUTPUTS:
        values[name] = pulumi.Output.secret(values[name])
    return values


def export_outputs(cfg: ClusterConfig, *, access: Any, network: Any, endpoint: Any, nodes: Any,
                   cluster: Any, addons: Any) -> None:
    for name, value in stack_outputs(cfg, access=access, network=network, endpoint=endpoint,
                                     nodes=nodes, cluster=cluster, addons=addons).items():
        pulumi.export(name, value)
