"""The smoke test's checks of metrics-server (metricsServer, issue #17 §4): what `kubectl top
nodes` and `kubectl top pods` read, the metrics.k8s.io API.

- every node reports CPU and memory: metrics-server scraped each kubelet over TLS it
  verified (the kubelet's serving certificate was approved and signed by the cluster CA);
- the runc sample pods report usage;
- the Kata sample pods: reported, or a SKIP naming each pod without metrics and its node's
  runtime (docs/kubernetes.md "Metrics": expected under CRI-O, whose kubelet reads Kata pods
  through cAdvisor, which sees no container inside the VM; a Kata gap under containerd).

Without the APIService v1beta1.metrics.k8s.io (metricsServer false) all three are SKIPped.

metrics-server needs a scrape or two after it starts (--metric-resolution 15s), so each
check retries for about a minute. Everything goes through the Client.
"""

from __future__ import annotations

import time

from components.kubernetes import demo
from scripts.smoke_client import Client, ClientError, Result, name, skip

NODES = "kubectl top nodes: every node"
RUNC_PODS = "kubectl top pods: runc pods"
KATA_PODS = "kubectl top pods: Kata pods"
CHECKS = (NODES, RUNC_PODS, KATA_PODS)
NODE_METRICS, POD_METRICS = "nodes.metrics.k8s.io", "pods.metrics.k8s.io"
ATTEMPTS, PAUSE_SECONDS = 6, 10
METRICS_API = "v1beta1.metrics.k8s.io"
HINT = ("see `kubectl -n kube-system logs deploy/metrics-server` (x509 errors: a kubelet serving certificate "
        "not approved, `kubectl get csr`)")


def _usage(item: dict) -> dict:
    return item.get("usage") or {}


def _pod_reported(item: dict) -> bool:
    containers = item.get("containers") or []
    return bool(containers) and all({"cpu", "memory"} <= set(_usage(c)) for c in containers)


def _poll(client: Client, nodes: list[str], pods: list[str]) -> tuple[set, set]:
    """The nodes and pods metrics-server reports, once all are in or the attempts run out.
    An API error is retried too (a metrics API that just came up answers 503 for a while);
    the last one is raised when no attempt answered."""
    seen: tuple[set, set] | None = None
    error: ClientError | None = None
    for attempt in range(ATTEMPTS):
        if attempt:
            time.sleep(PAUSE_SECONDS)
        try:
            seen = ({name(i) for i in client.list(NODE_METRICS) if {"cpu", "memory"} <= set(_usage(i))},
                    {name(i) for i in client.list(POD_METRICS, demo.NAMESPACE) if _pod_reported(i)})
        except ClientError as exc:
            error = exc
            continue
        if set(nodes) <= seen[0] and set(pods) <= seen[1]:
            break
    if seen is None:
        raise error or ClientError("no attempt")
    return seen


def _runtime(node: dict) -> str:
    """containerd or cri-o, from the Node's containerRuntimeVersion ("containerd://2.1.4")."""
    return node.get("status", {}).get("nodeInfo", {}).get("containerRuntimeVersion", "").split("://")[0]


def check_metrics(client: Client, nodes: dict[str, dict], kata: list[dict], runc: list[dict]) -> list[Result]:
    """`nodes` by name; `kata` / `runc`: the running sample pods."""
    try:
        # Served or not is the APIService's existence: a registered but failing metrics API
        # answers list calls with the same "no resource type" as an absent one.
        client.get("apiservice", METRICS_API)
    except ClientError as exc:
        if "notfound" in str(exc).lower().replace(" ", ""):
            return [skip(c, f"no APIService {METRICS_API} (metricsServer false)") for c in CHECKS]
        return [Result(c, False, str(exc)) for c in CHECKS]
    runtime = {name(p): _runtime(nodes.get(p["spec"].get("nodeName", ""), {})) or "unknown" for p in kata}
    # Under CRI-O the kubelet reads pod stats from cAdvisor, which sees nothing inside a Kata
    # VM (docs/kubernetes.md "Metrics"): not waited for.
    awaited = [name(p) for p in runc] + [n for n, r in runtime.items() if r != "cri-o"]
    try:
        seen_nodes, seen_pods = _poll(client, list(nodes), awaited)
    except ClientError as exc:
        return [Result(c, False, f"{exc}; {HINT}") for c in CHECKS]
    missing = sorted(set(nodes) - seen_nodes)
    results = [Result(NODES, not missing, f"missing: {', '.join(missing)}; {HINT}" if missing
                      else f"{len(nodes)} nodes report CPU and memory")]
    missing = sorted({name(p) for p in runc} - seen_pods)
    results.append(Result(RUNC_PODS, bool(runc) and not missing,
                          f"missing: {', '.join(missing) or 'no running runc pods'}; {HINT}" if missing or not runc
                          else f"{len(runc)} pods report CPU and memory"))
    unreported = sorted(n for n in runtime if n not in seen_pods)
    if not kata:
        results.append(skip(KATA_PODS, "no running Kata sample pods"))
    elif unreported:
        # A Kata limitation, not the cluster's fault: named, with its node's runtime.
        results.append(skip(KATA_PODS, "no metrics for " + ", ".join(f"{n} ({runtime[n]})" for n in unreported)
                            + ": expected under cri-o, a Kata gap under containerd (docs/kubernetes.md 'Metrics')"))
    else:
        results.append(Result(KATA_PODS, True, f"{len(kata)} pods report usage measured inside their VMs "
                                               "(the VM's own overhead is not counted)"))
    return results
