"""Declares the sample workloads (manifests in samples.py) in their own namespace.

Every child waits for `after` (Calico ready, the RuntimeClass, the NetworkPolicies, every
join): a component's depends_on is not passed on to its children, so it is set on each.
"""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_kubernetes as k8s

from components import versions as v
from components.config import ClusterConfig
from components.kubernetes import demo
from components.kubernetes.samples import (
    app_deployment,
    app_disruption_budget,
    app_service,
    client_deployment,
    namespace_manifest,
    public_service,
)
from components.naming import type_token


def demo_namespace(
    name: str,
    cfg: ClusterConfig,
    *,
    provider: k8s.Provider,
    parent: pulumi.Resource,
    depends_on: Sequence[pulumi.Resource],
) -> k8s.core.v1.Namespace:
    m = namespace_manifest(cfg)
    return k8s.core.v1.Namespace(
        name,
        metadata=m["metadata"],
        opts=pulumi.ResourceOptions(parent=parent, provider=provider, depends_on=list(depends_on)),
    )


class SampleWorkloads(pulumi.ComponentResource):
    """The kata app, its Service, the runc twin and the client. Every child waits for
    `after` (Calico ready, the RuntimeClass, the NetworkPolicies): a component's
    depends_on is not passed on to its children, so it is set on each."""

    def __init__(
        self,
        name: str,
        cfg: ClusterConfig,
        *,
        namespace: k8s.core.v1.Namespace,
        provider: k8s.Provider,
        after: Sequence[pulumi.Resource],
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__(type_token("kubernetes", "SampleWorkloads"), name, None, opts)
        child = pulumi.ResourceOptions(parent=self, provider=provider, depends_on=[namespace, *after])
        kata = app_deployment(cfg, demo.KATA_APP, v.KATA_HANDLER)
        runc = app_deployment(cfg, demo.RUNC_APP, None)
        svc, client = app_service(), client_deployment(cfg)
        self.kata_app = k8s.apps.v1.Deployment(
            f"{name}-{demo.KATA_APP}", metadata=kata["metadata"], spec=kata["spec"], opts=child
        )
        self.service = k8s.core.v1.Service(
            f"{name}-{demo.KATA_APP}-svc", metadata=svc["metadata"], spec=svc["spec"], opts=child
        )
        self.runc_app = k8s.apps.v1.Deployment(
            f"{name}-{demo.RUNC_APP}", metadata=runc["metadata"], spec=runc["spec"], opts=child
        )
        self.client = k8s.apps.v1.Deployment(
            f"{name}-{demo.CLIENT}", metadata=client["metadata"], spec=client["spec"], opts=child
        )
        pdb = app_disruption_budget(cfg)
        self.disruption_budget = pdb and k8s.policy.v1.PodDisruptionBudget(
            f"{name}-{demo.KATA_APP}-pdb", metadata=pdb["metadata"], spec=pdb["spec"], opts=child
        )
        self.public = None
        if cfg.sample_load_balancer and cfg.cloud_provider:
            public = public_service(cfg)
            self.public = k8s.core.v1.Service(
                f"{name}-{demo.PUBLIC_SERVICE}", metadata=public["metadata"], spec=public["spec"], opts=child)
        self.register_outputs({"namespace": demo.NAMESPACE, "service": self.service.metadata})
