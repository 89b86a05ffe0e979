"""K1 in tests/provider_rules.py: pulumi-kubernetes replaces an object only for what its
forceNew table names (provider/pkg/provider/diff.go forceNewProperties); a coarser rule
made every annotation or label change look like a delete and re-create of the samples."""

from __future__ import annotations

import copy

import pytest
from harness import Registration
from provider_rules import provider_replace_keys

DEPLOYMENT = "kubernetes:apps/v1:Deployment"


def _reg(type_: str, **inputs) -> Registration:
    return Registration(urn=f"urn:x::{type_}::n", type=type_, name="n", parent="", custom=True, inputs=inputs,
                        provider="", dependencies=[], property_dependencies={}, delete_before_replace=False,
                        deleted_with="", replace_with=[], additional_secret_outputs=[], replace_on_changes=[],
                        ignore_changes=[], protect=False)


BASE = {"metadata": {"name": "kata-app", "namespace": "kata-demo", "labels": {"app": "kata-app"}},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "kata-app"}},
                 "template": {"metadata": {"labels": {"app": "kata-app"}}, "spec": {}}}}

CASES = {
    "an annotation": (lambda d: d["metadata"].update(annotations={"pulumi.com/timeoutSeconds": "1200"}), set()),
    "a pod label": (lambda d: d["spec"]["template"]["metadata"]["labels"].update(x="y"), set()),
    "the replicas": (lambda d: d["spec"].update(replicas=3), set()),
    "the name": (lambda d: d["metadata"].update(name="kata-app-2"), {"metadata"}),
    "the namespace": (lambda d: d["metadata"].update(namespace="other"), {"metadata"}),
    "the selector": (lambda d: d["spec"]["selector"]["matchLabels"].update(x="y"), {"spec"}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_deployment_is_replaced_only_for_its_force_new_paths(case):
    mutate, want = CASES[case]
    new = copy.deepcopy(BASE)
    mutate(new)
    changed = {k for k in new if new[k] != BASE[k]}
    old, reg = _reg(DEPLOYMENT, **copy.deepcopy(BASE)), _reg(DEPLOYMENT, **new)
    assert provider_replace_keys(reg, changed, old) == want


def test_unknown_old_values_are_judged_coarsely():
    """A dependency being replaced leaves the metadata unknown: it may name a new object."""
    assert provider_replace_keys(_reg(DEPLOYMENT, **BASE), {"metadata"}) == {"metadata"}
    assert provider_replace_keys(_reg(DEPLOYMENT, **BASE), {"spec"}) == set()


def test_a_service_type_change_replaces_it():
    svc = {"metadata": {"name": "s"}, "spec": {"type": "ClusterIP", "ports": [{"port": 80}]}}
    new = copy.deepcopy(svc)
    new["spec"]["type"] = "LoadBalancer"
    assert provider_replace_keys(_reg("kubernetes:core/v1:Service", **new), {"spec"},
                                 _reg("kubernetes:core/v1:Service", **svc)) == {"spec"}
    new = copy.deepcopy(svc)
    new["spec"]["ports"] = [{"port": 8080}]
    assert provider_replace_keys(_reg("kubernetes:core/v1:Service", **new), {"spec"},
                                 _reg("kubernetes:core/v1:Service", **svc)) == set()
