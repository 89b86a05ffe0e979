"""The smoke test's check of the sample load balancer (sampleLoadBalancer, issue #17 §2).

The Service kata-app-public (components/kubernetes/samples.py public_service) has an
address once the cloud controller made its Octavia load balancer and floating IP; the
check fetches /hostname through it from where the smoke test runs (which must be inside
allowedCidrs) and wants a kata-app pod's name back. Skipped, with the reason, when the
Service does not exist. Pure with respect to the cluster and the network: both go through
the Client (its `fetch`: scripts/smoke_client.py fetch_url for the real one).
"""

from __future__ import annotations

import http.client
import time

from components.kubernetes import demo
from scripts.smoke_client import Client, ClientError, Result, skip

ANSWERS = "the sample load balancer answers from outside"
# Members without a local pod (externalTrafficPolicy Local) stay in the pool until the health
# monitor marks them down (max-retries-down 3 x delay 5 s): retry for about a minute.
ATTEMPTS, PAUSE_SECONDS = 6, 10


def check_load_balancer(client: Client, kata_pods: list[str]) -> list[Result]:
    try:
        svc = client.get("service", demo.PUBLIC_SERVICE, demo.NAMESPACE)
    except ClientError as exc:
        if "notfound" in str(exc).lower().replace(" ", ""):
            return [skip(ANSWERS, f"no Service {demo.PUBLIC_SERVICE} (sampleLoadBalancer false)")]
        return [Result(ANSWERS, False, str(exc))]  # an API error is no skip
    ingress = (svc.get("status", {}).get("loadBalancer", {}).get("ingress") or [{}])[0]
    address = ingress.get("ip") or ingress.get("hostname")
    if not address:
        return [Result(ANSWERS, False, f"{demo.PUBLIC_SERVICE} has no address: see `kubectl -n {demo.NAMESPACE} "
                       f"describe service {demo.PUBLIC_SERVICE}` and the cloud controller's logs")]
    url = f"http://{address}:{demo.PUBLIC_PORT}/hostname"
    detail = ""
    for attempt in range(ATTEMPTS):
        if attempt:
            time.sleep(PAUSE_SECONDS)
        try:
            body = client.fetch(url).strip()
        except (OSError, http.client.HTTPException) as exc:
            detail = f"{url}: {exc} after {attempt + 1} attempts (is this machine inside allowedCidrs?)"
            continue
        return [Result(ANSWERS, body in kata_pods, f"{url} -> {body or '(empty)'}")]
    return [Result(ANSWERS, False, detail)]
