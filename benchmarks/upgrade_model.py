"""The modeled duration of an in-place Kubernetes upgrade (components/cluster/upgrade.py),
printed by benchmarks/bench.py: the steps the engine model (tests/engine_model.py) runs when
kubernetesVersion moves one minor, weighted by UPGRADE_DURATIONS over the upgraded graph's
longest dependency chain; every other step takes 0 s then."""

from __future__ import annotations

# An in-place upgrade (components/cluster/upgrade.py): seconds per step that runs when
# kubernetesVersion moves one minor; every other step of the graph takes 0 s then.
UPGRADE_DURATIONS: list[tuple[str, str, int, str]] = [
    ("command:remote:Command", "-kubeadm-init", 420,
     "cp-0: kubeadm upgrade apply (image pulls, etcd and three static pods restarted and checked, "
     "~4-5 min), drain, runtime + kubelet packages, restart, Ready"),
    ("command:remote:Command", "-join-credentials-", 60,
     "drain: evictions within PodDisruptionBudgets plus the default 30 s termination grace"),
    ("command:remote:Command", "cp-1-kubeadm-join", 180, "kubeadm upgrade node on a control plane: static pods"),
    ("command:remote:Command", "cp-2-kubeadm-join", 180, "as cp-1"),
    ("command:remote:Command", "cp-3-kubeadm-join", 180, "as cp-1"),
    ("command:remote:Command", "cp-4-kubeadm-join", 180, "as cp-1"),
    ("command:remote:Command", "-kubeadm-join", 90,
     "worker: kubeadm package, kubeadm upgrade node (kubelet config), runtime + kubelet/kubectl, restart, Ready"),
    ("command:remote:Command", "-membership-", 10, "Ready check and uncordon"),
    ("command:remote:Command", "-bootstrap", 25,
     "re-run of the runtime phase (repository switch, nothing installed on a joined node: 10 s) and the "
     "kube packages (repository switch + apt update, packages kept: 15 s); preflight and kernel are "
     "unchanged, so skipped on the node (scripts/remote/steps.sh)"),
    ("kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition", "", 15, "Calico CRDs, server-side apply"),
    ("kubernetes:helm.sh/v3:Release", "-operator", 45, "tigera-operator upgrade"),
    ("kubernetes:operator.tigera.io/v1:Installation", "", 240, "calico-node rolling update, one node at a time"),
]
UPGRADE_SIZE, UPGRADE_BATCHES = (3, 50), (1, 5)


def upgrade_seconds(cps: int, workers: int, batch: int) -> int:
    """Modeled duration of a one-minor upgrade (1.36 -> 1.37): the engine model's steps
    (tests/engine_model.py) weighted by UPGRADE_DURATIONS over the upgraded graph."""
    from bench import HELM_TEMPLATE, _graph, longest
    from engine_model import plan_steps
    from harness import run_program

    base = {"workerCount": workers, "controlPlaneCount": cps, "upgradeBatchSize": batch}
    old = _graph(workers, cps, kubernetesVersion="1.36", upgradeBatchSize=batch)
    new = run_program({**base, "kubernetesVersion": "1.37"}, stack="bench", deployed=old, overrides=HELM_TEMPLATE)
    running = {s.reg.urn for s in plan_steps(old, new) if s.op != "delete"}

    def seconds(reg) -> int:
        if reg.urn not in running:
            return 0
        return next((d for t, part, d, _ in UPGRADE_DURATIONS
                     if reg.type == t and (reg.name.endswith(part) or (part.endswith("-") and part in reg.name))), 0)

    return longest(new, seconds)
