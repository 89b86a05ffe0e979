"""The stack's configuration contract: typed, frozen, validated once before any resource.

`parse_config` is pure: it takes the raw values of the `katak8s:` namespace (exactly as
`pulumi config` stores them: strings, or JSON for lists) and returns a `ClusterConfig`,
or raises one `ConfigError` that lists every problem, each naming its key, the value
given and what is allowed. Pulumi.yaml declares the same keys; a test keeps them equal.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.runtime import config as runtime_config

from components import versions as v
from components.config_networks import check_networks, covers_everything
from components.config_rules import (  # noqa: F401 (re-exported: the contract's names)
    CONTROL_PLANE_COUNTS,
    DNS_LABEL,
    JUMP_HOSTS,
    KEY_NAMES,
    KEYS,
    MAX_DRAIN_SECONDS,
    MAX_UPGRADE_BATCH,
    MAX_WORKERS,
    NAMESPACE,
    PHASE_TIMEOUT_SECONDS,
    RUNTIMES,
    SECRET_KEYS,
    SSH_PUBLIC_KEY,
    SSH_USER,
    Collector,
    Key,
    check_cloud_credentials,
    check_jump_host_memory,
    check_one_of,
    check_range,
    check_versions,
    int_or_zero,
)


class ConfigError(pulumi.RunError):
    """Every problem of a stack's configuration, reported at once. A RunError, so the CLI
    shows the message without a Python traceback (pulumi/errors.py)."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid katak8s stack configuration ({len(problems)} problems):\n{lines}")


@dataclass(frozen=True, kw_only=True)
class ClusterConfig:
    """One stack's validated configuration. Field docs live in Pulumi.yaml and the README."""

    cluster_name: str
    image: str
    ssh_user: str
    control_plane_count: int
    control_plane_flavor: str
    worker_count: int
    worker_flavor: str
    external_network: str
    allowed_cidrs: tuple[str, ...]
    node_cidr: str
    pod_cidr: str
    service_cidr: str
    dns_nameservers: tuple[str, ...]
    container_runtime: str
    kubernetes_version: str
    kata_version: str
    kata_hypervisor: str
    calico_version: str
    ssh_private_key: str | None
    boot_volume_size: int
    sample_workloads: bool
    floating_ip_per_node: bool
    jump_host: str = ""  # "" | JUMP_HOSTS; settled against the deployed stack (components/deployed.py)
    jump_host_flavor: str = "m1.small"
    kata_dedicated_workers: bool
    kata_sha256: str | None
    allow_runtime_restart: bool
    drain_timeout_seconds: int
    upgrade_batch_size: int = 1  # workers drained and upgraded at once during a Kubernetes upgrade
    accept_ssh_public_key: str = ""
    # The OpenStack cloud controller (external cloud provider from day 0); settled against
    # the deployed stack (components/deployed.py DeployedState.settle).
    cloud_provider: bool = True
    cloud_credential_roles: tuple[str, ...] = ("member",)
    cloud_credential_rotation: str = "1"
    login_credential_unrestricted: bool = False
    cloud_cluster_name: str = ""  # naming.cloud_cluster_name, settled by DeployedState.settle
    cinder_csi: bool = True  # Cinder CSI and the default StorageClass
    delete_volumes_on_destroy: bool = False  # `pulumi destroy` deletes the PVCs' volumes too
    sample_load_balancer: bool = False  # kata-app behind an Octavia load balancer
    metrics_server: bool = True  # metrics-server (components/kubernetes/metrics.py)
    # Kubelets serve certificates the cluster CA signed (serverTLSBootstrap), approved in the
    # cluster: fixed at `kubeadm init`, so settled against the deployed stack (DeployedState.settle).
    kubelet_serving_certificates: bool = True
    # kubelet-csr-approver runs: with serving certificates, and whenever the deployed state is
    # unknown (it approves nothing where kubelets sign their own).
    csr_approver: bool = True
    warnings: tuple[str, ...] = ()  # logged once by load_config

    @property
    def cloud_credentials(self) -> bool:
        """Some in-cluster component logs in to OpenStack (components/openstack/credentials.py)."""
        return self.cloud_provider or self.cinder_csi

    @property
    def kubernetes_patch(self) -> str:
        return v.kubernetes_patch(self.kubernetes_version)

    @property
    def kubernetes_minor(self) -> str:
        return v.kubernetes_minor(self.kubernetes_version)

    @property
    def hypervisor(self) -> v.Hypervisor:
        return v.HYPERVISORS[self.kata_hypervisor]

    @property
    def cri_socket(self) -> str:
        return v.CRI_SOCKETS[self.container_runtime]

    @property
    def ha(self) -> bool:
        return self.control_plane_count > 1

    @property
    def opens_world(self) -> bool:
        """True when allowedCidrs lets the whole IPv4 internet reach SSH and the API: their
        union, not only a literal 0.0.0.0/0 (two /1 prefixes are the whole internet too)."""
        return covers_everything(self.allowed_cidrs)


def parse_config(raw: Mapping[str, Any], *, stack: str,
                 encrypted: frozenset[str] | None = None) -> ClusterConfig:
    """Validate raw `katak8s:` values; raise ConfigError listing every problem.

    `encrypted` names the keys whose values the CLI decrypted (set with --secret); None
    means unknown (tests of the rules), so the secret keys are not checked for it.
    """
    c = Collector(raw)
    for key in sorted(SECRET_KEYS):
        if encrypted is not None and raw.get(key) and key not in encrypted:
            # Pulumi.yaml cannot say `secret: true` next to a default (pulumi/pulumi#21865),
            # so the program refuses a key that would sit in plaintext in Pulumi.<stack>.yaml.
            c.fail(key, f"must be set as a secret: `pulumi config rm {NAMESPACE}:{key}`, then "
                   f"`pulumi config set --secret {NAMESPACE}:{key} < your-key-file`", raw[key])
    for unknown in sorted(set(raw) - KEY_NAMES):
        c.problems.append(f"{NAMESPACE}:{unknown}: unknown key; known keys: {', '.join(sorted(KEY_NAMES))}")
    values = {k.name: c.get(k) for k in KEYS}
    name = values["clusterName"] or stack.lower()
    if not DNS_LABEL.match(name) or len(name) > 40:
        key = "clusterName" if values["clusterName"] else "clusterName (defaulted from the stack name)"
        c.fail(key, "must be a DNS-1123 label of at most 40 characters: lowercase letters, "
               "digits and '-', starting and ending with a letter or digit", name)
    check_one_of(c, "controlPlaneCount", values["controlPlaneCount"], CONTROL_PLANE_COUNTS)
    check_range(c, "workerCount", values["workerCount"], 0, MAX_WORKERS)
    check_range(c, "bootVolumeSize", values["bootVolumeSize"], 0, 16384)
    check_range(c, "drainTimeoutSeconds", values["drainTimeoutSeconds"], 30, MAX_DRAIN_SECONDS)
    check_range(c, "upgradeBatchSize", values["upgradeBatchSize"], 1, MAX_UPGRADE_BATCH)
    if values["bootVolumeSize"] and 0 < values["bootVolumeSize"] < 20:
        c.fail("bootVolumeSize", "must be 0 (boot from the image disk) or at least 20 GiB", values["bootVolumeSize"])
    check_one_of(c, "containerRuntime", values["containerRuntime"], RUNTIMES)
    if values["jumpHost"]:
        check_one_of(c, "jumpHost", values["jumpHost"], JUMP_HOSTS)
    check_one_of(c, "kataHypervisor", values["kataHypervisor"], tuple(v.HYPERVISORS))
    check_versions(c, values["kubernetesVersion"], values["kataVersion"],
                   values["calicoVersion"], values["kataSha256"], values["allowUntestedKubernetesPatch"])
    if c.ok("controlPlaneCount", "workerCount"):
        node_count = int_or_zero(values["controlPlaneCount"]) + int_or_zero(values["workerCount"])
        check_networks(c, values, int_or_zero(values["controlPlaneCount"]), node_count)
    else:  # the subnet size depends on them: check the rest, not the size
        check_networks(c, values, 1, 0)
    if values["sshUser"] and not SSH_USER.match(values["sshUser"]):
        c.fail("sshUser", "must be a login name: lowercase letters, digits, '_' and '-', starting with a "
               "letter or '_', at most 32 characters", values["sshUser"])
    if values["acceptSshPublicKey"] and not SSH_PUBLIC_KEY.match(values["acceptSshPublicKey"]):
        c.fail("acceptSshPublicKey", "must be an OpenSSH public key line, like 'ssh-ed25519 AAAA...'",
               values["acceptSshPublicKey"])
    if c.ok("controlPlaneCount", "workerCount"):
        check_jump_host_memory(c, values)
    check_cloud_credentials(c, values)
    if values["sampleLoadBalancer"] and not (values["cloudProvider"] and values["sampleWorkloads"]):
        c.fail("sampleLoadBalancer", "needs cloudProvider and sampleWorkloads true (it puts the sample kata-app "
               "behind a load balancer the cloud controller makes)", True)
    if values["cloudProvider"] and values["workerCount"] == 0:
        # kubeadm labels control planes node.kubernetes.io/exclude-from-external-load-balancers,
        # which the service controller honours (k8s.io/cloud-provider controllers/service).
        c.warnings.append(f"{NAMESPACE}:workerCount 0 with cloudProvider: Services of type LoadBalancer get no "
                          "members (control planes are excluded from load balancers) and stay without an "
                          "address; add workers to use them")
    if values["kataDedicatedWorkers"] and values["workerCount"] == 0:
        c.fail("kataDedicatedWorkers", "needs workerCount >= 1 (the tainted kata pool is the workers)", True)
    for key in ("image", "sshUser", "controlPlaneFlavor", "workerFlavor", "externalNetwork", "jumpHostFlavor"):
        if key in raw and isinstance(raw[key], str) and raw[key] and not raw[key].strip():
            c.fail(key, "must not be blank", raw[key])
    if c.problems:
        raise ConfigError(c.problems)
    return ClusterConfig(
        cluster_name=name,
        image=values["image"],
        ssh_user=values["sshUser"],
        control_plane_count=values["controlPlaneCount"],
        control_plane_flavor=values["controlPlaneFlavor"],
        worker_count=values["workerCount"],
        worker_flavor=values["workerFlavor"],
        external_network=values["externalNetwork"],
        allowed_cidrs=tuple(values["allowedCidrs"]),
        node_cidr=values["nodeCidr"],
        pod_cidr=values["podCidr"],
        service_cidr=values["serviceCidr"],
        dns_nameservers=tuple(values["dnsNameservers"]),
        container_runtime=values["containerRuntime"],
        kubernetes_version=values["kubernetesVersion"],
        kata_version=values["kataVersion"],
        kata_hypervisor=values["kataHypervisor"],
        # Empty: the Calico release tested with the Kubernetes minor (versions.KUBERNETES_MINORS).
        calico_version=values["calicoVersion"]
        or v.KUBERNETES_MINORS[v.kubernetes_minor(values["kubernetesVersion"])].calico,
        ssh_private_key=values["sshPrivateKey"] or None,
        boot_volume_size=values["bootVolumeSize"],
        sample_workloads=values["sampleWorkloads"],
        floating_ip_per_node=values["floatingIpPerNode"],
        jump_host=values["jumpHost"],
        jump_host_flavor=values["jumpHostFlavor"],
        kata_dedicated_workers=values["kataDedicatedWorkers"],
        kata_sha256=values["kataSha256"] or None,
        allow_runtime_restart=values["allowRuntimeRestart"],
        drain_timeout_seconds=values["drainTimeoutSeconds"],
        upgrade_batch_size=values["upgradeBatchSize"],
        accept_ssh_public_key=values["acceptSshPublicKey"],
        cloud_provider=values["cloudProvider"],
        cloud_credential_roles=tuple(values["cloudCredentialRoles"]),
        cloud_credential_rotation=values["cloudCredentialRotation"],
        login_credential_unrestricted=values["loginCredentialUnrestricted"],
        cinder_csi=values["cinderCsi"],
        delete_volumes_on_destroy=values["deleteVolumesOnDestroy"],
        sample_load_balancer=values["sampleLoadBalancer"],
        metrics_server=values["metricsServer"],
        kubelet_serving_certificates=values["metricsServer"],
        csr_approver=values["metricsServer"],
        warnings=tuple(c.warnings),
    )



def load_config(read: Callable[[], Mapping[str, Any]] | None = None) -> ClusterConfig:
    """Read the `katak8s:` namespace from the running Pulumi program and validate it.

    Warnings that do not stop a deployment (a world-open allowedCidrs) are logged here,
    once, before any resource is declared.
    """
    raw = read() if read else _raw_from_pulumi()
    encrypted = frozenset(k.split(":", 1)[1] for k in raw_secret_keys() if k.startswith(f"{NAMESPACE}:"))
    cfg = parse_config(raw, stack=pulumi.get_stack(), encrypted=encrypted)
    for warning in cfg.warnings:
        pulumi.log.warn(warning)
    if cfg.opens_world:
        pulumi.log.warn(f"{NAMESPACE}:allowedCidrs covers the whole internet (0.0.0.0/0): SSH (22) and the "
                        "Kubernetes API (6443) are reachable from anywhere; list your own CIDRs instead")
    return cfg


def raw_secret_keys() -> set[str]:
    """The config keys the CLI passed as secrets: the language host exports them as
    PULUMI_CONFIG_SECRET_KEYS (pulumi/pulumi sdk/python/cmd/pulumi-language-python/main.go
    constructConfigSecretKeys); mocks tell the runtime directly (is_config_secret)."""
    keys = set(runtime_config.get_config_secret_keys_env())
    keys.update(k for k in list(runtime_config.CONFIG.get()) + list(runtime_config.get_config_env())
                if runtime_config.is_config_secret(k))
    return keys


def _raw_from_pulumi() -> dict[str, Any]:
    """All keys set in the namespace, including unknown ones, so typos are reported.

    pulumi.Config only answers for keys it is asked about; the runtime's config map holds
    every key the CLI passed in (explicitly set, or through PULUMI_CONFIG).
    """
    prefix = f"{NAMESPACE}:"
    merged = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    return {key[len(prefix):]: value for key, value in merged.items() if key.startswith(prefix)}
