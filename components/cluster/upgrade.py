"""In-place Kubernetes upgrades: which command drains, upgrades and uncordons each node, and
in which order. No resource of its own.

An upgrade runs through the three commands every joined node already has, because each
holds the target version in its inputs and so runs again (an update runs `create` again:
pulumi-command commandController.go Update) when `kubernetesVersion` moves:

    cp-0          init         (replaced: its trigger is its program) the version gate, kubeadm-config's removed gates,
                               `kubeadm upgrade apply`, then cp-0 drained, its runtime,
                               kubelet and kubectl upgraded, uncordoned (kubeadm's order)
    each other    credentials  (on cp-0) cordon + drain the node, marked as the upgrade's
    node, in      join         (on the node) kubeadm, `kubeadm upgrade node`, CRI-O's minor or
    order                      the pause image, kubelet and kubectl, restart, wait
                  membership   (on cp-0) once the node runs the target and is Ready,
                               uncordon it if the upgrade cordoned it

The order is the graph's: the other control planes one at a time after cp-0, then the
workers in batches of `upgradeBatchSize`, each batch after the previous batch's
memberships (KubeadmCluster._chain). Every script checks the node's real state first and
skips what is done (scripts/remote/lib/upgrade.sh, scripts/remote/lib/node-upgrade.sh), so a failed step is
resumed by the next `pulumi up`: a failed update keeps its old inputs in the state, so the
engine runs it again, and the steps that succeeded do not run again.

Nothing is added per node (review: 19 resources per worker already, issue #15), and the
bootstrap phases that also carry the version (kube packages, the runtime) leave a joined
node's packages to these steps.
"""

from __future__ import annotations

from dataclasses import dataclass

from components import versions as v
from components.config import ClusterConfig

# Bound on a restarted kubelet reporting the new version, and on the node becoming Ready.
READY_TIMEOUT = 300
# The container runtime answering again after CRI-O's upgrade (as the runtime phase waits).
RUNTIME_WAIT_SECONDS = 120
# cp-0's init command carries a whole node's upgrade: kubeadm upgrade apply (its static pods
# have 5 min each to come up), a drain of up to drainTimeoutSeconds and the kubelet: one
# phase's 30 min would cut it short, and `timeout` kills kubeadm with it.
FIRST_CONTROL_PLANE_TIMEOUT = 3600
CONTROL_PLANE_BATCH = 1  # kubeadm: the other control planes one at a time (upgrades.md §1.4)


@dataclass(frozen=True, kw_only=True)
class UpgradeMarks:
    upgrade_target_annotation: str = v.UPGRADE_TARGET_ANNOTATION
    upgrade_cordon_annotation: str = v.UPGRADE_CORDON_ANNOTATION


@dataclass(frozen=True, kw_only=True)
class NodeUpgrade:
    """What the node half of an upgrade reads (scripts/remote/lib/node-upgrade.sh, kube.sh)."""

    kubernetes_repo_url: str
    container_runtime: str
    crio_repo_url: str  # "" under containerd
    ready_timeout: int
    runtime_wait_seconds: int


@dataclass(frozen=True, kw_only=True)
class ClusterUpgrade(UpgradeMarks):
    """What the first control plane's half reads (scripts/remote/lib/upgrade.sh drain_for_upgrade)."""

    drain_timeout: int
    upgrade_batch: int  # nodes the upgrade may hold cordoned at once, this one included


def node_upgrade(cfg: ClusterConfig) -> dict:
    return dict(
        kubernetes_repo_url=v.KUBERNETES_APT_REPO.format(minor=cfg.kubernetes_minor),
        container_runtime=cfg.container_runtime,
        crio_repo_url=v.CRIO_APT_REPO.format(minor=cfg.kubernetes_minor) if cfg.container_runtime == "crio" else "",
        ready_timeout=READY_TIMEOUT,
        runtime_wait_seconds=RUNTIME_WAIT_SECONDS,
    )


def cluster_upgrade(cfg: ClusterConfig, *, control_plane: bool) -> dict:
    return dict(drain_timeout=cfg.drain_timeout_seconds,
                upgrade_batch=CONTROL_PLANE_BATCH if control_plane else cfg.upgrade_batch_size)


def removed_gates(minor: str) -> tuple[str, ...]:
    """The kubeadm gates gone by `minor` (a cluster may still name one set years ago)."""
    def key(m: str) -> tuple[int, ...]:
        return tuple(int(x) for x in m.split("."))
    return tuple(g for m, gates in sorted(v.REMOVED_KUBEADM_GATES.items(), key=lambda kv: key(kv[0]))
                 if key(m) <= key(minor) for g in gates)


def observed_version(outputs: list[str], wanted: str, deployed: str | None = None) -> str:
    """The version every node runs, from what init and each membership read from the API
    (their `kubelet=vX.Y.Z` line): the lowest one seen. A step whose stdout has no such
    line (its state predates it, and `pulumi up --target` skipped it) counts as the last
    recorded version, `deployed`, or as `wanted` on a new stack. So the stack never records
    a version a node does not run."""
    def parse(out: str) -> str | None:
        for line in (out or "").splitlines():
            value = line.removeprefix("kubelet=v").strip() if line.startswith("kubelet=v") else ""
            if value.count(".") == 2 and all(p.isdigit() for p in value.split(".")):
                return value
        return None

    seen = [parse(out) or deployed or wanted for out in outputs] or [wanted]
    return min(seen, key=lambda x: tuple(int(p) if p.isdigit() else 0 for p in x.split(".")))


def batches(items: list, size: int) -> list[list]:
    """`items` in order, `size` at a time."""
    return [items[i:i + size] for i in range(0, len(items), size)]
