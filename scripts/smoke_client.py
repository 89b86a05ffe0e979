"""What the smoke test's checks need from a cluster (Client), and what they report (Result).

scripts/smoke_test.py implements Client over kubectl; tests/test_smoke_test.py over a fake
cluster. Kept apart from the checks so that smoke_checks and smoke_probes share it.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from components.kubernetes import demo

PROBE_SECONDS = 5  # curl -m: a NetworkPolicy or guard drop shows up as a timeout
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

    def create(self, manifest: dict[str, Any]) -> None:
        raise NotImplementedError

    def fetch(self, url: str) -> str:
        """HTTP GET from this machine (the sample load balancer): the body, or OSError."""
        return fetch_url(url)

    def delete(self, kind: str, name: str, namespace: str | None = None, *, wait: bool) -> None:
        """Deletes if present; with `wait`, returns once it is gone."""
        raise NotImplementedError

    def wait_ready(self, namespace: str, pod: str, timeout: int) -> bool:
        """True once the pod is Ready, False when `timeout` seconds pass first."""
        raise NotImplementedError


@dataclass(frozen=True)
class Result:
    check: str
    ok: bool
    detail: str
    skipped: bool = False  # could not apply to this cluster (said why in detail); never a failure


def skip(check: str, why: str) -> Result:
    return Result(check, True, why, skipped=True)


def name(obj: dict) -> str:
    return obj["metadata"]["name"]


def curl(client: Client, namespace: str, pod: str, url: str) -> ExecResult:
    return client.exec(namespace, pod, ["curl", "-sS", "-m", str(PROBE_SECONDS), url], EXEC_TIMEOUT)


def blocked(res: ExecResult) -> bool:
    """A drop, not an answer and not a broken probe: a timeout or a refused connection."""
    return res.rc in (CURL_TIMEOUT, CURL_CONNECT_FAILED)


def fetch_url(url: str) -> str:
    with urllib.request.urlopen(url, timeout=2 * PROBE_SECONDS) as response:  # noqa: S310 (our own load balancer)
        return response.read().decode(errors="replace")
