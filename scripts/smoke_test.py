#!/usr/bin/env python3
"""Live smoke test of a deployed katak8s stack: does Kata really isolate the samples?

Run after `pulumi up` (with sampleWorkloads true), from the repository root:

    ./venv/bin/python scripts/smoke_test.py                 # kubeconfig from the stack output
    ./venv/bin/python scripts/smoke_test.py --stack prod
    ./venv/bin/python scripts/smoke_test.py --kubeconfig ~/.kube/katak8s.yaml

It reads the kubeconfig (`pulumi stack output kubeconfig --show-secrets`, written to a
0600 file in a private temp dir that is removed at exit), talks to the cluster only
through `kubectl`, prints a PASS/FAIL/SKIP table and exits 1 when any check fails (2 when
it cannot start). Besides reading and exec'ing into the sample pods, it creates three
short-lived probe pods (scripts/smoke_probes.py: one in kata-demo, two in a namespace of
their own, katak8s-smoke) and deletes them before it exits.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from scripts.smoke_checks import Client, ClientError, ExecResult, render_table, run_checks  # noqa: E402

Runner = Callable[..., subprocess.CompletedProcess]
KUBECTL_TIMEOUT = 60  # seconds for one kubectl call (each probe inside is bounded by curl -m)
DELETE_WAIT = 300  # a namespace's pods, Kata VMs among them, stop before it is gone


class KubectlClient(Client):
    """Client over the kubectl CLI. The kubeconfig is passed as a file path, never as
    content on a command line."""

    def __init__(self, kubeconfig: str, run: Runner = subprocess.run, kubectl: str = "kubectl"):
        self.base = [kubectl, "--kubeconfig", kubeconfig]
        self.run = run

    def _call(
        self, args: Sequence[str], timeout: int = KUBECTL_TIMEOUT, stdin: str | None = None
    ) -> subprocess.CompletedProcess:
        try:
            return self.run(
                [*self.base, *args], input=stdin, capture_output=True, text=True, timeout=timeout, check=False
            )
        except FileNotFoundError as exc:
            raise ClientError(
                "kubectl not found on PATH; install kubectl matching the cluster's minor"
            ) from exc
        except subprocess.TimeoutExpired as exc:
            raise ClientError(f"kubectl {' '.join(args[:3])} did not answer within {timeout}s") from exc

    def _json(self, args: Sequence[str]) -> Any:
        proc = self._call([*args, "-o", "json"])
        if proc.returncode != 0:
            raise ClientError(
                f"kubectl {' '.join(args)}: {proc.stderr.strip() or 'exit ' + str(proc.returncode)}"
            )
        return json.loads(proc.stdout)

    def list(self, kind: str, namespace: str | None = None, selector: str | None = None) -> list[dict]:
        args = (
            ["get", kind] + (["-n", namespace] if namespace else []) + (["-l", selector] if selector else [])
        )
        return self._json(args).get("items", [])

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict:
        return self._json(["get", kind, name] + (["-n", namespace] if namespace else []))

    def exec(self, namespace: str, pod: str, argv: Sequence[str], timeout: int) -> ExecResult:
        proc = self._call(["exec", "-n", namespace, pod, "--", *argv], timeout=timeout)
        return ExecResult(proc.returncode, proc.stdout, proc.stderr)

    def _must(self, args: Sequence[str], timeout: int = KUBECTL_TIMEOUT, stdin: str | None = None) -> None:
        proc = self._call(args, timeout=timeout, stdin=stdin)
        if proc.returncode != 0:
            raise ClientError(f"kubectl {' '.join(args[:3])}: {proc.stderr.strip() or 'exit ' + str(proc.returncode)}")

    def create(self, manifest: dict[str, Any]) -> None:
        self._must(["create", "-f", "-"], stdin=json.dumps(manifest))

    def delete(self, kind: str, name: str, namespace: str | None = None, *, wait: bool) -> None:
        ns = ["-n", namespace] if namespace else []
        self._must(["delete", kind, name, *ns, "--ignore-not-found", f"--wait={str(wait).lower()}",
                    f"--timeout={DELETE_WAIT}s"], timeout=DELETE_WAIT + KUBECTL_TIMEOUT)

    def wait_ready(self, namespace: str, pod: str, timeout: int) -> bool:
        proc = self._call(["wait", "-n", namespace, "--for=condition=Ready", f"pod/{pod}", f"--timeout={timeout}s"],
                          timeout=timeout + KUBECTL_TIMEOUT)
        return proc.returncode == 0


@contextmanager
def stack_kubeconfig(stack: str | None, run: Runner = subprocess.run) -> Iterator[str]:
    """The stack's kubeconfig output in a private 0600 file, removed afterwards."""
    cmd = ["pulumi", "stack", "output", "kubeconfig", "--show-secrets"] + (
        ["--stack", stack] if stack else []
    )
    try:
        proc = run(cmd, capture_output=True, text=True, timeout=120, check=False)
    except FileNotFoundError as exc:
        raise ClientError("pulumi CLI not found; pass --kubeconfig FILE instead") from exc
    if proc.returncode != 0 or "clusters:" not in proc.stdout:
        raise ClientError(
            "could not read the stack's kubeconfig output (run `pulumi up` first, or pass "
            f"--kubeconfig FILE): {proc.stderr.strip() or 'output has no clusters: section'}"
        )
    with tempfile.TemporaryDirectory(prefix="katak8s-smoke-") as tmp:
        path = os.path.join(tmp, "kubeconfig")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(proc.stdout)
        yield path


def main(argv: Sequence[str] | None = None, *, run: Runner = subprocess.run, out=sys.stdout) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: the stack's kubeconfig output)")
    parser.add_argument(
        "--stack", help="Pulumi stack to read the kubeconfig from (default: the selected one)"
    )
    args = parser.parse_args(argv)
    try:
        if args.kubeconfig:
            results = run_checks(KubectlClient(os.path.expanduser(args.kubeconfig), run=run))
        else:
            with stack_kubeconfig(args.stack, run=run) as path:
                results = run_checks(KubectlClient(path, run=run))
    except ClientError as exc:
        print(f"smoke test could not start: {exc}", file=sys.stderr)
        return 2
    print(render_table(results), file=out)
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
