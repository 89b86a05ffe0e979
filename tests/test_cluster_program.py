"""The cluster-formation guarantees on the WHOLE program (__main__.py under mocks), with the
real NodeBootstrap, Kubernetes add-ons and outputs around KubeadmCluster."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from harness import Graph, run_program
from test_cluster_graph import (
    CMD,
    SUPPLIED_KEY,
    changed_inputs,
    cluster_commands,
    comparable,
    ordering_problems,
    scale_in_problems,
    secret_leaks,
)

from components.outputs import OUTPUT_NAMES, SECRET_OUTPUTS

README = Path(__file__).resolve().parent.parent / "README.md"


def _outputs_section() -> str:
    """The README's "Outputs" section: the documented contract."""
    return README.read_text().split("\n## Outputs\n", 1)[1].split("\n## ", 1)[0]


@pytest.fixture(scope="module")
def ha() -> Graph:
    return run_program({"controlPlaneCount": 3, "workerCount": 3, "sshPrivateKey": SUPPLIED_KEY})


def node_phases(graph: Graph, node: str) -> list:
    """The node's bootstrap commands (NodeBootstrap's children named `<node>-<phase>`)."""
    return [r for r in graph.of_type(CMD) if r.name.startswith(f"{node}-")
            and graph.by_urn[r.parent].type == "katak8s:bootstrap:NodeBootstrap"]


def test_joins_wait_for_init_and_workers_join_in_parallel(ha):
    assert ordering_problems(ha, 3, 3) == []
    init = ha.named("dev-cp-0-kubeadm-init")
    for node, join in cluster_commands(ha, "kubeadm-join").items():
        assert graph_waits_for_own_bootstrap(ha, join, node)
        assert graph_waits_for_own_bootstrap(ha, init, "dev-cp-0")


def graph_waits_for_own_bootstrap(graph: Graph, reg, node: str) -> bool:
    return graph.depends_on(reg, graph.named(f"{node}-bootstrap"))  # ends with the kube packages


def test_no_bootstrap_waits_on_another_node(ha):
    nodes = [f"dev-cp-{i}" for i in range(3)] + [f"dev-worker-{i}" for i in range(3)]
    for node in nodes:
        phases = node_phases(ha, node)
        assert len(phases) == 2, node  # bootstrap and kata (components/nodes/bootstrap.py)
        for reg in phases:
            for other in nodes:
                if other == node:
                    continue
                # Reaching a node through cp-0 (the jump host) needs cp-0's server and
                # address, never its phases; and no node waits for any other worker.
                for dep in node_phases(ha, other):
                    assert not ha.depends_on(reg, dep), f"{reg.name} waits for {dep.name}"
                if other.startswith("dev-worker-"):
                    assert not ha.depends_on(reg, ha.named(other)), f"{reg.name} waits for server {other}"


def test_no_secret_leaks_anywhere_in_the_program(ha):
    assert secret_leaks(ha) == []


def test_every_join_has_the_scale_in_path(ha):
    assert len(cluster_commands(ha, "membership")) == 5
    assert scale_in_problems(ha) == []


def test_scale_out_changes_no_existing_input_in_the_whole_program():
    before = run_program({"workerCount": 2})
    after = run_program({"workerCount": 3})
    assert changed_inputs(before, after) == []
    assert {r.name for r in after} - {r.name for r in before}
    assert all("worker-2" in r.name or "dev-worker-2" in str(r.inputs.get("name", ""))
               for r in after if r.urn not in before.by_urn)


def test_a_re_evaluation_of_the_program_is_identical():
    a, b = run_program({"workerCount": 2}), run_program({"workerCount": 2})
    assert {r.urn: comparable(r) for r in a} == {r.urn: comparable(r) for r in b}


def test_exports_are_the_documented_contract(ha):
    assert set(ha.exports) == set(OUTPUT_NAMES)
    assert {name for name, e in ha.exports.items() if e.secret} == SECRET_OUTPUTS
    e = {name: export.value for name, export in ha.exports.items()}
    assert e["apiEndpoint"] == "https://<floating IP of endpoint-fip>:6443"
    assert "server: https://<floating IP of endpoint-fip>:6443" in e["kubeconfig"]
    assert e["sshPrivateKey"].strip() == SUPPLIED_KEY
    assert e["kubernetesVersion"] == "1.36.4" and e["kataVersion"] == "4.1.0"
    assert e["containerRuntime"] == "containerd" and e["clusterName"] == "dev"
    assert e["runtimeClassNames"] == ["kata"]
    assert e["controlPlanePrivateIps"] == [f"<fixed IP of dev-cp-{i}-port>" for i in range(3)]
    assert e["workerPrivateIps"] == [f"<fixed IP of dev-worker-{i}-port>" for i in range(3)]
    assert e["sshUser"] == "ubuntu" and e["sshJumpHost"] == "<floating IP of dev-jump-host-fip>"
    [net] = ha.of_type("openstack:networking/network:Network")
    [subnet] = ha.of_type("openstack:networking/subnet:Subnet")
    assert (e["networkId"], e["subnetId"]) == (f"<id of {net.name}>", f"<id of {subnet.name}>")
    assert sorted(e["securityGroupIds"]) == ["control-plane", "worker"]
    assert (e["podCidr"], e["serviceCidr"]) == ("192.168.0.0/16", "10.96.0.0/12")


def test_docs_list_every_output_with_its_secrecy():
    rows = re.findall(r"^\| `(\w+)` \| ([^|]+) \| ([^|]+) \|", _outputs_section(), re.M)
    assert [name for name, _, _ in rows] == list(OUTPUT_NAMES)
    assert {name for name, _, secret in rows if secret.strip() == "**yes**"} == SECRET_OUTPUTS
    assert all(secret.strip() in ("**yes**", "no") for _, _, secret in rows)
