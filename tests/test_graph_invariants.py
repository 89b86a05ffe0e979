"""Whole-program graph invariants (style guide rule 13c), on small and HA stacks."""

from __future__ import annotations

import re

import pytest
from harness import run_program

CONFIGS = {
    "dev": {},
    "ha-crio": {"controlPlaneCount": 3, "workerCount": 4, "containerRuntime": "crio",
                "floatingIpPerNode": True, "kataDedicatedWorkers": True, "clusterName": "prod"},
    "no-samples": {"workerCount": 0, "sampleWorkloads": False, "bootVolumeSize": 40},
}
TOKEN = re.compile(r"^katak8s:[a-z]+:[A-Z][A-Za-z]+$")
# The SDK's own components we use: helm.v3.Chart renders the Calico CRDs (kubernetes/calico.py).
SDK_COMPONENTS = {"kubernetes:helm.sh/v3:Chart"}


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def graph(request):
    return request.param, run_program(CONFIGS[request.param])


def test_every_resource_lives_in_a_katak8s_component(graph):
    _, g = graph
    components = {r.urn for r in g if not r.custom}
    for r in g:
        if r.custom:
            assert r.parent in components, f"{r.type} {r.name} is not inside a component"
        else:
            assert TOKEN.match(r.type) or r.type in SDK_COMPONENTS, (
                f"component token {r.type} is not katak8s:<module>:<Type>")


def test_names_are_unique_and_derived_from_the_component_or_node(graph):
    case, g = graph
    cluster = CONFIGS[case].get("clusterName", "dev")
    seen: dict[tuple[str, str], int] = {}
    for r in g:
        seen[(r.type, r.name)] = seen.get((r.type, r.name), 0) + 1
        top = g.ancestors(r)[-1].name if g.ancestors(r) else r.name
        assert r.name.startswith((f"{cluster}-", top)), f"{r.name} is named after neither a node nor {top}"
    assert [k for k, n in seen.items() if n > 1] == []


def test_openstack_physical_names_carry_the_cluster_name(graph):
    case, g = graph
    cluster = CONFIGS[case].get("clusterName", "dev")
    for r in g:
        name = r.plain("name")
        if r.type.startswith("openstack:") and isinstance(name, str):
            assert name == cluster or name.startswith(f"{cluster}-"), f"{r.type} {r.name} is named {name!r}"


def test_every_component_registers_real_outputs(graph):
    # register_outputs({}) is the anti-pattern: a component must expose what it built.
    # The mock monitor does not see register_outputs, so read it from the source.
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent / "components"
    for path in root.rglob("*.py"):
        text = path.read_text()
        assert "register_outputs({})" not in text, path
        if "pulumi.ComponentResource)" in text:
            assert "register_outputs(" in text, f"{path} declares a component without register_outputs"
