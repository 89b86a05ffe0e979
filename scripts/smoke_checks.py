"""The smoke test's logic: checks over a small cluster-client interface, and the table.

Pure with respect to the cluster: everything goes through `Client`, so the tests run
every check against a fake client (tests/test_smoke_test.py); scripts/smoke_test.py
provides the kubectl implementation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from components import versions as v
from components.kubernetes import demo

PROBE_SECONDS = 5  # curl -m: a NetworkPolicy drop shows up as a timeout
EXEC_TIMEOUT = 60
CURL_CONNECT_FAILED, CURL_TIMEOUT = 7, 28  # curl(1) EXIT CODES
SERVICE_URL = f"http://{demo.SERVICE_HOST}:{demo.HTTP_PORT}/hostname"
METADATA_URL = "http://169.254.169.254/openstack/latest/meta_data.json"


class ClientError(Exception):
    """The cluster could not be asked (kubectl missing, API unreachable, object absent)."""


@dataclass(frozen=True)
class ExecResult:
    rc: int
    stdout: str
    stderr: str


class Client:
    """What the checks need from a cluster."""

    def list(self, kind: str, namespace: str | None = None, selector: str | None = None) -> list[dict]:
        raise NotImplementedError

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict:
        raise NotImplementedError

    def exec(self, namespace: str, pod: str, argv: Sequence[str], timeout: int) -> ExecResult:
        raise NotImplementedError


@dataclass(frozen=True)
class Result:
    check: str
    ok: bool
    detail: str


def _name(obj: dict) -> str:
    return obj["metadata"]["name"]


def _ready(node: dict) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in node.get("status", {}).get("conditions", [])
    )


def _kata_labeled(node: dict) -> bool:
    return node["metadata"].get("labels", {}).get(v.KATA_NODE_LABEL) == "true"


def _curl(client: Client, pod: str, url: str) -> ExecResult:
    return client.exec(demo.NAMESPACE, pod, ["curl", "-sS", "-m", str(PROBE_SECONDS), url], EXEC_TIMEOUT)


def check_nodes(nodes: list[dict]) -> list[Result]:
    not_ready = sorted(_name(n) for n in nodes if not _ready(n))
    kata = sorted(_name(n) for n in nodes if _kata_labeled(n))
    return [
        Result(
            "all nodes Ready",
            bool(nodes) and not not_ready,
            f"{len(nodes) - len(not_ready)}/{len(nodes)} Ready"
            + (f"; not Ready: {', '.join(not_ready)}" if not_ready else ""),
        ),
        Result(
            "kata nodes labeled", bool(kata), f"{v.KATA_NODE_LABEL}=true on {', '.join(kata) or 'no node'}"
        ),
    ]


def _pods(client: Client, app: str) -> list[dict]:
    return sorted(client.list("pods", demo.NAMESPACE, f"{demo.APP_LABEL}={app}"), key=_name)


def _node_of(pod: dict, nodes: dict[str, dict]) -> dict:
    return nodes.get(pod["spec"].get("nodeName", ""), {"metadata": {}})


def _running(pod: dict) -> bool:
    return pod.get("status", {}).get("phase") == "Running"


def check_pods(client: Client, nodes: dict[str, dict], kata: list[dict], runc: list[dict]) -> list[Result]:
    rc = client.get("runtimeclass", v.KATA_HANDLER)
    want = client.get("deployment", demo.KATA_APP, demo.NAMESPACE)["spec"].get("replicas", 1)
    bad = [
        f"{_name(p)}: Running {_running(p)}, runtimeClassName {p['spec'].get('runtimeClassName')!r}, "
        f"node labeled {_kata_labeled(_node_of(p, nodes))}"
        for p in kata
        if not (
            _running(p)
            and p["spec"].get("runtimeClassName") == v.KATA_HANDLER
            and _kata_labeled(_node_of(p, nodes))
        )
    ]
    twin_bad = [_name(p) for p in runc if not _running(p) or p["spec"].get("runtimeClassName")]
    return [
        Result(
            f"RuntimeClass {v.KATA_HANDLER}",
            rc.get("handler") == v.KATA_HANDLER,
            f"handler {rc.get('handler')!r}",
        ),
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
            res = client.exec(demo.NAMESPACE, _name(pod), ["uname", "-r"], EXEC_TIMEOUT)
            guest = res.stdout.strip()
            ok = res.rc == 0 and bool(host) and bool(guest) and (guest == host) == want_same
            out.append(
                Result(
                    f"{label} pod kernel {verb} its node's",
                    ok,
                    f"{_name(pod)}: pod {guest or res.stderr.strip() or '?'} / node {host or '?'}",
                )
            )
    return out


def check_network(client: Client, kata: list[dict], runc: list[dict]) -> list[Result]:
    names = {_name(p) for p in kata}
    # The client is a Deployment (drains must be able to evict it): probe from its running pod.
    clients = [p for p in _pods(client, demo.CLIENT) if _running(p)]
    if not clients:
        out = [Result("service answers the allowed client", False, f"no running {demo.CLIENT} pod")]
    else:
        source = _name(clients[0])
        allowed = _curl(client, source, SERVICE_URL)
        answer = allowed.stdout.strip()
        out = [
            Result(
                "service answers the allowed client",
                allowed.rc == 0 and answer in names,
                f"{source} -> {demo.KATA_APP}: "
                + (answer if allowed.rc == 0 else f"curl exit {allowed.rc}"),
            )
        ]
    if not runc:
        out.append(Result("service times out for an unlabeled pod", False, "no runc pod to probe from"))
    else:
        other = _curl(client, _name(runc[0]), SERVICE_URL)
        out.append(
            Result(
                "service times out for an unlabeled pod",
                other.rc == CURL_TIMEOUT,
                f"{_name(runc[0])} -> {demo.KATA_APP}: curl exit {other.rc} (want {CURL_TIMEOUT}, timeout)",
            )
        )
    if not kata:
        out.append(Result("metadata service unreachable from a kata pod", False, "no kata pod to probe from"))
    else:
        meta = _curl(client, _name(kata[0]), METADATA_URL)
        out.append(
            Result(
                "metadata service unreachable from a kata pod",
                meta.rc in (CURL_TIMEOUT, CURL_CONNECT_FAILED),
                f"{_name(kata[0])} -> 169.254.169.254: curl exit {meta.rc} "
                f"(want {CURL_TIMEOUT} or {CURL_CONNECT_FAILED})",
            )
        )
    return out


def _guarded(name: str, fn: Callable[[], list[Result]]) -> list[Result]:
    try:
        return fn()
    except ClientError as exc:
        return [Result(name, False, str(exc))]
    except (KeyError, TypeError, ValueError) as exc:
        return [Result(name, False, f"unexpected API answer: {exc!r}")]


def run_checks(client: Client) -> list[Result]:
    """Every check's result. Raises ClientError when the cluster cannot be reached at all
    (the node list is the first question asked)."""
    node_list = client.list("nodes")
    nodes = {_name(n): n for n in node_list}
    results = _guarded("nodes", lambda: check_nodes(node_list))
    try:
        kata, runc = _pods(client, demo.KATA_APP), _pods(client, demo.RUNC_APP)
    except ClientError as exc:
        return results + [Result("sample workloads", False, f"{exc} (is sampleWorkloads true?)")]
    results += _guarded("pods", lambda: check_pods(client, nodes, kata, runc))
    results += _guarded("kernels", lambda: check_kernels(client, nodes, kata, runc))
    results += _guarded("network", lambda: check_network(client, kata, runc))
    return results


def render_table(results: Sequence[Result]) -> str:
    width = max([len("CHECK"), *(len(r.check) for r in results)])
    lines = [f"{'CHECK':<{width}}  RESULT  DETAIL"]
    lines += [f"{r.check:<{width}}  {'PASS' if r.ok else 'FAIL':<6}  {r.detail}" for r in results]
    failed = sum(not r.ok for r in results)
    lines.append(f"{len(results) - failed} passed, {failed} failed")
    return "\n".join(lines)
