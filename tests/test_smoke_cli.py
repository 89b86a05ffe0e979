"""scripts/smoke_test.py's kubectl and pulumi plumbing: the kubeconfig stays off command
lines, manifests go on stdin, and the exit status says pass, fail or could not start."""

from __future__ import annotations

import io
import json
import os
import re
import stat
import subprocess
from collections.abc import Sequence

import pytest
from harness import FAKE_KUBECONFIG
from smoke_fake import ALL_CHECKS, HOST_KERNEL, FakeCluster

from scripts import smoke_checks as sc
from scripts import smoke_metrics as sm
from scripts import smoke_test


@pytest.fixture(autouse=True)
def _no_real_http(monkeypatch):
    """The real client fetches the sample load balancer over HTTP (smoke_client.fetch_url):
    here it answers like FakeCluster.fetch, off the network."""
    from scripts import smoke_client

    monkeypatch.setattr(smoke_client, "fetch_url", lambda url: "kata-app-2\n")


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
            if rest[0] in ("nodes", "pods", "tigerastatus", sm.NODE_METRICS, sm.POD_METRICS):
                sel = rest[rest.index("-l") + 1] if "-l" in rest else None
                ns = rest[rest.index("-n") + 1] if "-n" in rest else None
                body = {"items": self.cluster.list(rest[0], ns, selector=sel)}
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
