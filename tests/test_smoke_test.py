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

import pytest
from harness import FAKE_KUBECONFIG

from components import versions as v
from components.kubernetes import demo
from scripts import smoke_checks as sc
from scripts import smoke_test

HOST_KERNEL, GUEST_KERNEL = "6.8.0-45-generic", "6.12.36"


def _node(name: str, kata: bool, ready: bool = True) -> dict:
    labels = {"kubernetes.io/hostname": name, **({v.KATA_NODE_LABEL: "true"} if kata else {})}
    return {
        "metadata": {"name": name, "labels": labels},
        "status": {
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "nodeInfo": {"kernelVersion": HOST_KERNEL},
        },
    }


def _pod(name: str, app: str, node: str, runtime_class: str | None) -> dict:
    spec = {"nodeName": node, **({"runtimeClassName": runtime_class} if runtime_class else {})}
    return {
        "metadata": {"name": name, "namespace": demo.NAMESPACE, "labels": {demo.APP_LABEL: app}},
        "spec": spec,
        "status": {"phase": "Running"},
    }


CLIENT_POD = "http-client-5d9c7-x2x4q"  # the client is a Deployment: its pod has a generated name


class FakeCluster(sc.Client):
    """A cluster where Kata works and the policies hold; tests break one thing at a time."""

    def __init__(self) -> None:
        self.nodes = [_node("k-cp-0", False), _node("k-worker-0", True), _node("k-worker-1", True)]
        self.pods = [
            _pod("kata-app-1", demo.KATA_APP, "k-worker-0", v.KATA_HANDLER),
            _pod("kata-app-2", demo.KATA_APP, "k-worker-1", v.KATA_HANDLER),
            _pod("runc-app-1", demo.RUNC_APP, "k-worker-0", None),
            _pod("runc-app-2", demo.RUNC_APP, "k-worker-1", None),
            _pod(CLIENT_POD, demo.CLIENT, "k-worker-1", v.KATA_HANDLER),
        ]
        self.objects = {
            ("runtimeclass", v.KATA_HANDLER): {"metadata": {"name": "kata"}, "handler": v.KATA_HANDLER},
            ("deployment", demo.KATA_APP): {"metadata": {"name": demo.KATA_APP}, "spec": {"replicas": 2}},
        }
        self.guest_kernel = GUEST_KERNEL
        self.curl: dict[tuple[str, str], sc.ExecResult] = {
            (CLIENT_POD, sc.SERVICE_URL): sc.ExecResult(0, "kata-app-2", ""),
            ("runc-app-1", sc.SERVICE_URL): sc.ExecResult(28, "", "curl: (28) Connection timed out"),
            ("kata-app-1", sc.METADATA_URL): sc.ExecResult(28, "", "curl: (28) Connection timed out"),
        }
        self.execs: list[tuple[str, tuple[str, ...]]] = []

    def list(self, kind, namespace=None, selector=None):
        if kind == "nodes":
            return copy.deepcopy(self.nodes)
        key, value = selector.split("=")
        return [copy.deepcopy(p) for p in self.pods if p["metadata"]["labels"].get(key) == value]

    def get(self, kind, name, namespace=None):
        if (kind, name) not in self.objects:
            raise sc.ClientError(f'{kind}s "{name}" not found')
        return copy.deepcopy(self.objects[(kind, name)])

    def exec(self, namespace, pod, argv, timeout):
        assert namespace == demo.NAMESPACE and timeout > sc.PROBE_SECONDS
        self.execs.append((pod, tuple(argv)))
        if list(argv) == ["uname", "-r"]:
            p = next(p for p in self.pods if p["metadata"]["name"] == pod)
            return sc.ExecResult(
                0, (self.guest_kernel if p["spec"].get("runtimeClassName") else HOST_KERNEL) + "\n", ""
            )
        assert argv[:4] == ["curl", "-sS", "-m", str(sc.PROBE_SECONDS)], argv
        return self.curl[(pod, argv[4])]


def test_a_healthy_cluster_passes_every_check():
    cluster = FakeCluster()
    res = sc.run_checks(cluster)
    assert all(r.ok for r in res), sc.render_table(res)
    assert {r.check for r in res} == {
        "all nodes Ready",
        "kata nodes labeled",
        "RuntimeClass kata",
        "kata pods run with the RuntimeClass",
        "runc twin runs without a RuntimeClass",
        "kata pod kernel differs from its node's",
        "runc pod kernel matches its node's",
        "service answers the allowed client",
        "service times out for an unlabeled pod",
        "metadata service unreachable from a kata pod",
    }
    assert ("kata-app-1", ("uname", "-r")) in cluster.execs and (
        "kata-app-2",
        ("uname", "-r"),
    ) in cluster.execs


def _set(path: Callable[[FakeCluster], dict], key: str, value) -> Callable[[FakeCluster], None]:
    return lambda c: path(c).__setitem__(key, value)


KATA_CLASS, KATA_KERNEL = "kata pods run with the RuntimeClass", "kata pod kernel differs from its node's"
SERVICE, TIMEOUT = "service answers the allowed client", "service times out for an unlabeled pod"
METADATA = "metadata service unreachable from a kata pod"
TWIN, TWIN_KERNEL = "runc twin runs without a RuntimeClass", "runc pod kernel matches its node's"

# breakage -> (how, the exact set of checks that must fail)
BREAKAGES: dict[str, tuple[Callable[[FakeCluster], None], set[str]]] = {
    "node not ready": (
        lambda c: c.nodes.__setitem__(2, _node("k-worker-1", True, ready=False)),
        {"all nodes Ready"},
    ),
    "no kata label": (
        lambda c: [n["metadata"]["labels"].pop(v.KATA_NODE_LABEL, None) for n in c.nodes],
        {"kata nodes labeled", KATA_CLASS},
    ),
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
    "kata pod pending": (_set(lambda c: c.pods[1]["status"], "phase", "Pending"), {KATA_CLASS}),
    "one kata pod short": (
        lambda c: c.pods.pop(1),
        {KATA_CLASS, SERVICE},
    ),  # the answer names a pod not listed
    "twin with class": (_set(lambda c: c.pods[2]["spec"], "runtimeClassName", "kata"), {TWIN, TWIN_KERNEL}),
    "kata deployment scaled to zero": (
        lambda c: [
            c.pods.pop(0),
            c.pods.pop(0),
            c.objects[("deployment", demo.KATA_APP)]["spec"].update(replicas=0),
        ],
        {KATA_CLASS, KATA_KERNEL, SERVICE, METADATA},  # nothing to probe: fails, never skipped
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
    "unlabeled pod answered": (
        _set(lambda c: c.curl, ("runc-app-1", sc.SERVICE_URL), sc.ExecResult(0, "kata-app-1", "")),
        {TIMEOUT},
    ),
    "unlabeled pod refused": (
        _set(lambda c: c.curl, ("runc-app-1", sc.SERVICE_URL), sc.ExecResult(7, "", "refused")),
        {TIMEOUT},
    ),
    "metadata reachable": (
        _set(lambda c: c.curl, ("kata-app-1", sc.METADATA_URL), sc.ExecResult(0, "{}", "")),
        {METADATA},
    ),
    "curl missing": (
        _set(lambda c: c.curl, ("kata-app-1", sc.METADATA_URL), sc.ExecResult(127, "", "not found")),
        {METADATA},
    ),
}


@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_each_breakage_fails_exactly_the_checks_it_should(breakage):
    cluster = FakeCluster()
    mutate, expected = BREAKAGES[breakage]
    mutate(cluster)
    res = sc.run_checks(cluster)
    assert {r.check for r in res if not r.ok} == expected, sc.render_table(res)


def test_table_and_exit_status():
    res = [sc.Result("a check", True, "fine"), sc.Result("another check", False, "broken")]
    text = sc.render_table(res)
    assert text.splitlines() == [
        "CHECK          RESULT  DETAIL",
        "a check        PASS    fine",
        "another check  FAIL    broken",
        "1 passed, 1 failed",
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
        try:
            if args[0] == "exec":
                ns, pod, sep, *cmd = args[2:]
                assert args[1] == "-n" and sep == "--"
                r = self.cluster.exec(ns, pod, cmd, kw["timeout"])
                return subprocess.CompletedProcess(argv, r.rc, r.stdout, r.stderr)
            assert args[0] == "get" and args[-2:] == ["-o", "json"]
            rest = args[1:-2]
            if rest[0] in ("nodes", "pods"):
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
    assert out.getvalue().rstrip().endswith("11 passed, 0 failed")


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
