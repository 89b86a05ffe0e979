"""What the last `pulumi up` deployed, read at preview, to refuse changes a live cluster can't take.

    deployed = DeployedState.read()                  # this stack's own last outputs
    deployed.check(cfg, ssh_public_key=...)          # raises ConfigError on a refusal

Some changes can be judged only against the deployed state: moving between 1 and 3/5
control planes (the API endpoint would move, review-pulumi F20) and a new SSH key (the
servers only accept the key they booted with, F6). The program asks the engine for the
stack's own last outputs with the builtin invoke `pulumi:pulumi:readStackOutputs`, the call
behind StackReference (pulumi/pulumi pkg/resource/deploy/builtins.go Invoke ->
readStackReference -> backendClient.GetStackOutputs). Invokes run for real at preview, and
a stack's outputs change only when an update finishes, so during an `up` they still
describe the previous one. A fresh stack has none.

The check is synchronous, like the SDK's own synchronous invokes (pulumi/runtime/invoke.py
`invoke` -> sync_await._sync_await): it runs before the key pair, the network and every
server are declared, so a refused change fails `pulumi preview` with one message and
`pulumi up --skip-preview` creates nothing but, at most, a generated SSH key in state.
Chosen over a dynamic provider, whose pickled class must be importable from the provider
process (pulumi/pulumi#7453, open), and over a StackReference resource, whose failure
reaches every dependent input as an exception.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.output import Unknown
from pulumi.runtime.sync_await import _sync_await

from components import naming
from components import versions as v
from components.config import JUMP_HOSTS, NAMESPACE, ClusterConfig, ConfigError

READ_STACK_OUTPUTS = "pulumi:pulumi:readStackOutputs"
# The outputs the checks read (components/outputs.py exports them).
CONTROL_PLANES = "controlPlanePrivateIps"
WORKERS = "workerPrivateIps"
SSH_PUBLIC_KEY = "sshPublicKey"
POD_CIDR, SERVICE_CIDR = "podCidr", "serviceCidr"
KUBERNETES_VERSION, RUNTIME = "kubernetesVersion", "containerRuntime"
JUMP_HOST = "jumpHost"
CLOUD_PROVIDER, CLOUD_CLUSTER_NAME, STORAGE_CLASS = "cloudProvider", "cloudClusterName", "defaultStorageClass"
READ = (CONTROL_PLANES, WORKERS, SSH_PUBLIC_KEY, POD_CIDR, SERVICE_CIDR, KUBERNETES_VERSION, RUNTIME, JUMP_HOST,
        CLOUD_PROVIDER, CLOUD_CLUSTER_NAME, STORAGE_CLASS)


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
    problems = version_refusals(previous, cfg) + cloud_provider_refusals(previous, cfg)
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


def resolve(value: pulumi.Input[Any]) -> Any:
    """The value of an Output now, or None while it is unknown (a resource being created,
    in preview). Pumps the event loop like a synchronous invoke."""
    got = _sync_await(pulumi.Output.from_input(value).future(with_unknowns=True))
    return None if isinstance(got, Unknown) else got


def stack_names() -> list[str]:
    """This stack's fully qualified name, then, on a legacy self-managed backend, its short one."""
    org = pulumi.get_organization() or "organization"
    names = [f"{org}/{pulumi.get_project()}/{pulumi.get_stack()}"]
    if org == "organization":
        names.append(pulumi.get_stack())
    return names


@dataclass(frozen=True)
class DeployedState:
    """The stack's own outputs from its last successful `pulumi up` (empty on a fresh stack)."""

    outputs: Mapping[str, Any]
    readable: bool = True  # False: the outputs could not be read, so nothing is known

    def jump_host(self, cfg: ClusterConfig) -> str:
        """Where SSH enters (components/openstack/jumphost.py): `jumpHost` when set; else the
        dedicated jump host on a new stack, and what a deployed stack has: a stack deployed
        before it (no `jumpHost` output) keeps its first control plane, and so does a stack
        whose outputs cannot be read (moving would re-run every step). Either way nothing
        is drained or replaced; the move re-runs every step once (connections change)."""
        if cfg.jump_host:
            return cfg.jump_host
        had = self.outputs.get(JUMP_HOST)
        if isinstance(had, str) and had in JUMP_HOSTS:
            return had
        if self.readable and not self.outputs:
            return JUMP_HOSTS[0]
        if self.readable:
            pulumi.log.warn(f"this stack keeps its first control plane as SSH jump host; set {NAMESPACE}:jumpHost "
                            "dedicated to move SSH off it to a small VM of its own (the next `pulumi up` re-runs "
                            "every step once; docs/operations.md 'The SSH jump host')")
        return JUMP_HOSTS[1]

    def settle(self, cfg: ClusterConfig, *, stack: str | None = None) -> ClusterConfig:
        """`cfg` with what the deployed stack fixes: the cloud controller stays off on a stack
        deployed before it (no `cloudProvider` output: turning it on would need every kubelet
        re-registered); the cloud cluster name stays the one first deployed. Outputs that
        cannot be read fix nothing (the configuration stands). `stack` is `<org>/<project>/<stack>`,
        this stack's by default."""
        stack = stack or stack_names()[0]
        had_name = self.outputs.get(CLOUD_CLUSTER_NAME)
        name = had_name if isinstance(had_name, str) and had_name else naming.cloud_cluster_name(
            cfg.cluster_name, stack)
        # Only a readable stack deployed before the key existed keeps it off. Unreadable
        # outputs change nothing: flipping it off there would delete a running controller,
        # its credential and the NodePort rule (review of 81acfc9, finding 1).
        legacy = self.readable and bool(self.outputs) and CLOUD_PROVIDER not in self.outputs
        on = cfg.cloud_provider
        if not self.readable and on:
            pulumi.log.warn(f"{NAMESPACE}:cloudProvider could not be checked against the deployed stack (its outputs "
                            "cannot be read): if this stack was deployed before katak8s managed the cloud "
                            f"controller, set {NAMESPACE}:cloudProvider false before this `pulumi up`")
        if legacy and on:
            pulumi.log.warn(f"{NAMESPACE}:cloudProvider stays off for this stack: it was deployed before katak8s "
                            "managed the OpenStack cloud controller, and turning it on needs every kubelet "
                            "re-registered with a provider ID, which katak8s does not do in place. Set "
                            f"{NAMESPACE}:cloudProvider false to say so (docs/openstack.md 'Cloud integration')")
            on = False
        return dataclasses.replace(cfg, cloud_provider=on, cloud_cluster_name=name)

    @property
    def kubernetes_version(self) -> str | None:
        """The version the last completed `up` recorded (None on a new stack)."""
        version = self.outputs.get(KUBERNETES_VERSION)
        return version if isinstance(version, str) and _patch(version) else None

    def upgrading(self, cfg: ClusterConfig) -> bool:
        """The cluster may run another Kubernetes version than `cfg` asks for: the stack moves
        to a new one, resumes an unfinished upgrade (a failed `up` records no new version), or
        its last outputs are unknown. Then the nodes take their turns one batch at a time
        (components/cluster/upgrade.py); assuming so when unknown is the safe side."""
        deployed = self.outputs.get(KUBERNETES_VERSION)
        return not self.readable or (isinstance(deployed, str) and deployed != cfg.kubernetes_patch)

    @staticmethod
    def read() -> DeployedState:
        """Pulumi Cloud and project-scoped self-managed backends name the stack
        `<org>/<project>/<stack>`; a legacy self-managed backend (state written before CLI
        3.61) accepts only `<stack>` (pkg/backend/diy/store.go legacyReferenceStore
        ParseReference), and its organization is always "organization" (diy/state.go).
        An invoke's error can be caught (pulumi/runtime/invoke.py do_rpc), so each name is
        tried in turn; when none answers, the checks are skipped with a warning."""
        errors = []
        for name in stack_names():
            try:
                result = pulumi.runtime.invoke(READ_STACK_OUTPUTS, {"name": name})
            except Exception as err:  # noqa: BLE001 reported below, with every name tried
                errors.append(f"{name}: {str(err).splitlines()[0][:200] if str(err) else type(err).__name__}")
                continue
            # The result holds the stack's secret outputs in plain text: keep only the plain
            # ones the checks read, and never log it.
            outputs = (result.value or {}).get("outputs")
            outputs = outputs if isinstance(outputs, Mapping) else {}
            return DeployedState({k: outputs[k] for k in READ if k in outputs})
        pulumi.log.warn("could not read this stack's last outputs, so changes a live cluster can't take "
                        "(controlPlaneCount between 1 and 3/5, a new sshPrivateKey) are NOT checked in this "
                        "run, and a Kubernetes upgrade, if any, takes the workers one batch at a time: "
                        + "; ".join(errors))
        return DeployedState({}, readable=False)

    def check(self, cfg: ClusterConfig, *, ssh_public_key: pulumi.Input[str]) -> None:
        """Raise ConfigError naming every refused change; return when there is none."""
        problems = refusals(self.outputs, cfg, ssh_public_key=resolve(ssh_public_key))
        if problems:
            raise ConfigError(problems)
        notice = version_notice(self.outputs, cfg)
        if notice:
            pulumi.log.warn(notice)
