"""The smoke test's probes: short-lived pods that prove what the sample pods cannot.

- A caller in kata-demo whose egress to kata-app is allowed (demo.CALLER_LABELS) but which
  lacks the client label: kata-app's ingress rule alone must turn it away (review-k8s K5).
- In a namespace of their own with no NetworkPolicy (katak8s-smoke), a Kata pod asks the
  metadata service: only the node's nftables guard stands in the way (K4). A privileged
  hostNetwork pod on the same node reads the guard's drop counters before and after, and
  asks the metadata service from the node itself as the positive control (the guard lets
  root on the node through: scripts/remote/node/10-kernel.sh guard_rules).

Pure with respect to the cluster, like smoke_checks: everything goes through its Client.
Every object is created at the start of a run and deleted at its end; leftovers of an
interrupted run are deleted first.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from components import versions as v
from components.kubernetes import demo
from components.kubernetes.samples import CLIENT_RESOURCES, NOBODY, restricted_container
from scripts.smoke_client import (
    CURL_TIMEOUT,
    EXEC_TIMEOUT,
    METADATA_URL,
    PROBE_SECONDS,
    SERVICE_URL,
    Client,
    ClientError,
    Result,
    blocked,
    curl,
)

REFUSED = "kata-app refuses a caller without the client label"
NODE_ANSWERS = "metadata answers on the node (positive control)"
POD_BLOCKED = "metadata unreachable from a pod without NetworkPolicies"
GUARD_DROPPED = "the node's metadata guard dropped that request"
CHECKS = (REFUSED, NODE_ANSWERS, POD_BLOCKED, GUARD_DROPPED)

NAMESPACE = "katak8s-smoke"
CALLER, GUARD, NODE = "smoke-caller", "guard-probe", "node-probe"
READY_SECONDS = 600  # a Kata sandbox under nested virtualization (samples.AWAIT_TIMEOUT_SECONDS / 2)
SMOKE_LABEL = {"katak8s.io/smoke": "true"}
GUARD_TABLE = ("inet", "katak8s_guard")  # scripts/remote/node/10-kernel.sh guard_rules
GUARD_CHAIN = "forward"  # the chain that drops pods' packets (the output chain is the node's own)
TOLERATE_ALL = [{"operator": "Exists"}]  # probes go beside the sample pod they are compared with


# Any answer from the API server's Service (curl exits 0 on 401/403 without -f): the probe
# pod has a working network, DNS and Service routing, so a metadata timeout is a drop.
API_URL = "https://kubernetes.default.svc/healthz"
SA_RETRIES = 30  # a new namespace's `default` ServiceAccount: the admission plugin needs it


def _on(node: str) -> dict[str, Any]:
    # spec.nodeName, not a hostname nodeSelector: the node's name is what the sample pod reports.
    return {"nodeName": node, "tolerations": TOLERATE_ALL}


def _pod(name: str, namespace: str, labels: dict[str, str], spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {**SMOKE_LABEL, **labels}},
        "spec": {"automountServiceAccountToken": False, "terminationGracePeriodSeconds": 1, **spec},
    }


def probe_namespace() -> dict[str, Any]:
    """No NetworkPolicy, and Pod Security `privileged`: the node probe needs the host."""
    psa = "pod-security.kubernetes.io"
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": NAMESPACE, "labels": {**SMOKE_LABEL, f"{psa}/enforce": "privileged"}},
    }


def caller_probe(node: str) -> dict[str, Any]:
    """A Kata pod in kata-demo (Pod Security `restricted` there) with the caller label only."""
    labels = {demo.APP_LABEL: CALLER, **demo.CALLER_LABELS}
    return _pod(CALLER, demo.NAMESPACE, labels, {
        "runtimeClassName": v.KATA_HANDLER,
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [restricted_container("probe", ["pause"], CLIENT_RESOURCES, None)],
        **_on(node),
    })


def guard_probe(node: str) -> dict[str, Any]:
    """A Kata pod on the pod network with nothing but the node guard between it and 169.254.169.254."""
    return _pod(GUARD, NAMESPACE, {demo.APP_LABEL: GUARD}, {
        "runtimeClassName": v.KATA_HANDLER,
        "securityContext": {"runAsNonRoot": True, "runAsUser": NOBODY},
        "containers": [restricted_container("probe", ["pause"], CLIENT_RESOURCES, None)],
        **_on(node),
    })


def node_probe(node: str) -> dict[str, Any]:
    """runc, hostNetwork, root with two capabilities, the host's / read-only at /host: reads
    the guard's counters (`chroot /host nft`) and asks the metadata service as root on the
    node (the guard lets root through)."""
    return _pod(NODE, NAMESPACE, {demo.APP_LABEL: NODE}, {
        "hostNetwork": True,
        "containers": [{
            "name": "probe",
            "image": v.AGNHOST_IMAGE,
            "args": ["pause"],
            "resources": CLIENT_RESOURCES,
            # Not privileged: nft needs CAP_NET_ADMIN (in the host's network namespace),
            # `chroot /host` CAP_SYS_CHROOT, and nothing else.
            "securityContext": {"runAsUser": 0, "allowPrivilegeEscalation": False,
                                "capabilities": {"drop": ["ALL"], "add": ["NET_ADMIN", "SYS_CHROOT"]}},
            "volumeMounts": [{"name": "host", "mountPath": "/host", "readOnly": True}],
        }],
        "volumes": [{"name": "host", "hostPath": {"path": "/", "type": "Directory"}}],
        **_on(node),
    })


def nft_argv() -> list[str]:
    return ["chroot", "/host", "nft", "-j", "list", "table", *GUARD_TABLE]


def guard_drops(nft_json: str) -> int:
    """Packets the guard's forward chain has dropped, from `nft -j list table` (libnftables
    JSON: {"nftables": [..., {"rule": {"chain": ..., "expr": [..., {"counter":
    {"packets": N, "bytes": M}}, {"drop": null}]}}]}). ValueError when it is not that."""
    try:
        items = json.loads(nft_json)["nftables"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"not nft JSON: {exc}") from exc
    drops, rules = 0, 0
    try:
        for item in items:
            rule = item.get("rule") if isinstance(item, dict) else None
            if not rule or rule.get("chain") != GUARD_CHAIN:
                continue
            exprs = rule.get("expr", [])
            if any(isinstance(e, dict) and "drop" in e for e in exprs):
                rules += 1
                drops += sum(int(e["counter"]["packets"]) for e in exprs if isinstance(e, dict) and "counter" in e)
    except (AttributeError, KeyError, TypeError, ValueError) as exc:  # e.g. a named counter reference
        raise ValueError(f"unexpected nft JSON: {exc!r}") from exc
    if not rules:
        raise ValueError(f"no drop rule in chain {GUARD_CHAIN}")
    return drops


def _cleanup(client: Client, *, wait: bool) -> None:
    client.delete("pod", CALLER, demo.NAMESPACE, wait=wait)
    client.delete("namespace", NAMESPACE, wait=wait)


def _create_pod(client: Client, pod: dict[str, Any], sleep: Callable[[float], None]) -> None:
    """A pod in a namespace created a moment ago can be refused until the controller manager
    has made its `default` ServiceAccount (the ServiceAccount admission plugin looks it up):
    retried, bounded, on that error only."""
    for attempt in range(SA_RETRIES):
        try:
            client.create(pod)
            return
        except ClientError as exc:
            if "serviceaccount" not in str(exc).lower() or attempt == SA_RETRIES - 1:
                raise
            sleep(1)


def _start(client: Client, node: str, sleep: Callable[[float], None], clock: Callable[[], float]) -> list[str]:
    """Creates the probes beside `node`; returns the ones not Ready by one shared deadline."""
    _cleanup(client, wait=True)  # an interrupted run's leftovers
    client.create(probe_namespace())
    pods = [caller_probe(node), guard_probe(node), node_probe(node)]
    for pod in pods:
        _create_pod(client, pod, sleep)
    deadline = clock() + READY_SECONDS
    return [
        f"{p['metadata']['namespace']}/{p['metadata']['name']}"
        for p in pods
        if not client.wait_ready(p["metadata"]["namespace"], p["metadata"]["name"],
                                 max(int(deadline - clock()), PROBE_SECONDS))
    ]


def _drops(client: Client) -> int:
    res = client.exec(NAMESPACE, NODE, nft_argv(), EXEC_TIMEOUT)
    if res.rc != 0:
        raise ValueError(f"nft exit {res.rc}: {res.stderr.strip() or 'no output'} (is the guard loaded?)")
    return guard_drops(res.stdout)


def _probe(client: Client, node: str) -> list[Result]:
    caller = curl(client, demo.NAMESPACE, CALLER, SERVICE_URL)
    out = [Result(REFUSED, caller.rc == CURL_TIMEOUT,
                  f"{CALLER} -> {demo.KATA_APP}: curl exit {caller.rc} (want {CURL_TIMEOUT}, a policy drop)")]
    host = curl(client, NAMESPACE, NODE, METADATA_URL)
    out.append(Result(NODE_ANSWERS, host.rc == 0 and '"uuid"' in host.stdout,
                      f"{node}: " + ("meta_data.json served" if host.rc == 0 else f"curl exit {host.rc}")
                      + " (without it the next two prove nothing)"))
    try:
        before = _drops(client)
    except ValueError as exc:
        before, error = None, str(exc)
    api = client.exec(NAMESPACE, GUARD, ["curl", "-sSk", "-m", str(PROBE_SECONDS), "-o", "/dev/null", API_URL],
                      EXEC_TIMEOUT)
    pod = curl(client, NAMESPACE, GUARD, METADATA_URL)
    out.append(Result(POD_BLOCKED, api.rc == 0 and blocked(pod),
                      f"{NAMESPACE}/{GUARD} -> 169.254.169.254: curl exit {pod.rc}; -> the API service: "
                      + ("answered (the pod's network works)" if api.rc == 0 else f"curl exit {api.rc}, so "
                         "the timeout proves nothing")))
    try:
        after = _drops(client) if before is not None else None
    except ValueError as exc:
        after, error = None, str(exc)
    if before is None or after is None:
        out.append(Result(GUARD_DROPPED, False, f"{node}: cannot read the guard's counters: {error}"))
    else:
        out.append(Result(GUARD_DROPPED, blocked(pod) and after > before,
                          f"{node}: {GUARD_CHAIN} drops {before} -> {after}"))
    return out


def _run(client: Client, node: str, sleep: Callable[[float], None], clock: Callable[[], float]) -> list[Result]:
    try:
        not_ready = _start(client, node, sleep, clock)
        if not_ready:
            return [Result(c, False, f"probe pods not Ready within {READY_SECONDS}s: {', '.join(not_ready)} "
                           f"(kubectl -n {NAMESPACE} describe pods)") for c in CHECKS]
        return _probe(client, node)
    except ClientError as exc:
        return [Result(c, False, f"probes: {exc}") for c in CHECKS]


def check_probes(client: Client, node: str | None, *, sleep: Callable[[float], None] | None = None,
                 clock: Callable[[], float] | None = None) -> list[Result]:
    """The four probe checks, run beside `node` (a node that runs a kata-app pod: its image
    is there already). The probes are deleted at the end, whatever happened."""
    if node is None:
        return [Result(c, False, "no running kata-app pod to place the probes beside") for c in CHECKS]
    leftover: ClientError | None = None
    try:
        results = _run(client, node, sleep or time.sleep, clock or time.monotonic)
    finally:
        try:
            _cleanup(client, wait=False)
        except ClientError as exc:
            leftover = exc
    if leftover is not None:
        results.append(Result("probes removed", False, f"{leftover}; delete them: kubectl delete namespace "
                              f"{NAMESPACE}; kubectl -n {demo.NAMESPACE} delete pod {CALLER}"))
    return results
