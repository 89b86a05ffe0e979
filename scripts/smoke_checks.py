"""The smoke test's logic: checks over a small cluster-client interface, and the table.

Pure with respect to the cluster: everything goes through `Client` (smoke_client), so the
tests run every check against a fake cluster (tests/test_smoke_test.py), each check
failing at least once; scripts/smoke_test.py provides the kubectl implementation. The
probe pods' checks are in smoke_probes. docs/kubernetes.md lists what each check proves.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Sequence

from components import versions as v
from components.kubernetes import demo
from scripts.smoke_client import (
    CURL_TIMEOUT,
    EXEC_TIMEOUT,
    SERVICE_URL,
    Client,
    ClientError,
    ExecResult,
    Result,
    curl,
    name,
    skip,
)
from scripts.smoke_metrics import check_metrics
from scripts.smoke_probes import check_probes
from scripts.smoke_public import check_load_balancer
from scripts.smoke_volumes import check_volumes

__all__ = ["Client", "ClientError", "ExecResult", "Result", "render_table", "run_checks"]

# More than the pods' 1400-byte MTU in each direction: the query goes out in full-size
# segments and /echo sends it back (agnhost netexec), so an MTU black hole on the VXLAN
# path between two nodes times out instead of passing on a few-byte reply.
PAYLOAD = (string.ascii_lowercase + string.digits) * 84  # 3024 URL-safe bytes
SPREAD, CROSS_NODE = "kata-app pods on different nodes", "large payload crosses nodes intact"


def _ready(node: dict) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in node.get("status", {}).get("conditions", [])
    )


def _kata_labeled(node: dict) -> bool:
    return node["metadata"].get("labels", {}).get(v.KATA_NODE_LABEL) == "true"


def check_nodes(nodes: list[dict]) -> list[Result]:
    not_ready = sorted(name(n) for n in nodes if not _ready(n))
    # Every node registers with the label (components/cluster/kubeadm.py KATA_LABELS), after its
    # own Kata smoke test passed: a node without it was not made by katak8s's join.
    unlabeled = sorted(name(n) for n in nodes if not _kata_labeled(n))
    return [
        Result(
            "all nodes Ready",
            bool(nodes) and not not_ready,
            f"{len(nodes) - len(not_ready)}/{len(nodes)} Ready"
            + (f"; not Ready: {', '.join(not_ready)}" if not_ready else ""),
        ),
        Result(
            "kata label on every node",
            bool(nodes) and not unlabeled,
            f"{v.KATA_NODE_LABEL}=true on {len(nodes) - len(unlabeled)}/{len(nodes)}"
            + (f"; missing on {', '.join(unlabeled)}" if unlabeled else ""),
        ),
    ]


def check_calico(client: Client) -> list[Result]:
    """The operator's own verdict on every component it runs (TigeraStatus conditions)."""
    statuses = client.list("tigerastatus")
    bad = []
    for s in statuses:
        cond = {c.get("type"): c.get("status") for c in s.get("status", {}).get("conditions", [])}
        if cond.get("Available") != "True" or cond.get("Degraded") == "True":
            bad.append(f"{name(s)} (Available {cond.get('Available')}, Degraded {cond.get('Degraded')})")
    return [Result("Calico reports Available", bool(statuses) and not bad,
                   f"{len(statuses) - len(bad)}/{len(statuses)} tigerastatus Available"
                   + (f"; {'; '.join(bad)}" if bad else ""))]


def _pods(client: Client, app: str) -> list[dict]:
    return sorted(client.list("pods", demo.NAMESPACE, f"{demo.APP_LABEL}={app}"), key=name)


def _node_of(pod: dict, nodes: dict[str, dict]) -> dict:
    return nodes.get(pod["spec"].get("nodeName", ""), {"metadata": {}})


def _running(pod: dict) -> bool:
    return pod.get("status", {}).get("phase") == "Running"


def check_pods(client: Client, nodes: dict[str, dict], kata: list[dict], runc: list[dict]) -> list[Result]:
    rc = client.get("runtimeclass", v.KATA_HANDLER)
    want = client.get("deployment", demo.KATA_APP, demo.NAMESPACE)["spec"].get("replicas", 1)
    bad = [
        f"{name(p)}: Running {_running(p)}, runtimeClassName {p['spec'].get('runtimeClassName')!r}, "
        f"node labeled {_kata_labeled(_node_of(p, nodes))}"
        for p in kata
        if not (
            _running(p)
            and p["spec"].get("runtimeClassName") == v.KATA_HANDLER
            and _kata_labeled(_node_of(p, nodes))
        )
    ]
    twin_bad = [name(p) for p in runc if not _running(p) or p["spec"].get("runtimeClassName")]
    return [
        Result(f"RuntimeClass {v.KATA_HANDLER}", rc.get("handler") == v.KATA_HANDLER, f"handler {rc.get('handler')!r}"),
        Result(
            "kata pods run with the RuntimeClass",
            0 < len(kata) == want and not bad,
            f"{len(kata)}/{want} pods" + (f"; {'; '.join(bad)}" if bad else ", all Running on labeled nodes"),
        ),
        Result(
            "runc twin runs without a RuntimeClass",
            bool(runc) and not twin_bad,
            f"{len(runc)} pods" + (f"; wrong: {', '.join(twin_bad)}" if twin_bad else ""),
        ),
    ]


def check_kernels(client: Client, nodes: dict[str, dict], kata: list[dict], runc: list[dict]) -> list[Result]:
    """A Kata pod boots its own guest kernel, a runc pod shares its node's."""
    out = []
    for pods, want_same, label in ((kata, False, "kata"), (runc[:1], True, "runc")):
        verb = "matches" if want_same else "differs from"
        if not pods:
            out.append(Result(f"{label} pod kernel {verb} its node's", False, f"no {label} pod"))
        for pod in pods:
            host = _node_of(pod, nodes).get("status", {}).get("nodeInfo", {}).get("kernelVersion", "")
            res = client.exec(demo.NAMESPACE, name(pod), ["uname", "-r"], EXEC_TIMEOUT)
            guest = res.stdout.strip()
            ok = res.rc == 0 and bool(host) and bool(guest) and (guest == host) == want_same
            detail = f"{name(pod)}: pod {guest or res.stderr.strip() or '?'} / node {host or '?'}"
            out.append(Result(f"{label} pod kernel {verb} its node's", ok, detail))
    return out


def _tolerates(tolerations: list[dict], taint: dict) -> bool:
    """core/v1 Toleration.ToleratesTaint (effect, key, then Exists/Equal)."""
    for t in tolerations:
        if t.get("effect") and t["effect"] != taint.get("effect"):
            continue
        if t.get("key") and t["key"] != taint.get("key"):
            continue
        if t.get("operator") == "Exists" or t.get("value", "") == taint.get("value", ""):
            return True
    return False


def eligible_nodes(nodes: dict[str, dict], pod: dict) -> list[str]:
    """Ready, schedulable, labeled nodes whose scheduling taints `pod` tolerates: where the
    spread rule (samples._spread, nodeTaintsPolicy Honor) may place a kata-app pod."""
    tolerations = pod["spec"].get("tolerations", [])
    return sorted(
        n for n, node in nodes.items()
        if _ready(node) and _kata_labeled(node) and not node.get("spec", {}).get("unschedulable")
        and all(_tolerates(tolerations, t) for t in node.get("spec", {}).get("taints", [])
                if t.get("effect") in ("NoSchedule", "NoExecute"))
    )


def check_cross_node(client: Client, nodes: dict[str, dict], kata: list[dict], source: dict | None) -> list[Result]:
    running = [p for p in kata if _running(p)]
    if not running:  # nothing to measure: a failure, never a skip
        return [Result(SPREAD, False, "no running kata-app pod"), Result(CROSS_NODE, False, "no running kata-app pod")]
    eligible = eligible_nodes(nodes, running[0])
    if len(eligible) < 2:
        why = f"one node can run kata-app ({', '.join(eligible) or 'none'}): no second node to cross to"
        return [skip(SPREAD, why), skip(CROSS_NODE, why)]
    used = sorted({p["spec"].get("nodeName", "") for p in running})
    spread = len(used) >= 2
    out = [Result(SPREAD, spread, f"{len(running)} pods on {', '.join(used) or 'no node'}; {len(eligible)} nodes "
                  "eligible" + ("" if spread else f" (after a drain: kubectl -n {demo.NAMESPACE} rollout restart "
                                                  f"deployment/{demo.KATA_APP})"))]
    far = [p for p in running if source and p["spec"].get("nodeName") != source["spec"].get("nodeName")]
    if source is None or not far:
        out.append(Result(CROSS_NODE, False, "no kata-app pod on another node than the client"))
        return out
    target = far[0]
    res = curl(client, demo.NAMESPACE, name(source),
               f"http://{target['status'].get('podIP')}:{demo.HTTP_PORT}/echo?msg={PAYLOAD}")
    intact = res.rc == 0 and res.stdout == PAYLOAD
    path = f"{source['spec'].get('nodeName')} -> {target['spec'].get('nodeName')}"
    out.append(Result(CROSS_NODE, intact, f"{path}: {len(PAYLOAD)} bytes each way, "
                      + ("echoed intact" if intact else f"curl exit {res.rc}, {len(res.stdout)} bytes back")))
    return out


def check_network(client: Client, kata: list[dict], runc: list[dict], source: dict | None) -> list[Result]:
    if source is None:
        out = [Result("service answers the allowed client", False, f"no running {demo.CLIENT} pod")]
    else:
        allowed = curl(client, demo.NAMESPACE, name(source), SERVICE_URL)
        answer = allowed.stdout.strip()
        got = answer if allowed.rc == 0 else f"curl exit {allowed.rc}"
        out = [Result("service answers the allowed client", allowed.rc == 0 and answer in {name(p) for p in kata},
                      f"{name(source)} -> {demo.KATA_APP}: {got}")]
    if not runc:
        out.append(Result("default-deny egress holds for the runc twin", False, "no runc pod to probe from"))
    else:
        other = curl(client, demo.NAMESPACE, name(runc[0]), SERVICE_URL)
        out.append(Result("default-deny egress holds for the runc twin", other.rc == CURL_TIMEOUT,
                          f"{name(runc[0])} -> {demo.KATA_APP}: curl exit {other.rc} (want {CURL_TIMEOUT}, timeout)"))
    return out


def _guarded(check: str, fn: Callable[[], list[Result]]) -> list[Result]:
    try:
        return fn()
    except ClientError as exc:
        return [Result(check, False, str(exc))]
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        return [Result(check, False, f"unexpected API answer: {exc!r}")]


def run_checks(client: Client) -> list[Result]:
    """Every check's result. Raises ClientError when the cluster cannot be reached at all
    (the node list is the first question asked)."""
    node_list = client.list("nodes")
    nodes = {name(n): n for n in node_list}
    results = _guarded("nodes", lambda: check_nodes(node_list))
    results += _guarded("Calico reports Available", lambda: check_calico(client))
    try:
        kata, runc = _pods(client, demo.KATA_APP), _pods(client, demo.RUNC_APP)
        # The client is a Deployment (drains must be able to evict it): its running pod.
        source = next((p for p in _pods(client, demo.CLIENT) if _running(p)), None)
    except ClientError as exc:
        return results + [Result("sample workloads", False, f"{exc} (is sampleWorkloads true?)")]
    results += _guarded("pods", lambda: check_pods(client, nodes, kata, runc))
    results += _guarded("kernels", lambda: check_kernels(client, nodes, kata, runc))
    results += _guarded("network", lambda: check_network(client, kata, runc, source))
    results += _guarded(CROSS_NODE, lambda: check_cross_node(client, nodes, kata, source))
    beside = next((p["spec"].get("nodeName") for p in kata if _running(p)), None)
    results += check_probes(client, beside)
    results += check_volumes(client)
    results += check_metrics(client, nodes, [p for p in kata if _running(p)], [p for p in runc if _running(p)])
    results += check_load_balancer(client, [name(p) for p in kata])
    return results


def render_table(results: Sequence[Result]) -> str:
    width = max([len("CHECK"), *(len(r.check) for r in results)])
    lines = [f"{'CHECK':<{width}}  RESULT  DETAIL"]
    lines += [f"{r.check:<{width}}  {'SKIP' if r.skipped else 'PASS' if r.ok else 'FAIL':<6}  {r.detail}"
              for r in results]
    failed, skipped = sum(not r.ok for r in results), sum(r.skipped for r in results)
    lines.append(f"{len(results) - failed - skipped} passed, {failed} failed, {skipped} skipped")
    return "\n".join(lines)
