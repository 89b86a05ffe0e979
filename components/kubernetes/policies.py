"""NetworkPolicies of the sample namespace: deny everything, then allow exactly the demo.

This is the original design's deny-then-allow experiment kept as policy that is always
on. No rule names an ipBlock, so nothing can reach the OpenStack metadata service
(demo.METADATA_CIDR) from these pods; a test keeps it that way for any future rule.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.kubernetes import demo
from components.naming import type_token


def _policy(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": demo.NAMESPACE},
        "spec": spec,
    }


def load_balancer_policy(node_cidr: str) -> dict[str, Any]:
    """sampleLoadBalancer: kata-app admits its port from the node subnet, where the Octavia
    amphora's member-side address lives (samples.public_service: no masquerade)."""
    return _policy(f"{demo.KATA_APP}-ingress-from-load-balancer", {
        "podSelector": {"matchLabels": {demo.APP_LABEL: demo.KATA_APP}},
        "policyTypes": ["Ingress"],
        "ingress": [{"from": [{"ipBlock": {"cidr": node_cidr}}],
                     "ports": [{"protocol": "TCP", "port": demo.HTTP_PORT}]}],
    })


def network_policies(load_balancer_cidr: str | None = None) -> list[dict[str, Any]]:
    """The namespace's policies, in the order they are declared (with the load balancer's
    when `load_balancer_cidr`, the node subnet, is given)."""
    tcp_http = [{"protocol": "TCP", "port": demo.HTTP_PORT}]
    kata_app = {"matchLabels": {demo.APP_LABEL: demo.KATA_APP}}
    client = {"matchLabels": dict(demo.CLIENT_LABELS)}
    callers = {"matchLabels": dict(demo.CALLER_LABELS)}
    return [
        # An empty podSelector selects every pod; listing both types with no rules denies both.
        _policy("default-deny-all", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}),
        _policy(
            "allow-dns-egress",
            {
                "podSelector": {},
                "policyTypes": ["Egress"],
                "egress": [
                    {
                        # Both selectors in ONE peer: kube-dns pods in kube-system (AND), not
                        # "anything in kube-system OR any kube-dns-labelled pod anywhere".
                        "to": [
                            {
                                "namespaceSelector": {
                                    "matchLabels": {"kubernetes.io/metadata.name": demo.DNS_NAMESPACE}
                                },
                                "podSelector": {"matchLabels": dict(demo.DNS_LABELS)},
                            }
                        ],
                        "ports": [
                            {"protocol": "UDP", "port": demo.DNS_PORT},
                            {"protocol": "TCP", "port": demo.DNS_PORT},
                        ],
                    }
                ],
            },
        ),
        _policy(
            f"{demo.KATA_APP}-ingress-from-client",
            {
                "podSelector": kata_app,
                "policyTypes": ["Ingress"],
                "ingress": [{"from": [{"podSelector": client}], "ports": tcp_http}],
            },
        ),
        _policy(
            f"{demo.CLIENT}-egress-to-{demo.KATA_APP}",
            {
                # The client and the smoke test's probe: their egress is allowed alike, so
                # only kata-app's ingress rule tells them apart.
                "podSelector": callers,
                "policyTypes": ["Egress"],
                "egress": [{"to": [{"podSelector": kata_app}], "ports": tcp_http}],
            },
        ),
    ] + ([load_balancer_policy(load_balancer_cidr)] if load_balancer_cidr else [])


class DemoNetworkPolicies(pulumi.ComponentResource):
    """Declares network_policies() in the sample namespace."""

    def __init__(
        self,
        name: str,
        *,
        namespace: k8s.core.v1.Namespace,
        provider: k8s.Provider,
        load_balancer_cidr: str | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__(type_token("kubernetes", "DemoNetworkPolicies"), name, None, opts)
        policies = network_policies(load_balancer_cidr)
        self.policies = [
            k8s.networking.v1.NetworkPolicy(
                f"{name}-{p['metadata']['name']}",
                metadata=p["metadata"],
                spec=p["spec"],
                opts=pulumi.ResourceOptions(parent=self, provider=provider, depends_on=[namespace]),
            )
            for p in policies
        ]
        self.register_outputs({"names": [p["metadata"]["name"] for p in policies]})
