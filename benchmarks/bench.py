#!/usr/bin/env python3
"""Benchmark: evaluation cost, critical path and modeled time-to-ready per cluster size.

    venv/bin/python benchmarks/bench.py            # prints a table, writes benchmarks/out/results.json

Each size is evaluated in a fresh interpreter under Pulumi's mock runtime (the same
harness as the tests and the offline plan), with the real dependency graph. Figures:

- eval_s / peak_mb: wall time and peak RSS of one evaluation (`pulumi preview`'s floor);
- resources: how many resources the stack declares;
- critical_phases: the most remote SSH phases (command:remote:Command) that must run one
  after another before the Kubernetes layer can start;
- modeled_ready_s: the longest path through the graph weighted by DURATIONS below;
- upgrade: the modeled duration of a one-minor upgrade at 3+50 per upgradeBatchSize
  (UPGRADE_DURATIONS over the steps the engine model runs);
- stability: resources whose inputs differ between two evaluations of one config; existing
  resources whose inputs differ when workerCount goes N -> N+1; node phases whose trigger
  changes when only kataVersion changes.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
import warnings
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "benchmarks")]

import report  # noqa: E402 (benchmarks/report.py: the printed figures and which targets they miss)
import schedule  # noqa: E402 (benchmarks/schedule.py: bounded parallelism, SSH sessions, state)
from upgrade_model import UPGRADE_BATCHES, UPGRADE_SIZE, upgrade_seconds  # noqa: E402

SIZES = [(1, 2), (3, 50), (3, 200)]
# The engine's parallelism the model runs at: a 2-core operator machine's default
# (4 x GOMAXPROCS), a CI runner's --parallel 64, and effectively unbounded.
PARALLELISM = (8, 64, 512)
RECOMMENDED_PARALLEL = 64  # README "Benchmark"; .github/workflows/deploy.yml sets it

# Seconds per step, matched on the resource type and a part of its name (first match
# wins; an empty part matches every resource of the type). Each figure is
# an estimate for a nested-virtualization-capable OpenStack cloud with a nearby Ubuntu
# mirror; change them here and the model follows.
DURATIONS: list[tuple[str, str, int, str]] = [
    ("openstack:compute/instance:Instance", "", 60,
     "Nova boot to sshd accepting connections on an Ubuntu cloud image (typically 30-90 s)"),
    ("openstack:loadbalancer/loadBalancer:LoadBalancer", "", 150,
     "Octavia amphora LB to ACTIVE (Octavia docs: amphora boot dominates, 1-3 min)"),
    ("command:remote:CopyToRemote", "-scripts", 5,
     "SFTP of scripts/remote (~30 files, ~130 KB) through the jump host: a few round trips per file "
     "(pulumi-command copyDir is sequential), at ~50 ms from a remote runner"),
    ("command:remote:Command", "-bootstrap", 120,
     "its four phases in order: preflight 10 s (reads /proc, /dev/kvm, modprobe --dry-run); kernel 20 s "
     "(cloud-init status --wait: our user data installs nothing, so it ends seconds after sshd; modprobe, "
     "sysctl); runtime 45 s (apt-get install containerd or cri-o, ~40 MB, + config); kube packages 45 s "
     "(pkgs.k8s.io repo + kubeadm/kubelet/kubectl/cri-tools/kubernetes-cni, ~100 MB; image pre-pull on CPs)"),
    ("command:remote:Command", "-kata", 75,
     "download kata-static (969 MB) at ~50 MB/s (~20 s), unpack ~2.5 GB (~20 s), first sandbox VM (~20 s)"),
    ("command:remote:Command", "-init", 90, "kubeadm init with pre-pulled images until /readyz (60-120 s)"),
    ("command:remote:Command", "-kubeconfig", 2, "cat admin.conf"),
    ("command:remote:Command", "-join-credentials-", 3, "kubeadm token create + CA hash (+ upload-certs)"),
    ("command:remote:Command", "-kubeadm-join", 45, "kubeadm join: TLS bootstrap, kubelet start (CP joins add etcd)"),
    ("command:remote:Command", "-membership-", 10, "wait for the Node object to register"),
    ("kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition", "", 15,
     "server-side apply of the Calico CRDs (helm template, no pods) until each is Established"),
    ("kubernetes:helm.sh/v3:Release", "-operator", 45,
     "helm install of tigera-operator + await of its one Deployment (operator image pull)"),
    ("kubernetes:helm.sh/v3:Release", "-cloud-controller-release", 5,
     "helm install of the openstack-cloud-controller-manager chart (a DaemonSet and its RBAC): helm's wait "
     "passes at once, the DaemonSet desiring no pod while the nodes are NotReady (helm ready.go)"),
    ("command:remote:Command", "-cloud-initialized", 90,
     "beside the Installation: calico-node makes the nodes Ready (image pulls), the controller's pod pulls "
     "its image (~40 MB) and starts, and it initializes every node (seconds each)"),
    ("kubernetes:helm.sh/v3:Release", "-cinder-csi-release", 60,
     "cinder-csi controller (one pod, sidecar pulls) and node plugin DaemonSet ready"),
    ("kubernetes:helm.sh/v3:Release", "-csr-approver", 30,
     "kubelet-csr-approver beside the cloud controller: a small image (~20 MB) on the control planes, two "
     "replicas until Ready (it tolerates the uninitialized taint)"),
    ("kubernetes:helm.sh/v3:Release", "-metrics-server", 60,
     "metrics-server after the approver, beside the cloud controller: image pull (~20 MB), then Ready after its "
     "first scrapes (readiness initialDelaySeconds 20, metric-resolution 15 s) of kubelets whose certificates "
     "the approver approved"),
    ("openstack:identity/applicationCredential:ApplicationCredential", "", 2, "one Keystone API call"),
    ("kubernetes:operator.tigera.io/v1:Installation", "", 90,
     "calico-node + typha rollout with image pulls until the Installation is Ready"),
    ("kubernetes:apps/v1:Deployment", "", 45,
     "agnhost pull (~50 MB) + first Kata VM boot under nested virt until the pods are Ready"),
]
PHASE_NAMES = ("preflight", "kernel", "runtime", "kata", "kube-packages")



def duration(typ: str, name: str) -> int:
    for t, part, seconds, _why in DURATIONS:
        if typ == t and (name.endswith(part) or (part.endswith("-") and part in name)):
            return seconds
    return 0


# `helm template` of the Calico CRD chart, in miniature: the mocks render nothing by default,
# which would leave the CRD step out of the modeled path. One CRD stands for the chart.
_CRD = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "installations.operator.tigera.io"},
        "spec": {"group": "operator.tigera.io", "names": {"kind": "Installation", "plural": "installations"},
                 "scope": "Cluster", "versions": [{"name": "v1", "served": True, "storage": True,
                                                   "schema": {"openAPIV3Schema": {"type": "object"}}}]}}
HELM_TEMPLATE = {"kubernetes:helm:template": lambda _args: {"result": [_CRD]}}


def _graph(workers: int, cps: int, record: bool = True, **extra):
    from harness import run_program

    warnings.simplefilter("ignore", DeprecationWarning)
    return run_program({"workerCount": workers, "controlPlaneCount": cps, **extra}, stack="bench",
                       record=record, overrides=HELM_TEMPLATE)


def sdk_floor(count: int = 400) -> float:
    """Milliseconds the Pulumi SDK itself spends per resource: `count` trivial remote
    Commands with plain inputs, nothing of katak8s. The program cannot go below this."""
    import pulumi_command as command
    from harness import run_program

    def declare() -> None:
        for i in range(count):
            command.remote.Command(f"c{i}", connection={"host": "192.0.2.1"}, create="true")

    warnings.simplefilter("ignore", DeprecationWarning)
    run_program(fn=declare, record=False)  # warm-up: imports, first-use caches
    t0 = time.process_time()
    run_program(fn=declare, record=False)
    return round((time.process_time() - t0) * 1000 / count, 2)


def _edges(graph) -> dict[str, set[str]]:
    """urn -> urns it waits for; a component stands for its descendants."""
    children: dict[str, list[str]] = {}
    for r in graph:
        children.setdefault(r.parent, []).append(r.urn)

    @lru_cache(maxsize=None)
    def leaves(urn: str) -> frozenset[str]:
        reg = graph.by_urn.get(urn)
        if reg is None or reg.custom:
            return frozenset([urn])
        out: set[str] = set()
        for c in children.get(urn, []):
            out |= leaves(c)
        return frozenset(out)

    edges: dict[str, set[str]] = {}
    for r in graph:
        deps = set(r.dependencies)
        for d in r.property_dependencies.values():
            deps |= set(d)
        if r.provider:  # "<provider urn>::<id>": a resource waits for its explicit provider
            deps.add(r.provider.rsplit("::", 1)[0])
        expanded: set[str] = set()
        for d in deps:
            expanded |= leaves(d)
        edges[r.urn] = expanded - {r.urn}
    return edges


def longest(graph, seconds) -> int:
    """Seconds of the longest dependency chain, each resource weighted by `seconds(reg)`."""
    edges = _edges(graph)
    sys.setrecursionlimit(10000)

    @lru_cache(maxsize=None)
    def up_to(urn: str) -> int:
        reg = graph.by_urn[urn]
        return seconds(reg) + max((up_to(d) for d in edges.get(urn, ()) if d in graph.by_urn), default=0)

    return max(up_to(r.urn) for r in graph)


def critical_path(graph) -> tuple[int, int, list[str]]:
    """(remote phases on the longest chain, modeled seconds, that chain's names) up to the
    first Kubernetes object: the start of the Kubernetes layer."""
    edges = _edges(graph)
    sys.setrecursionlimit(10000)

    @lru_cache(maxsize=None)
    def longest(urn: str) -> tuple[int, int, tuple[str, ...]]:
        reg = graph.by_urn[urn]
        best = (0, 0, ())
        for dep in edges.get(urn, ()):
            if dep in graph.by_urn:
                cand = longest(dep)
                if (cand[1], cand[0]) > (best[1], best[0]):
                    best = cand
        is_phase = int(reg.type == "command:remote:Command")
        step = duration(reg.type, reg.name)
        shown = (f"{reg.name} ({step} s)",) if step else ()
        return best[0] + is_phase, best[1] + step, best[2] + shown

    k8s = [r.urn for r in graph if r.type.startswith("kubernetes:") and r.custom]
    ready_targets = k8s or [r.urn for r in graph]
    # Phases up to the layer's start; seconds up to its end (the slowest object ready).
    start = max((longest(u) for u in ready_targets if graph.by_urn[u].type == "pulumi:providers:kubernetes"),
                default=max(longest(u) for u in ready_targets))
    end = max((longest(u) for u in ready_targets), key=lambda t: t[1])
    return start[0], end[1], list(end[2])


def stability(workers: int, cps: int) -> dict:
    from harness import unsecret

    a, b = _graph(workers, cps), _graph(workers, cps)
    same = sum(1 for r in a if unsecret(r.inputs) != unsecret(b.by_urn[r.urn].inputs)) if \
        set(a.by_urn) == set(b.by_urn) else -1
    grown = _graph(workers + 1, cps)
    changed_existing = sorted(r.name for r in a if r.urn in grown.by_urn and
                              unsecret(r.inputs) != unsecret(grown.by_urn[r.urn].inputs))
    # A hypothetical next release; its checksum is a stand-in (mocks download nothing).
    kata = _graph(workers, cps, kataVersion="4.2.0", kataSha256="0" * 64)
    trig = [r for r in a if r.type == "command:remote:Command"]
    kata_changed = sorted(r.name for r in trig
                          if r.inputs.get("triggers") != kata.by_urn[r.urn].inputs.get("triggers"))
    return {"re_eval_changed": same, "scale_out_changed_existing": changed_existing,
            "kata_version_changed_phases": kata_changed, "per_worker": schedule.per_node(a, grown)}


def measure_one(cps: int, workers: int) -> dict:
    # Timed without the harness's recording (what `pulumi preview` runs: program + SDK),
    # including the interpreter's imports; the graph comes from a second, recorded run.
    t0 = time.perf_counter()
    _graph(workers, cps, record=False)
    elapsed = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    graph = _graph(workers, cps)
    phases, seconds, chain = critical_path(graph)
    edges = _edges(graph)
    runs = {p: schedule.simulate(graph, edges, lambda r: duration(r.type, r.name), p) for p in PARALLELISM}
    sessions = schedule.ssh_sessions(graph)
    return {"size": f"{cps}+{workers}", "eval_s": round(elapsed, 2), "peak_mb": round(peak, 1),
            "resources": len(graph), "critical_phases": phases, "modeled_ready_s": seconds,
            "critical_chain": chain,
            "ready_s_by_parallel": {str(p): r.makespan_s for p, r in runs.items()},
            "peak_ssh_by_parallel": {str(p): r.peak_ssh for p, r in runs.items()},
            "ssh_steps": runs[PARALLELISM[0]].ssh_steps,
            "jump_host_sessions_held": sessions.held_with_leak,
            "state_mb": round(schedule.state_bytes(graph) / 1e6, 1)}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--one", nargs=2, type=int, metavar=("CPS", "WORKERS"), help=argparse.SUPPRESS)
    parser.add_argument("--floor", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--upgrade", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out" / "results.json")
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure_one(*args.one)))
        return 0
    if args.floor:
        print(json.dumps({"sdk_ms_per_resource": sdk_floor()}))
        return 0
    if args.upgrade:
        print(json.dumps({str(b): upgrade_seconds(*UPGRADE_SIZE, b) for b in UPGRADE_BATCHES}))
        return 0
    rows = []
    for cps, workers in SIZES:  # a fresh interpreter per size: honest peak memory
        out = subprocess.run([sys.executable, __file__, "--one", str(cps), str(workers)],
                             capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    floor = json.loads(subprocess.run([sys.executable, __file__, "--floor"], capture_output=True, text=True,
                                      check=True).stdout.strip().splitlines()[-1])["sdk_ms_per_resource"]
    upgrade = json.loads(subprocess.run([sys.executable, __file__, "--upgrade"], capture_output=True, text=True,
                                        check=True).stdout.strip().splitlines()[-1])
    stable = stability(2, 1)
    misses = report.misses(rows, stable)
    report.show(rows, floor=floor, upgrade=upgrade, stable=stable, misses=misses, parallelism=PARALLELISM,
                recommended=RECOMMENDED_PARALLEL, upgrade_size=UPGRADE_SIZE)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "sizes": rows, "stability": stable,
                                    "sdk_ms_per_resource": floor,
                                    "upgrade_seconds": {"size": "%d+%d" % UPGRADE_SIZE, "by_batch": upgrade},
                                    "recommended_parallel": RECOMMENDED_PARALLEL,
                                    "durations": [{"type": t, "name_part": s, "seconds": d, "why": w}
                                                  for t, s, d, w in DURATIONS],
                                    "targets_missed": misses}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
