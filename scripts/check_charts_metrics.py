"""The checks scripts/check_charts.py runs on the kubelet-csr-approver and metrics-server charts
(components/kubernetes/metrics.py), rendered with the program's values:

- kubelet-csr-approver renders one Deployment on the control planes, tolerating the cloud
  controller's uninitialized taint, whose environment carries the node-name regex and the
  IP prefixes exactly (the chart writes the regex unquoted into YAML: templates/
  deployment.yaml), with DNS resolution bypassed;
- metrics-server renders a Deployment of two replicas on the control planes that never runs
  with --kubelet-insecure-tls, its APIService, and a policy/v1 PodDisruptionBudget when asked
  (maxUnavailable 1, unhealthy pods always evictable).

Pure: each takes the rendered documents and returns the problems found.
"""

from __future__ import annotations

from collections.abc import Sequence

from components import versions as v
from components.kubernetes import metrics
from components.kubernetes.cloud_controller import UNINITIALIZED_TAINT

SAMPLE_PREFIXES = ("10.42.0.0/24", "203.0.113.7/32")
METRICS_API = "v1beta1.metrics.k8s.io"


def _deployments(docs: list[dict]) -> list[dict]:
    return [d for d in docs if d.get("kind") == "Deployment"]


def check_approver(docs: list[dict], cluster_name: str, prefixes: Sequence[str]) -> list[str]:
    name = f"{v.CSR_APPROVER_CHART} {v.CSR_APPROVER_CHART_VERSION}"
    deployments = _deployments(docs)
    if len(deployments) != 1:
        return [f"{name}: renders {len(deployments)} Deployments, expected one"]
    spec = deployments[0]["spec"]["template"]["spec"]
    problems = []
    if spec.get("nodeSelector", {}).get(v.CONTROL_PLANE_ROLE) != "":
        problems.append(f"{name}: not pinned to the control planes (nodeSelector {spec.get('nodeSelector')})")
    if UNINITIALIZED_TAINT not in {t.get("key") for t in spec.get("tolerations", [])}:
        problems.append(f"{name}: does not tolerate {UNINITIALIZED_TAINT} (it must run before the cloud "
                        "controller initialized the nodes)")
    env = {e["name"]: e.get("value") for c in spec.get("containers", []) for e in c.get("env", [])}
    want = {"PROVIDER_REGEX": metrics.node_name_regex(cluster_name), "PROVIDER_IP_PREFIXES": ",".join(prefixes),
            "BYPASS_DNS_RESOLUTION": "true"}
    for key, value in want.items():
        if env.get(key) != value:
            problems.append(f"{name}: {key} is {env.get(key)!r}, expected {value!r}")
    return problems


def check_metrics_server(docs: list[dict], budget: bool) -> list[str]:
    name = f"{v.METRICS_SERVER_CHART} {v.METRICS_SERVER_CHART_VERSION}"
    deployments = _deployments(docs)
    if len(deployments) != 1:
        return [f"{name}: renders {len(deployments)} Deployments, expected one"]
    deployment = deployments[0]
    problems = []
    if deployment["spec"]["template"]["spec"].get("nodeSelector", {}).get(v.CONTROL_PLANE_ROLE) != "":
        problems.append(f"{name}: not pinned to the control planes")
    if deployment["spec"].get("replicas") != 2:
        problems.append(f"{name}: {deployment['spec'].get('replicas')} replicas, expected 2")
    args = [a for c in deployment["spec"]["template"]["spec"].get("containers", []) for a in c.get("args", [])]
    if any(a.startswith("--kubelet-insecure-tls") for a in args):
        problems.append(f"{name}: runs with --kubelet-insecure-tls")
    if not any(a.startswith("--kubelet-preferred-address-types=InternalIP") for a in args):
        problems.append(f"{name}: does not prefer the nodes' InternalIP (args {args})")
    if not [d for d in docs if d.get("kind") == "APIService" and d["metadata"]["name"] == METRICS_API]:
        problems.append(f"{name}: no APIService {METRICS_API}")
    budgets = [d for d in docs if d.get("kind") == "PodDisruptionBudget"]
    if budget and not (budgets and budgets[0]["apiVersion"] == "policy/v1"
                       and budgets[0]["spec"].get("maxUnavailable") == 1
                       and budgets[0]["spec"].get("unhealthyPodEvictionPolicy") == "AlwaysAllow"):
        problems.append(f"{name}: no policy/v1 PodDisruptionBudget with maxUnavailable 1 and "
                        f"unhealthyPodEvictionPolicy AlwaysAllow ({budgets})")
    if not budget and budgets:
        problems.append(f"{name}: renders a PodDisruptionBudget it was not asked for")
    return problems
