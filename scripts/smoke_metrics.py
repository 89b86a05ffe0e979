"""The smoke test's checks of metrics-server (metricsServer, issue #17 §4): what `kubectl top
nodes` and `kubectl top pods` read, the metrics.k8s.io API.

- every node reports CPU and memory: metrics-server scraped each kubelet over TLS it
  verified (the kubelet's serving certificate was approved and signed by the cluster CA);
- the runc sample pods report usage;
- the Kata sample pods: reported, or SKIPped with the reason (docs/kubernetes.md "Metrics":
  under CRI-O the kubelet reads Kata pods through cAdvisor, which sees no container).

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


def _usage(item: dict) -> dict:
    return item.get("usage") or {}


def _pod_reported(item: dict) -> bool:
    containers = item.get("containers") or []
    return bool(containers) and all({"cpu", "memory"} <= set(_usage(c)) for c in containers)


def _absent(exc: ClientError) -> bool:
    """kubectl's words when the metrics.k8s.io API is not served (no metrics-server)."""
    text = str(exc).lower()
    return "the server doesn't have a resource type" in text or "could not find the requested resource" in text


def _poll(client: Client, nodes: list[str], kata: list[str], runc: list[str]) -> tuple[set, set]:
    """The nodes and pods metrics-server reports, once all are in or the attempts run out."""
    seen_nodes: set[str] = set()
    seen_pods: set[str] = set()
    for attempt in range(ATTEMPTS):
        if attempt:
            time.sleep(PAUSE_SECONDS)
        seen_nodes = {name(i) for i in client.list(NODE_METRICS) if {"cpu", "memory"} <= set(_usage(i))}
        seen_pods = {name(i) for i in client.list(POD_METRICS, demo.NAMESPACE) if _pod_reported(i)}
        if set(nodes) <= seen_nodes and set(runc) | set(kata) <= seen_pods:
            break
    return seen_nodes, seen_pods


def check_metrics(client: Client, nodes: list[str], kata: list[str], runc: list[str]) -> list[Result]:
    try:
        seen_nodes, seen_pods = _poll(client, nodes, kata, runc)
    except ClientError as exc:
        if _absent(exc):
            return [skip(c, "no metrics.k8s.io API (metricsServer false)") for c in CHECKS]
        return [Result(c, False, str(exc)) for c in CHECKS]
    hint = ("see `kubectl -n kube-system logs deploy/metrics-server` (x509 errors: a kubelet serving certificate "
            "not approved, `kubectl get csr`)")
    missing = sorted(set(nodes) - seen_nodes)
    results = [Result(NODES, not missing, f"missing: {', '.join(missing)}; {hint}" if missing
                      else f"{len(nodes)} nodes report CPU and memory")]
    missing = sorted(set(runc) - seen_pods)
    results.append(Result(RUNC_PODS, bool(runc) and not missing,
                          f"missing: {', '.join(missing) or 'no runc pods'}; {hint}" if missing or not runc
                          else f"{len(runc)} pods report CPU and memory"))
    missing = sorted(set(kata) - seen_pods)
    if missing or not kata:
        results.append(skip(KATA_PODS, f"no metrics for {', '.join(missing) or 'any Kata pod'}: a known Kata gap "
                                       "under CRI-O (docs/kubernetes.md 'Metrics')"))
    else:
        results.append(Result(KATA_PODS, True, f"{len(kata)} pods report usage measured inside their VMs "
                                               "(the VM's own overhead is not counted)"))
    return results
