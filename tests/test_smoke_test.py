"""scripts/smoke_test.py against fake clusters: a healthy one passes, each way of being
broken fails the right check, and the kubectl/pulumi plumbing keeps the kubeconfig off
command lines."""

from __future__ import annotations

import copy
import io
import json
import os
import re
import stat
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

import kubernetes_validate
import pytest
from harness import FAKE_KUBECONFIG
from test_kubernetes_program import VALIDATED_MINORS, schema_version
from test_kubernetes_samples import assert_restricted

from components import versions as v
from components.kubernetes import demo
from scripts import smoke_checks as sc
from scripts import smoke_probes as sp
from scripts import smoke_test
from scripts.smoke_client import METADATA_URL, PROBE_SECONDS

ROOT = Path(__file__).resolve().parent.parent
HOST_KERNEL, GUEST_KERNEL = "6.8.0-45-generic", "6.12.36"
CP_TAINT = {"key": v.CONTROL_PLANE_ROLE, "effect": "NoSchedule"}


def _node(name: str, ready: bool = True, taints: list[dict] | None = None) -> dict:
    # every node registers with the kata label (components/cluster/kubeadm.py KATA_LABELS)
    return {
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, v.KATA_NODE_LABEL: "true"}},
        "spec": {"taints": taints} if taints else {},
        "status": {
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "nodeInfo": {"kernelVersion": HOST_KERNEL},
        },
    }


def _pod(name: str, app: str, node: str, runtime_class: str | None, ip: str) -> dict:
    spec = {"nodeName": node, **({"runtimeClassName": runtime_class} if runtime_class else {})}
    return {
        "metadata": {"name": name, "namespace": demo.NAMESPACE, "labels": {demo.APP_LABEL: app}},
        "spec": spec,
        "status": {"phase": "Running", "podIP": ip},
    }


def _tigerastatus(name: str, available: str = "True", degraded: str = "False") -> dict:
    return {"metadata": {"name": name}, "status": {"conditions": [
        {"type": "Available", "status": available}, {"type": "Progressing", "status": "False"},
        {"type": "Degraded", "status": degraded}]}}


CLIENT_POD = "http-client-5d9c7-x2x4q"  # the client is a Deployment: its pod has a generated name
FAR_URL = f"http://10.244.1.5:{demo.HTTP_PORT}/echo?msg={sc.PAYLOAD}"  # kata-app-1 on worker-0
PROBES = {(demo.NAMESPACE, sp.CALLER), (sp.NAMESPACE, sp.GUARD), (sp.NAMESPACE, sp.NODE)}


def _nft(drops: int) -> str:
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
        self.nodes = [_node("k-cp-0", taints=[CP_TAINT]), _node("k-worker-0"), _node("k-worker-1")]
        self.pods = [
            _pod("kata-app-1", demo.KATA_APP, "k-worker-0", v.KATA_HANDLER, "10.244.1.5"),
            _pod("kata-app-2", demo.KATA_APP, "k-worker-1", v.KATA_HANDLER, "10.244.2.7"),
            _pod("runc-app-1", demo.RUNC_APP, "k-worker-0", None, "10.244.1.6"),
            _pod("runc-app-2", demo.RUNC_APP, "k-worker-1", None, "10.244.2.8"),
            _pod(CLIENT_POD, demo.CLIENT, "k-worker-1", v.KATA_HANDLER, "10.244.2.9"),
        ]
        self.objects = {
            ("runtimeclass", v.KATA_HANDLER): {"metadata": {"name": "kata"}, "handler": v.KATA_HANDLER},
            ("deployment", demo.KATA_APP): {"metadata": {"name": demo.KATA_APP}, "spec": {"replicas": 2}},
        }
        self.tigerastatus = [_tigerastatus("calico"), _tigerastatus("ippools")]
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
        key, value = selector.split("=")
        return [copy.deepcopy(p) for p in self.pods if p["metadata"]["labels"].get(key) == value]

    def get(self, kind, name, namespace=None):
        if (kind, name) not in self.objects:
            raise sc.ClientError(f'{kind}s "{name}" not found')
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

    def wait_ready(self, namespace, pod, timeout):
        assert 0 < timeout <= sp.READY_SECONDS and (namespace, pod) in self.created
        return pod not in self.never_ready

    def _probe_exec(self, pod, argv):
        if argv == sp.nft_argv():
            assert pod == sp.NODE
            if not self.guard_loaded:
                return sc.ExecResult(1, "", "Error: No such file or directory; did you mean table 'filter'?")
            return sc.ExecResult(0, _nft(self.drops), "")
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
}


def test_a_healthy_cluster_passes_every_check_and_leaves_no_probe_behind():
    cluster = FakeCluster()
    res = sc.run_checks(cluster)
    assert all(r.ok and not r.skipped for r in res), sc.render_table(res)
    assert {r.check for r in res} == ALL_CHECKS
    assert ("kata-app-1", ("uname", "-r")) in cluster.execs and ("kata-app-2", ("uname", "-r")) in cluster.execs
    assert cluster.created == {}, "a probe outlived the run"
    # the guard's counters are shown, and the probes ran beside a kata-app pod
    (guard,) = [r for r in res if r.check == sp.GUARD_DROPPED]
    assert guard.detail == "k-worker-0: forward drops 41 -> 44"


def test_leftovers_of_an_interrupted_run_are_deleted_before_the_probes_start():
    cluster = FakeCluster()
    cluster.created[("", sp.NAMESPACE)] = sp.probe_namespace()
    cluster.created[(demo.NAMESPACE, sp.CALLER)] = sp.caller_probe("k-worker-0")
    res = sc.run_checks(cluster)
    assert all(r.ok for r in res), sc.render_table(res)
    assert cluster.deleted[:2] == [("pod", sp.CALLER, True), ("namespace", sp.NAMESPACE, True)]


def _set(path: Callable[[FakeCluster], dict], key, value) -> Callable[[FakeCluster], None]:
    return lambda c: path(c).__setitem__(key, value)


def _move_pod(index: int, node: str) -> Callable[[FakeCluster], None]:
    return lambda c: c.pods[index]["spec"].__setitem__("nodeName", node)


KATA_CLASS, KATA_KERNEL = "kata pods run with the RuntimeClass", "kata pod kernel differs from its node's"
SERVICE, TWIN_DENY = "service answers the allowed client", "default-deny egress holds for the runc twin"
TWIN, TWIN_KERNEL = "runc twin runs without a RuntimeClass", "runc pod kernel matches its node's"
PROBE_CHECKS = set(sp.CHECKS)

# breakage -> (how, the exact set of checks that must fail)
BREAKAGES: dict[str, tuple[Callable[[FakeCluster], None], set[str]]] = {
    "node not ready": (
        lambda c: c.nodes.__setitem__(2, _node("k-worker-1", ready=False)),
        # worker-1 is no longer eligible: one node left, so the spread checks are skipped
        {"all nodes Ready"},
    ),
    "a node without the kata label": (
        lambda c: c.nodes[0]["metadata"]["labels"].pop(v.KATA_NODE_LABEL),
        {"kata label on every node"},
    ),
    "no kata label anywhere": (
        lambda c: [n["metadata"]["labels"].pop(v.KATA_NODE_LABEL) for n in c.nodes],
        {"kata label on every node", KATA_CLASS},  # and no eligible node: spread skipped
    ),
    "calico degraded": (
        lambda c: c.tigerastatus.__setitem__(0, _tigerastatus("calico", "False", "True")),
        {"Calico reports Available"},
    ),
    "no tigerastatus at all": (lambda c: c.tigerastatus.clear(), {"Calico reports Available"}),
    "handler renamed": (
        _set(lambda c: c.objects[("runtimeclass", "kata")], "handler", "runc"),
        {"RuntimeClass kata"},
    ),
    "runtime class missing": (lambda c: c.objects.pop(("runtimeclass", "kata")), {"pods"}),
    # the fake then runs the pod with runc, so its kernel is the host's too
    "kata pod without class": (
        lambda c: c.pods[0]["spec"].pop("runtimeClassName"),
        {KATA_CLASS, KATA_KERNEL},
    ),
    "kata pod pending": (
        _set(lambda c: c.pods[1]["status"], "phase", "Pending"),
        {KATA_CLASS, sc.SPREAD},  # one running kata-app pod is not a spread
    ),
    "one kata pod short": (lambda c: c.pods.pop(1), {KATA_CLASS, SERVICE, sc.SPREAD}),
    "twin with class": (_set(lambda c: c.pods[2]["spec"], "runtimeClassName", "kata"), {TWIN, TWIN_KERNEL}),
    "kata deployment scaled to zero": (
        lambda c: [c.pods.pop(0), c.pods.pop(0), c.objects[("deployment", demo.KATA_APP)]["spec"].update(replicas=0)],
        # nothing to probe from or beside: fails, never skipped
        {KATA_CLASS, KATA_KERNEL, SERVICE, sc.SPREAD, sc.CROSS_NODE, *PROBE_CHECKS},
    ),
    "kata shares the host kernel": (lambda c: setattr(c, "guest_kernel", HOST_KERNEL), {KATA_KERNEL}),
    "client blocked": (
        _set(lambda c: c.curl, (CLIENT_POD, sc.SERVICE_URL), sc.ExecResult(28, "", "timeout")),
        {SERVICE},
    ),
    "answer from a runc pod": (
        _set(lambda c: c.curl, (CLIENT_POD, sc.SERVICE_URL), sc.ExecResult(0, "runc-app-1", "")),
        {SERVICE},
    ),
    "twin egress open": (
        _set(lambda c: c.curl, ("runc-app-1", sc.SERVICE_URL), sc.ExecResult(0, "kata-app-1", "")),
        {TWIN_DENY},
    ),
    "twin refused instead of dropped": (
        _set(lambda c: c.curl, ("runc-app-1", sc.SERVICE_URL), sc.ExecResult(7, "", "refused")),
        {TWIN_DENY},
    ),
    "kata-app pods on one node": (
        lambda c: [_move_pod(0, "k-worker-1")(c)],
        {sc.SPREAD, sc.CROSS_NODE},  # and the client shares that node: no cross-node path
    ),
    "mtu black hole between nodes": (
        _set(lambda c: c.curl, (CLIENT_POD, FAR_URL), sc.ExecResult(28, "", "timeout")),
        {sc.CROSS_NODE},
    ),
    "payload truncated": (
        _set(lambda c: c.curl, (CLIENT_POD, FAR_URL), sc.ExecResult(0, sc.PAYLOAD[:1400], "")),
        {sc.CROSS_NODE},
    ),
    "kata-app ingress rule missing": (
        _set(lambda c: c.curl, (sp.CALLER, sc.SERVICE_URL), sc.ExecResult(0, "kata-app-1", "")),
        {sp.REFUSED},
    ),
    "metadata down on the node": (
        _set(lambda c: c.curl, (sp.NODE, METADATA_URL), sc.ExecResult(7, "", "refused")),
        {sp.NODE_ANSWERS},
    ),
    "guard missing": (lambda c: setattr(c, "guard_loaded", False), {sp.POD_BLOCKED, sp.GUARD_DROPPED}),
    # a timeout from a pod with no network at all proves nothing
    "guard probe without a network": (lambda c: setattr(c, "guard_network", False),
                                      {sp.POD_BLOCKED, sp.GUARD_DROPPED}),
    "service account never appears": (lambda c: setattr(c, "sa_missing", 10 ** 6), PROBE_CHECKS),
    "blocked, but not by the guard": (lambda c: setattr(c, "guard_counts", False), {sp.GUARD_DROPPED}),
    "probe pod never ready": (lambda c: c.never_ready.add(sp.GUARD), PROBE_CHECKS),
    "probes refused by admission": (lambda c: setattr(c, "refuse_create", "admission webhook denied"), PROBE_CHECKS),
}


def test_every_check_fails_in_at_least_one_breakage():
    """No always-true check (review-k8s K5c): each one has a breakage below that fails it."""
    failing = set().union(*(expected for _, expected in BREAKAGES.values()))
    assert ALL_CHECKS <= failing, ALL_CHECKS - failing


@pytest.fixture(autouse=True)
def _no_real_sleep(monkeypatch):
    monkeypatch.setattr(sp.time, "sleep", lambda s: None)


@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_each_breakage_fails_exactly_the_checks_it_should(breakage):
    cluster = FakeCluster()
    mutate, expected = BREAKAGES[breakage]
    mutate(cluster)
    res = sc.run_checks(cluster)
    assert {r.check for r in res if not r.ok} == expected, sc.render_table(res)
    assert cluster.created == {}, "a probe outlived the run"


@pytest.mark.parametrize("how", ["one worker", "second worker tainted", "second worker cordoned"])
def test_with_one_eligible_node_the_cross_node_checks_are_skipped_not_passed(how):
    cluster = FakeCluster()
    if how == "one worker":
        cluster.nodes.pop(2)
        cluster.pods = [p for p in cluster.pods if p["spec"]["nodeName"] != "k-worker-1"]
        cluster.pods.append(_pod(CLIENT_POD, demo.CLIENT, "k-worker-0", v.KATA_HANDLER, "10.244.1.9"))
        cluster.pods.append(_pod("kata-app-2", demo.KATA_APP, "k-worker-0", v.KATA_HANDLER, "10.244.1.7"))
        cluster.pods.append(_pod("runc-app-2", demo.RUNC_APP, "k-worker-0", None, "10.244.1.8"))
        cluster.curl[(CLIENT_POD, sc.SERVICE_URL)] = sc.ExecResult(0, "kata-app-2", "")
    elif how == "second worker tainted":
        cluster.nodes[2]["spec"]["taints"] = [{"key": "gpu", "value": "true", "effect": "NoSchedule"}]
    else:
        cluster.nodes[2]["spec"]["unschedulable"] = True
    res = sc.run_checks(cluster)
    skipped = {r.check for r in res if r.skipped}
    assert skipped == {sc.SPREAD, sc.CROSS_NODE} and all(r.ok for r in res), sc.render_table(res)
    assert "one node can run kata-app" in next(r for r in res if r.skipped).detail
    assert sc.render_table(res).endswith(f"{len(ALL_CHECKS) - 1} passed, 0 failed, 2 skipped")


def test_a_toleration_makes_a_tainted_node_eligible():
    cluster = FakeCluster()
    for n in cluster.nodes[1:]:
        n["spec"]["taints"] = [{"key": v.KATA_TAINT.key, "value": v.KATA_TAINT.value, "effect": "NoSchedule"}]
    pod = cluster.pods[0]
    assert sc.eligible_nodes({sc.name(n): n for n in cluster.nodes}, pod) == []
    pod["spec"]["tolerations"] = [{"key": v.KATA_TAINT.key, "operator": "Equal", "value": "true",
                                   "effect": "NoSchedule"}]
    assert sc.eligible_nodes({sc.name(n): n for n in cluster.nodes}, pod) == ["k-worker-0", "k-worker-1"]


def test_guard_drops_reads_the_forward_chain_of_nft_json_only():
    assert sp.guard_drops(_nft(7)) == 7  # the output chain's 1000 (the node's own) is not counted
    for bad in ("", "{}", json.dumps({"nftables": [{"table": {}}]})):
        with pytest.raises(ValueError):
            sp.guard_drops(bad)


def test_table_and_exit_status():
    res = [sc.Result("a check", True, "fine"), sc.Result("another check", False, "broken"),
           sc.Result("a third", True, "one node", skipped=True)]
    text = sc.render_table(res)
    assert text.splitlines() == [
        "CHECK          RESULT  DETAIL",
        "a check        PASS    fine",
        "another check  FAIL    broken",
        "a third        SKIP    one node",
        "1 passed, 1 failed, 1 skipped",
    ]


class FakeKubectl:
    """Plays kubectl (and the pulumi CLI) over a FakeCluster, recording every argv."""

    def __init__(self, cluster: FakeCluster, kubeconfig_out: str = FAKE_KUBECONFIG):
        self.cluster, self.kubeconfig_out, self.calls = cluster, kubeconfig_out, []
        self.seen_files: list[tuple[str, int, str]] = []

    def __call__(self, argv: Sequence[str], **kw) -> subprocess.CompletedProcess:
        self.calls.append(list(argv))
        assert kw.get("timeout") and kw.get("check") is False and "shell" not in kw
        if argv[0] == "pulumi":
            return subprocess.CompletedProcess(argv, 0, self.kubeconfig_out, "")
        assert argv[:2] == ["kubectl", "--kubeconfig"]
        path = argv[2]
        with open(path) as fh:
            self.seen_files.append((path, stat.S_IMODE(os.stat(path).st_mode), fh.read()))
        args = list(argv[3:])
        done = subprocess.CompletedProcess(argv, 0, "", "")
        try:
            if args[0] == "exec":
                ns, pod, sep, *cmd = args[2:]
                assert args[1] == "-n" and sep == "--"
                r = self.cluster.exec(ns, pod, cmd, kw["timeout"])
                return subprocess.CompletedProcess(argv, r.rc, r.stdout, r.stderr)
            if args[0] == "create":
                assert args[1:] == ["-f", "-"]
                self.cluster.create(json.loads(kw["input"]))  # the manifest on stdin, not argv
                return done
            if args[0] == "delete":
                kind, name, *rest = args[1:]
                assert "--ignore-not-found" in rest and any(a.startswith("--timeout=") for a in rest)
                ns = rest[rest.index("-n") + 1] if "-n" in rest else None
                self.cluster.delete(kind, name, ns, wait="--wait=true" in rest)
                return done
            if args[0] == "wait":
                ns, cond, pod, limit = args[2], args[3], args[4], args[5]
                assert args[1] == "-n" and cond == "--for=condition=Ready" and pod.startswith("pod/")
                ok = self.cluster.wait_ready(ns, pod[4:], int(limit.removeprefix("--timeout=").rstrip("s")))
                return done if ok else subprocess.CompletedProcess(argv, 1, "", "timed out waiting")
            assert args[0] == "get" and args[-2:] == ["-o", "json"]
            rest = args[1:-2]
            if rest[0] in ("nodes", "pods", "tigerastatus"):
                sel = rest[rest.index("-l") + 1] if "-l" in rest else None
                body = {"items": self.cluster.list(rest[0], selector=sel)}
            else:
                body = self.cluster.get(rest[0], rest[1])
            return subprocess.CompletedProcess(argv, 0, json.dumps(body), "")
        except sc.ClientError as exc:
            return subprocess.CompletedProcess(argv, 1, "", f"Error from server (NotFound): {exc}")


def test_main_reads_the_stack_kubeconfig_into_a_private_file_and_passes():
    kubectl = FakeKubectl(FakeCluster())
    out = io.StringIO()
    assert smoke_test.main(["--stack", "dev"], run=kubectl, out=out) == 0
    assert kubectl.calls[0] == ["pulumi", "stack", "output", "kubeconfig", "--show-secrets", "--stack", "dev"]
    paths = {p for p, _, _ in kubectl.seen_files}
    assert len(paths) == 1 and all(
        mode == 0o600 and text == FAKE_KUBECONFIG for _, mode, text in kubectl.seen_files
    )
    assert not os.path.exists(paths.pop()), "the kubeconfig file outlived the run"
    assert not any("client-key-data" in " ".join(c) for c in kubectl.calls), (
        "kubeconfig content on a command line"
    )
    # one kernel row per kata pod: 2 pods, so one row more than there are checks
    assert out.getvalue().rstrip().endswith(f"{len(ALL_CHECKS) + 1} passed, 0 failed, 0 skipped")


def test_main_fails_on_a_broken_cluster_and_names_the_check(tmp_path):
    cluster = FakeCluster()
    cluster.guest_kernel = HOST_KERNEL
    kubeconfig = tmp_path / "kc"
    kubeconfig.write_text(FAKE_KUBECONFIG)
    out = io.StringIO()
    assert smoke_test.main(["--kubeconfig", str(kubeconfig)], run=FakeKubectl(cluster), out=out) == 1
    assert re.search(r"kata pod kernel differs from its node's +FAIL +kata-app-1", out.getvalue())


def test_main_cannot_start_without_a_kubeconfig(capsys):
    assert smoke_test.main([], run=FakeKubectl(FakeCluster(), kubeconfig_out="")) == 2
    assert "pulumi up" in capsys.readouterr().err


def test_an_unreachable_cluster_stops_the_run_with_status_2(tmp_path, capsys):
    class Unreachable(FakeCluster):
        def list(self, kind, namespace=None, selector=None):
            raise sc.ClientError("Unable to connect to the server: dial tcp 203.0.113.7:6443: i/o timeout")

    kubeconfig = tmp_path / "kc"
    kubeconfig.write_text(FAKE_KUBECONFIG)
    assert smoke_test.main(["--kubeconfig", str(kubeconfig)], run=FakeKubectl(Unreachable())) == 2
    assert "Unable to connect" in capsys.readouterr().err


def test_missing_sample_workloads_are_reported_not_raised():
    class NoSamples(FakeCluster):
        def list(self, kind, namespace=None, selector=None):
            if kind == "pods":
                raise sc.ClientError('namespaces "kata-demo" not found')
            return super().list(kind, namespace, selector)

    res = sc.run_checks(NoSamples())
    assert [r.check for r in res if not r.ok] == ["sample workloads"]
    assert "sampleWorkloads" in res[-1].detail


PROBE_MANIFESTS = {
    "namespace": sp.probe_namespace(),
    "caller": sp.caller_probe("k-worker-0"),
    "guard": sp.guard_probe("k-worker-0"),
    "node": sp.node_probe("k-worker-0"),
}


@pytest.mark.parametrize("minor", VALIDATED_MINORS)
@pytest.mark.parametrize("probe", sorted(PROBE_MANIFESTS))
def test_probe_manifests_validate_strictly(probe, minor):
    assert kubernetes_validate.validate(PROBE_MANIFESTS[probe], schema_version(minor), strict=True) == minor


def test_the_caller_probe_is_admitted_in_kata_demo_and_differs_from_the_client_by_its_role_label_only():
    caller = sp.caller_probe("k-worker-0")
    assert caller["metadata"]["namespace"] == demo.NAMESPACE
    assert_restricted("caller", caller["spec"])  # kata-demo enforces Pod Security restricted
    labels = caller["metadata"]["labels"]
    assert demo.CALLER_LABELS.items() <= labels.items()
    assert not demo.CLIENT_LABELS.items() & labels.items()
    assert caller["spec"]["runtimeClassName"] == v.KATA_HANDLER


def test_the_guard_probe_is_a_kata_pod_in_a_namespace_without_policies_and_the_node_probe_sees_the_host():
    guard, node = sp.guard_probe("k-worker-0"), sp.node_probe("k-worker-0")
    assert guard["metadata"]["namespace"] == node["metadata"]["namespace"] == sp.NAMESPACE != demo.NAMESPACE
    assert guard["spec"]["runtimeClassName"] == v.KATA_HANDLER and "hostNetwork" not in guard["spec"]
    assert node["spec"]["hostNetwork"] is True and "runtimeClassName" not in node["spec"]
    (mount,) = node["spec"]["containers"][0]["volumeMounts"]
    assert mount == {"name": "host", "mountPath": "/host", "readOnly": True}
    for pod in (guard, node):  # both beside the same kata-app pod
        assert pod["spec"]["nodeName"] == "k-worker-0"
    sec = node["spec"]["containers"][0]["securityContext"]
    assert not sec.get("privileged") and sec["capabilities"] == {"drop": ["ALL"], "add": ["NET_ADMIN", "SYS_CHROOT"]}
    assert sp.probe_namespace()["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"
    # the guard's table and chain are the ones scripts/node/10-kernel.sh loads
    rules = (ROOT / "tests" / "golden" / "bootstrap-metadata-guard.nft").read_text()
    assert f"table {' '.join(sp.GUARD_TABLE)} {{" in rules and f"chain {sp.GUARD_CHAIN} {{" in rules


def test_a_new_namespace_without_its_service_account_yet_is_waited_for():
    cluster = FakeCluster()
    cluster.sa_missing = 3
    slept: list[float] = []
    res = sp.check_probes(cluster, "k-worker-0", sleep=slept.append)
    assert all(r.ok for r in res), sc.render_table(res)
    assert slept == [1, 1, 1] and cluster.created == {}


def test_the_probes_share_one_deadline():
    cluster, asked = FakeCluster(), []
    now = iter([0.0, 100.0, 350.0, 590.0])
    real_wait = cluster.wait_ready

    def wait(namespace, pod, timeout):
        asked.append(timeout)
        return real_wait(namespace, pod, 600)
    cluster.wait_ready = wait
    sp.check_probes(cluster, "k-worker-0", clock=lambda: next(now))
    assert asked == [500, 250, 10]  # 600 s in all, not 600 s each
