"""A fake cluster for the smoke test's checks (scripts/smoke_checks.py, smoke_probes.py):
Kata works, the policies hold and the node guard drops pods' metadata requests; tests break
one thing at a time. Shared by test_smoke_test.py, test_smoke_cli.py and test_smoke_probes.py."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from components import versions as v
from components.kubernetes import demo
from scripts import smoke_checks as sc
from scripts import smoke_metrics as sm
from scripts import smoke_probes as sp
from scripts import smoke_public as spub
from scripts import smoke_volumes as sv
from scripts.smoke_client import METADATA_URL, PROBE_SECONDS

ROOT = Path(__file__).resolve().parent.parent
HOST_KERNEL, GUEST_KERNEL = "6.8.0-45-generic", "6.12.36"
CP_TAINT = {"key": v.CONTROL_PLANE_ROLE, "effect": "NoSchedule"}


def fake_node(name: str, ready: bool = True, taints: list[dict] | None = None) -> dict:
    # every node registers with the kata label (components/cluster/kubeadm.py KATA_LABELS)
    return {
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, v.KATA_NODE_LABEL: "true"}},
        "spec": {"taints": taints} if taints else {},
        "status": {
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "nodeInfo": {"kernelVersion": HOST_KERNEL, "containerRuntimeVersion": "containerd://2.1.4"},
        },
    }


def fake_pod(name: str, app: str, node: str, runtime_class: str | None, ip: str) -> dict:
    spec = {"nodeName": node, **({"runtimeClassName": runtime_class} if runtime_class else {})}
    return {
        "metadata": {"name": name, "namespace": demo.NAMESPACE, "labels": {demo.APP_LABEL: app}},
        "spec": spec,
        "status": {"phase": "Running", "podIP": ip},
    }


def fake_tigerastatus(name: str, available: str = "True", degraded: str = "False") -> dict:
    return {"metadata": {"name": name}, "status": {"conditions": [
        {"type": "Available", "status": available}, {"type": "Progressing", "status": "False"},
        {"type": "Degraded", "status": degraded}]}}


CLIENT_POD = "http-client-5d9c7-x2x4q"  # the client is a Deployment: its pod has a generated name
FAR_URL = f"http://10.244.1.5:{demo.HTTP_PORT}/echo?msg={sc.PAYLOAD}"  # kata-app-1 on worker-0
PROBES = {(demo.NAMESPACE, sp.CALLER), (sp.NAMESPACE, sp.GUARD), (sp.NAMESPACE, sp.NODE)}


def fake_nft(drops: int) -> str:
    rule = {"family": "inet", "table": "katak8s_guard", "chain": "forward", "handle": 4, "expr": [
        {"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "cali*"}},
        {"counter": {"packets": drops, "bytes": 60 * drops}}, {"drop": None}]}
    out_rule = {"family": "inet", "table": "katak8s_guard", "chain": "output", "handle": 9, "expr": [
        {"counter": {"packets": 1000, "bytes": 6000}}, {"drop": None}]}
    return json.dumps({"nftables": [{"metainfo": {"json_schema_version": 1}},
                                    {"table": {"family": "inet", "name": "katak8s_guard"}},
                                    {"rule": rule}, {"rule": out_rule}]})


class FakeCluster(sc.Client):
    """A cluster where Kata works, the policies hold and the node guard drops pods' metadata
    requests; tests break one thing at a time."""

    def __init__(self) -> None:
        self.nodes = [fake_node("k-cp-0", taints=[CP_TAINT]), fake_node("k-worker-0"), fake_node("k-worker-1")]
        self.pods = [
            fake_pod("kata-app-1", demo.KATA_APP, "k-worker-0", v.KATA_HANDLER, "10.244.1.5"),
            fake_pod("kata-app-2", demo.KATA_APP, "k-worker-1", v.KATA_HANDLER, "10.244.2.7"),
            fake_pod("runc-app-1", demo.RUNC_APP, "k-worker-0", None, "10.244.1.6"),
            fake_pod("runc-app-2", demo.RUNC_APP, "k-worker-1", None, "10.244.2.8"),
            fake_pod(CLIENT_POD, demo.CLIENT, "k-worker-1", v.KATA_HANDLER, "10.244.2.9"),
        ]
        self.objects = {
            ("runtimeclass", v.KATA_HANDLER): {"metadata": {"name": "kata"}, "handler": v.KATA_HANDLER},
            ("deployment", demo.KATA_APP): {"metadata": {"name": demo.KATA_APP}, "spec": {"replicas": 2}},
            ("storageclass", v.DEFAULT_STORAGE_CLASS): {"metadata": {
                "name": v.DEFAULT_STORAGE_CLASS,
                "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}}},
        }
        self.objects[("apiservice", sm.METRICS_API)] = {"metadata": {"name": sm.METRICS_API}}
        # sampleLoadBalancer: the public Service with its address, and what it answers
        self.objects[("service", demo.PUBLIC_SERVICE)] = {
            "metadata": {"name": demo.PUBLIC_SERVICE},
            "status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.80"}]}}}
        self.public_answer: str | Exception = "kata-app-2"
        self.fetched: list[str] = []
        # what the volume probes' pods answer (scripts/smoke_volumes.py)
        self.volume_exec: dict[str, sc.ExecResult] = {
            sv.FS_POD: sc.ExecResult(0, f"{sv.TOKEN}\nvirtiofs\n", ""),
            sv.BLOCK_POD: sc.ExecResult(0, "1048576 bytes (1.0 MB, 1.0 MiB) copied, 0.01 s, 100 MB/s\n", ""),
        }
        self.tigerastatus = [fake_tigerastatus("calico"), fake_tigerastatus("ippools")]
        # metrics-server (scripts/smoke_metrics.py): served, with every node and pod in it
        self.metrics_error: str | None = None
        self.unreported: set[str] = set()  # nodes or pods metrics-server does not report
        self.metrics_lists = 0
        self.guest_kernel = GUEST_KERNEL
        self.curl: dict[tuple[str, str], sc.ExecResult] = {
            (CLIENT_POD, sc.SERVICE_URL): sc.ExecResult(0, "kata-app-2", ""),
            (CLIENT_POD, FAR_URL): sc.ExecResult(0, sc.PAYLOAD, ""),
            ("runc-app-1", sc.SERVICE_URL): sc.ExecResult(28, "", "curl: (28) Connection timed out"),
            (sp.CALLER, sc.SERVICE_URL): sc.ExecResult(28, "", "curl: (28) Connection timed out"),
            (sp.NODE, METADATA_URL): sc.ExecResult(0, '{"uuid": "5f0c", "name": "k-worker-0"}', ""),
        }
        self.guard_loaded, self.guard_counts, self.drops = True, True, 41
        self.guard_network = True
        self.sa_missing = 0  # creates refused while the new namespace has no default ServiceAccount
        self.created: dict[tuple[str, str], dict] = {}  # (namespace or "", name) -> manifest
        self.never_ready: set[str] = set()
        self.refuse_create: str | None = None
        self.execs: list[tuple[str, tuple[str, ...]]] = []
        self.deleted: list[tuple[str, str, bool]] = []

    def list(self, kind, namespace=None, selector=None):
        if kind == "nodes":
            return copy.deepcopy(self.nodes)
        if kind == "tigerastatus":
            return copy.deepcopy(self.tigerastatus)
        if kind in (sm.NODE_METRICS, sm.POD_METRICS):
            return self._metrics(kind, namespace)
        key, value = selector.split("=")
        return [copy.deepcopy(p) for p in self.pods if p["metadata"]["labels"].get(key) == value]

    def _metrics(self, kind, namespace):
        self.metrics_lists += 1
        if self.metrics_error:
            raise sc.ClientError(self.metrics_error)
        usage = {"cpu": "12m", "memory": "34Mi"}
        if kind == sm.NODE_METRICS:
            return [{"metadata": {"name": sc.name(n)}, "usage": usage} for n in self.nodes
                    if sc.name(n) not in self.unreported]
        assert namespace == demo.NAMESPACE
        return [{"metadata": {"name": sc.name(p), "namespace": namespace},
                 "containers": [{"name": "app", "usage": usage}]} for p in self.pods
                if sc.name(p) not in self.unreported]

    def get(self, kind, name, namespace=None):
        if (kind, name) not in self.objects:
            raise sc.ClientError(f'Error from server (NotFound): {kind}s "{name}" not found')
        return copy.deepcopy(self.objects[(kind, name)])

    def create(self, manifest):
        key = (manifest["metadata"].get("namespace", ""), manifest["metadata"]["name"])
        if self.refuse_create:
            raise sc.ClientError(self.refuse_create)
        if key[0] == sp.NAMESPACE and self.sa_missing:
            self.sa_missing -= 1
            raise sc.ClientError(f'pods "{key[1]}" is forbidden: error looking up service account '
                                 f'{sp.NAMESPACE}/default: serviceaccount "default" not found')
        if key in self.created:
            raise sc.ClientError(f'{manifest["kind"]} "{key[1]}" already exists')
        if key[0] and key[0] != demo.NAMESPACE:
            assert (("", key[0])) in self.created, f"namespace {key[0]} not created first"
        self.created[key] = manifest

    def delete(self, kind, name, namespace=None, *, wait):
        self.deleted.append((kind, name, wait))
        self.created.pop((namespace or "", name), None)
        if kind == "namespace":
            self.created = {k: m for k, m in self.created.items() if k[0] != name}

    def fetch(self, url: str) -> str:
        """The smoke test's HTTP GET from the operator's machine (scripts/smoke_public.py)."""
        self.fetched.append(url)
        if isinstance(self.public_answer, Exception):
            raise self.public_answer
        return self.public_answer + "\n"

    def wait_ready(self, namespace, pod, timeout):
        assert 0 < timeout <= max(sp.READY_SECONDS, sv.READY_SECONDS) and (namespace, pod) in self.created
        return pod not in self.never_ready

    def _probe_exec(self, pod, argv):
        if argv == sp.nft_argv():
            assert pod == sp.NODE
            if not self.guard_loaded:
                return sc.ExecResult(1, "", "Error: No such file or directory; did you mean table 'filter'?")
            return sc.ExecResult(0, fake_nft(self.drops), "")
        if pod == sp.GUARD and argv[-1] == sp.API_URL:
            return sc.ExecResult(0 if self.guard_network else 28, "", "")
        if pod == sp.GUARD and argv[4] == METADATA_URL:
            if not self.guard_network:
                return sc.ExecResult(28, "", "curl: (28) Connection timed out")
            if not self.guard_loaded:
                return sc.ExecResult(0, '{"uuid": "5f0c"}', "")
            self.drops += 3 if self.guard_counts else 0
            return sc.ExecResult(28, "", "curl: (28) Connection timed out")
        return self.curl[(pod, argv[4])]

    def exec(self, namespace, pod, argv, timeout):
        assert timeout > PROBE_SECONDS
        argv = list(argv)
        self.execs.append((pod, tuple(argv)))
        if namespace == sv.NAMESPACE:
            assert (namespace, pod) in self.created, f"exec in {pod} before it was created"
            return self.volume_exec[pod]
        if (namespace, pod) in PROBES:
            assert (namespace, pod) in self.created, f"exec in {pod} before it was created"
            return self._probe_exec(pod, argv)
        assert namespace == demo.NAMESPACE
        if argv == ["uname", "-r"]:
            p = next(p for p in self.pods if p["metadata"]["name"] == pod)
            return sc.ExecResult(
                0, (self.guest_kernel if p["spec"].get("runtimeClassName") else HOST_KERNEL) + "\n", ""
            )
        assert argv[:4] == ["curl", "-sS", "-m", str(PROBE_SECONDS)], argv
        return self.curl[(pod, argv[4])]


ALL_CHECKS = {
    "all nodes Ready",
    "kata label on every node",
    "Calico reports Available",
    "RuntimeClass kata",
    "kata pods run with the RuntimeClass",
    "runc twin runs without a RuntimeClass",
    "kata pod kernel differs from its node's",
    "runc pod kernel matches its node's",
    "service answers the allowed client",
    "default-deny egress holds for the runc twin",
    sc.SPREAD,
    sc.CROSS_NODE,
    *sp.CHECKS,
    *sv.CHECKS,
    spub.ANSWERS,
    *sm.CHECKS,
}
