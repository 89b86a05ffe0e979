"""In-cluster objects, all through one explicit provider built from the secret kubeconfig.

class KubernetesAddons(pulumi.ComponentResource), token katak8s:kubernetes:KubernetesAddons
    KubernetesAddons(name, cfg, *, cluster, network, nodes, credentials=None, opts=None)
    .provider: pulumi_kubernetes.Provider
    .runtime_class_names: list[str]
    .calico: Calico                     .calico.ready: Calico serving pod networks
    .runtime_classes: KataRuntimeClasses
    .system: SystemServices             CoreDNS's disruption budget (system pod placement)
    .cloud_controller: CloudController, or None (cloudProvider false)
    .csi: CinderCsi, or None (cinderCsi false): the default StorageClass
    .metrics: KubeletMetrics: kubelet-csr-approver (kubelet serving certificates) and
              metrics-server (metricsServer), either may be absent
    .cleanup: CloudCleanup: at `pulumi destroy`, LoadBalancer Services (and, when asked,
              PVCs) go first
    .policies / .workloads: DemoNetworkPolicies / SampleWorkloads, or None (sampleWorkloads false)

Reads cluster.kubeconfig (secret Output[str]), cluster.api_ready and cluster.ready (lists
of resources), network.mtu (Output[int]) and, with the cloud provider, the credentials
and network ids the cloud controller logs in with. Order: provider (after cluster.api_ready:
the API answers) -> Calico CRDs -> operator -> {Installation (Ready), cloud controller:
side by side, components/kubernetes/cloud_controller.py} -> namespace -> NetworkPolicies ->
workloads; the
RuntimeClass and the system budgets only need the provider. Modules: provider, calico,
runtime_class, system, policies, workloads and samples (+ demo: the names the smoke test
shares).
"""

from __future__ import annotations

from typing import Any, Protocol

import pulumi

from components import versions as v
from components.config import ClusterConfig
from components.kubernetes.calico import Calico
from components.kubernetes.cleanup import CloudCleanup
from components.kubernetes.cloud_controller import CloudConf, CloudController
from components.kubernetes.metrics import KubeletMetrics, serving_ip_prefixes
from components.kubernetes.policies import DemoNetworkPolicies
from components.kubernetes.provider import cluster_provider
from components.kubernetes.runtime_class import KataRuntimeClasses
from components.kubernetes.storage import CinderCsi, CsiConf
from components.kubernetes.system import SystemServices
from components.kubernetes.workloads import SampleWorkloads, demo_namespace
from components.naming import type_token

__all__ = ["KubernetesAddons"]


class ClusterOutputs(Protocol):
    """What is read from KubeadmCluster."""

    kubeconfig: pulumi.Output[str]  # secret
    api_ready: list[pulumi.Resource]  # the API answers: what the provider waits for
    ready: list[pulumi.Resource]  # every node joined: what the sample workloads wait for
    first_control_plane: Any  # NodeTarget: where the destroy guard runs
    first_scripts: pulumi.Resource  # its copy of scripts/remote
    api_path: list[pulumi.Resource]  # the API load balancer's parts (HA), which the guard outlives


class NetworkOutputs(Protocol):
    """What is read from ClusterNetwork."""

    mtu: pulumi.Output[int]
    external_network_id: pulumi.Output[str]
    subnet_id: pulumi.Output[str]
    rules: dict[str, pulumi.Resource]  # the security group rules, which the guard outlives


class NodeOutputs(Protocol):
    """What is read from NodePool."""

    floating_ips: dict[str, Any]  # node name -> openstack.networking.FloatingIp (.address)


class CredentialOutputs(Protocol):
    """What is read from CloudCredentials (components/openstack/credentials.py)."""

    controller: Any  # openstack.identity.ApplicationCredential (.id, .secret: secret), or None
    csi: Any  # the same for Cinder CSI, or None
    auth: pulumi.Output[Any]  # CloudAuth


class KubernetesAddons(pulumi.ComponentResource):
    def __init__(
        self,
        name: str,
        cfg: ClusterConfig,
        *,
        cluster: ClusterOutputs,
        network: NetworkOutputs,
        nodes: NodeOutputs,
        credentials: CredentialOutputs | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__(type_token("kubernetes", "KubernetesAddons"), name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.provider = cluster_provider(
            f"{name}-provider", cfg, kubeconfig=cluster.kubeconfig, depends_on=cluster.api_ready, parent=self
        )
        self.calico = Calico(
            f"{name}-calico", cfg, network_mtu=network.mtu, provider=self.provider, opts=child
        )
        self.cloud_controller: CloudController | None = None
        self.csi: CinderCsi | None = None
        if cfg.cloud_credentials and credentials is None:
            raise ValueError("cloudProvider and cinderCsi need their OpenStack credentials")
        if cfg.cloud_provider:
            cloud = pulumi.Output.all(credentials.auth, credentials.controller.id, credentials.controller.secret,
                                      network.external_network_id, network.subnet_id).apply(
                lambda a: CloudConf(auth_url=a[0].auth_url, region=a[0].region, credential_id=a[1],
                                    credential_secret=a[2], floating_network_id=a[3], subnet_id=a[4],
                                    ca_cert=a[0].ca_cert))
            self.cloud_controller = CloudController(
                f"{name}-cloud-controller", cfg, cloud=cloud, provider=self.provider, cluster=cluster,
                after=[self.calico.operator], opts=child)
        cloud_ready = self.cloud_controller.ready if self.cloud_controller else []
        if cfg.cinder_csi:
            csi = pulumi.Output.all(credentials.auth, credentials.csi.id, credentials.csi.secret).apply(
                lambda a: CsiConf(auth_url=a[0].auth_url, region=a[0].region, credential_id=a[1],
                                  credential_secret=a[2], ca_cert=a[0].ca_cert))
            # Beside the cloud controller: its controller pod schedules once the nodes are
            # initialized, which the release's own wait covers (storage.RELEASE_TIMEOUT_SECONDS).
            # Without a cloud controller, once Calico serves pod networks.
            self.csi = CinderCsi(f"{name}-cinder-csi", cfg, cloud=csi, provider=self.provider,
                                 after=[self.calico.operator] if self.cloud_controller else self.calico.ready,
                                 opts=child)
        csi_ready = self.csi.ready if self.csi else []
        # The approver beside the cloud controller (kubelets serve no TLS until it approved
        # their certificates); metrics-server right after it, both tolerating the taint the
        # controller clears (components/kubernetes/metrics.py).
        self.metrics = KubeletMetrics(
            f"{name}-metrics", cfg, provider=self.provider,
            ip_prefixes=serving_ip_prefixes(cfg.node_cidr, [f.address for f in nodes.floating_ips.values()]),
            approver_after=[self.calico.operator], metrics_after=[self.calico.operator], opts=child)
        # On every stack, so that no setting ever removes it (components/kubernetes/cleanup.py).
        # It outlives, at destroy, everything its release needs: the controllers, Calico, every
        # node (a control plane gone mid-release would take etcd's quorum and the API with it;
        # the controllers' pods run there), the security rules that let SSH and kubectl
        # through, and the API load balancer.
        self.cleanup = CloudCleanup(
            f"{name}-cloud-cleanup", cfg, cluster=cluster,
            after=[*cloud_ready, *csi_ready, self.calico.installation, *cluster.ready, *network.rules.values(),
                   *cluster.api_path],
            opts=child)
        self.runtime_classes = KataRuntimeClasses(f"{name}-runtime", cfg, provider=self.provider, opts=child)
        self.system = SystemServices(f"{name}-system", cfg, provider=self.provider, opts=child)
        self.runtime_class_names: list[str] = self.runtime_classes.names
        self.default_storage_class: str = v.DEFAULT_STORAGE_CLASS if self.csi else ""
        self.policies: DemoNetworkPolicies | None = None
        self.workloads: SampleWorkloads | None = None
        if cfg.sample_workloads:
            ns = demo_namespace(
                f"{name}-demo-namespace",
                cfg,
                provider=self.provider,
                parent=self,
                depends_on=self.calico.ready,
            )
            self.policies = DemoNetworkPolicies(
                f"{name}-policies", namespace=ns, provider=self.provider, opts=child,
                load_balancer_cidr=cfg.node_cidr if cfg.sample_load_balancer and cfg.cloud_provider else None,
            )
            self.workloads = SampleWorkloads(
                f"{name}-samples",
                cfg,
                namespace=ns,
                provider=self.provider,
                # Kata pods need kata nodes: the samples wait for every join, Calico does not.
                # Their pods schedule only on initialized nodes: after the cloud controller.
                after=[*self.calico.ready, *cloud_ready, self.runtime_classes.kata, *self.policies.policies,
                       *cluster.ready],
                opts=child,
            )
        self.register_outputs(
            {"runtimeClassNames": self.runtime_class_names, "sampleWorkloads": cfg.sample_workloads,
             "defaultStorageClass": self.default_storage_class}
        )
