"""The pure rules behind components/deployed.py: which changes a live cluster can't take,
judged from the stack's last outputs. No Pulumi calls here; DeployedState applies them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from components import versions as v
from components.config import JUMP_HOSTS, NAMESPACE, ClusterConfig

READ_STACK_OUTPUTS = "pulumi:pulumi:readStackOutputs"
# The outputs the checks read (components/outputs.py exports them).
CONTROL_PLANES = "controlPlanePrivateIps"
WORKERS = "workerPrivateIps"
SSH_PUBLIC_KEY = "sshPublicKey"
POD_CIDR, SERVICE_CIDR = "podCidr", "serviceCidr"
KUBERNETES_VERSION, RUNTIME = "kubernetesVersion", "containerRuntime"
JUMP_HOST = "jumpHost"
CLOUD_PROVIDER, CLOUD_CLUSTER_NAME, STORAGE_CLASS = "cloudProvider", "cloudClusterName", "defaultStorageClass"
SERVING_CERTIFICATES = "kubeletServingCertificates"
READ = (CONTROL_PLANES, WORKERS, SSH_PUBLIC_KEY, POD_CIDR, SERVICE_CIDR, KUBERNETES_VERSION, RUNTIME, JUMP_HOST,
        CLOUD_PROVIDER, CLOUD_CLUSTER_NAME, STORAGE_CLASS, SERVING_CERTIFICATES)


def _patch(version: Any) -> tuple[int, int, int] | None:
    parts = version.split(".") if isinstance(version, str) else []
    return tuple(int(p) for p in parts) if len(parts) == 3 and all(p.isdigit() for p in parts) else None


def next_versions(deployed: str) -> list[str]:
    """The versions a cluster at `deployed` may move to, as kubeadm allows: a newer tested
    patch of its minor, or the next minor's tested patch (upgrades.md §5.6; kubeadm
    policy.go EnforceVersionPolicies, MaximumAllowedMinorVersionUpgradeSkew = 1)."""
    have = _patch(deployed)
    if have is None:
        return []
    return [patch for patch in sorted(v.KUBERNETES_PATCHES.values(), key=lambda p: _patch(p) or (0, 0, 0))
            if (want := _patch(patch)) and want > have and want[:2] in (have[:2], (have[0], have[1] + 1))]


def version_refusals(previous: Mapping[str, Any], cfg: ClusterConfig) -> list[str]:
    """Downgrades, jumps of two minors, and runtime switches: never possible in place."""
    problems = []
    deployed, wanted = previous.get(KUBERNETES_VERSION), cfg.kubernetes_patch
    have, want = _patch(deployed), _patch(wanted)
    if have and want and want != have:
        allowed = next_versions(deployed)
        hint = (f"the cluster can move to {' or '.join(allowed)} next" if allowed
                else "no newer tested version is listed in components/versions.py yet")
        if want < have:
            problems.append(f"{NAMESPACE}:kubernetesVersion: cannot go down from {deployed} to {wanted}: kubeadm "
                            f"has no downgrade; set it back to {deployed} ({hint})")
        elif want[:2] > (have[0], have[1] + 1):
            problems.append(f"{NAMESPACE}:kubernetesVersion: cannot jump from {deployed} to {wanted}: kubeadm "
                            f"upgrades one minor at a time; {hint}, then to {wanted} in a later `pulumi up`. "
                            f"{deployed} is the last version an upgrade completed: if one to a newer version "
                            "stopped half-way, set that version again and `pulumi up` finishes it first")
    old_runtime = previous.get(RUNTIME)
    if isinstance(old_runtime, str) and old_runtime and old_runtime != cfg.container_runtime:
        problems.append(f"{NAMESPACE}:containerRuntime: cannot switch a deployed cluster from {old_runtime} to "
                        f"{cfg.container_runtime} (every node's runtime, sandboxes and images would go); set it back "
                        "to " + old_runtime + ", or build a new stack with the other runtime and move the workloads")
    return problems


def cloud_provider_refusals(previous: Mapping[str, Any], cfg: ClusterConfig) -> list[str]:
    """The external cloud provider is fixed once the cluster exists: its kubelets registered
    with (or without) a providerID and the cloud controller's taint, and it may own load
    balancers. A stack deployed before the key existed keeps it off (DeployedState.settle)."""
    problems = []
    if previous.get(STORAGE_CLASS) and not cfg.cinder_csi:
        # Removing the driver strands every attached volume: it can no longer be unstaged or
        # detached, and the pods that use it hang when they stop.
        problems.append(f"{NAMESPACE}:cinderCsi: cannot turn Cinder CSI off on a deployed cluster (its volumes "
                        "would stay attached with no driver to unmount or detach them); set it back to true")
    had = previous.get(CLOUD_PROVIDER)
    if not isinstance(had, bool) or had == cfg.cloud_provider:
        return problems
    if had:
        problems.append(f"{NAMESPACE}:cloudProvider: cannot turn the cloud controller off on a deployed cluster "
                        "(its nodes are registered with OpenStack provider IDs, and its LoadBalancer Services' "
                        "Octavia load balancers would be left behind); set it back to true")
    else:
        problems.append(f"{NAMESPACE}:cloudProvider: cannot turn the cloud controller on for a cluster deployed "
                        "without it (its kubelets run without cloud-provider external and without provider IDs, "
                        "which katak8s does not yet change in place); set it back to false, or build a new stack "
                        "with it on (docs/openstack.md 'Cloud integration')")
    return problems


def metrics_refusals(previous: Mapping[str, Any], cfg: ClusterConfig) -> list[str]:
    """metrics-server needs kubelets that serve certificates the cluster CA signed, which only
    `kubeadm init` sets (the kubelet-config ConfigMap every node reads). Turning it off is
    allowed: the approver stays for the kubelets' renewals (components/kubernetes/metrics.py)."""
    if previous.get(SERVING_CERTIFICATES) is False and cfg.metrics_server:
        return [f"{NAMESPACE}:metricsServer: cannot turn metrics-server on for a cluster deployed without kubelet "
                "serving certificates (its kubelets sign their own, which metrics-server cannot verify, and "
                "katak8s never runs it with --kubelet-insecure-tls; serverTLSBootstrap is set only at `kubeadm "
                "init`); set it back to false, or build a new stack with it on (docs/kubernetes.md 'Metrics')"]
    return []


def version_notice(previous: Mapping[str, Any], cfg: ClusterConfig) -> str | None:
    """An allowed hop: say what the upgrade will do, before it does it."""
    deployed, wanted = previous.get(KUBERNETES_VERSION), cfg.kubernetes_patch
    have, want = _patch(deployed), _patch(wanted)
    if have and want and have < want and want[:2] <= (have[0], have[1] + 1):  # not refused above
        return (f"{NAMESPACE}:kubernetesVersion changes from {deployed} to {wanted}: this `pulumi up` upgrades "
                "the cluster in place, no server replaced. The first control plane runs `kubeadm upgrade "
                "apply`, the other control planes follow one at a time, then the workers "
                f"{cfg.upgrade_batch_size} at a time; each node is drained first (drainTimeoutSeconds "
                f"{cfg.drain_timeout_seconds}) and uncordoned after. If a step fails, `pulumi up` stops there "
                "and the next one resumes at that node (docs/operations.md 'Upgrading Kubernetes')")
    return None


def _key(line: str) -> str:
    """An OpenSSH public key without its comment: `type base64`."""
    return " ".join(line.split()[:2])


def _inside(ip: str, cidr: str) -> bool:
    try:
        return ipaddress.ip_address(ip) in ipaddress.ip_network(cidr)
    except ValueError:
        return True  # not an address we can judge (never trusted, never refused on)


def _ha(count: int) -> bool:
    return count > 1


def refusals(previous: Mapping[str, Any], cfg: ClusterConfig, *, ssh_public_key: str | None) -> list[str]:
    """Every change from `previous` (the stack's last outputs) that a live cluster can't take.

    Pure. `ssh_public_key` None means the new key is not known yet: on a deployed stack that
    happens only when a new key is being generated (the configured key was removed).
    Outputs of an unexpected shape are ignored, never trusted."""
    problems = [*version_refusals(previous, cfg), *cloud_provider_refusals(previous, cfg),
                *metrics_refusals(previous, cfg)]
    ips = previous.get(CONTROL_PLANES)
    if isinstance(ips, list) and ips and _ha(len(ips)) != _ha(cfg.control_plane_count):
        problems.append(
            f"{NAMESPACE}:controlPlaneCount: cannot move between 1 and 3 or 5 control planes on a deployed "
            f"cluster (the Kubernetes API endpoint would move and kubeadm cannot change it); the cluster "
            f"has {len(ips)}, got {cfg.control_plane_count}. Set it back to "
            f"{'1' if len(ips) == 1 else '3 or 5'}, or build a new stack for the other layout")
    # The node subnet, pod and service ranges are fixed once the cluster exists: a new
    # nodeCidr would move every node's address in place (a port's fixed_ip is updated, not
    # replaced: terraform-provider-openstack networking_port_v2), and kubeadm and Calico
    # cannot move the pod or service range of a live cluster.
    for key, ours in ((POD_CIDR, cfg.pod_cidr), (SERVICE_CIDR, cfg.service_cidr)):
        theirs = previous.get(key)
        if isinstance(theirs, str) and theirs and theirs != ours:
            problems.append(f"{NAMESPACE}:{key}: cannot change on a deployed cluster (it is {theirs}); set it "
                            f"back to {theirs}, got {ours!r}")
    addresses = [ip for k in (CONTROL_PLANES, WORKERS) if isinstance(previous.get(k), list) for ip in previous[k]]
    outside = [ip for ip in addresses if isinstance(ip, str) and not _inside(ip, cfg.node_cidr)]
    if outside:
        problems.append(f"{NAMESPACE}:nodeCidr: cannot change on a deployed cluster: the nodes have addresses "
                        f"outside it ({', '.join(outside[:3])}), which would change in place; set it back, got "
                        f"{cfg.node_cidr!r}")
    # A removed node's drain and reset run with the connection its state saved (through the
    # old jump host), while the move takes that route away early in the same `up` (cp-0's
    # port leaves the jump-host group as an in-place update): move first, then scale in.
    before = previous.get(JUMP_HOST) or (JUMP_HOSTS[1] if previous else None)
    moving = bool(cfg.jump_host) and before is not None and cfg.jump_host != before
    counts = [(k, len(previous[k]), n) for k, n in ((CONTROL_PLANES, cfg.control_plane_count),
                                                      (WORKERS, cfg.worker_count)) if isinstance(previous.get(k), list)]
    if moving and any(had > want for _, had, want in counts):
        problems.append(f"{NAMESPACE}:jumpHost: cannot move SSH to {cfg.jump_host} in the same `pulumi up` that "
                        f"removes nodes (a removed node is drained and reset through the old jump host); set "
                        f"workerCount / controlPlaneCount back, run `pulumi up` to move, then scale in")
    old_key = previous.get(SSH_PUBLIC_KEY)
    if isinstance(old_key, str) and old_key.strip():
        new_key = _key(ssh_public_key or "")
        accepted = bool(new_key) and new_key == _key(cfg.accept_ssh_public_key)
        if new_key != _key(old_key) and not accepted:
            problems.append(
                f"{NAMESPACE}:sshPrivateKey: the nodes accept only the key they were built with "
                f"({_key(old_key)[:40]}...), and this change would make every SSH step use "
                "another one. Set the previous key back; to rotate it, put the new public key on every node "
                f"first and set {NAMESPACE}:acceptSshPublicKey to it (docs/operations.md 'Rotating the SSH key')")
    return problems
