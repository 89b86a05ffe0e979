"""NodeBootstrap under Pulumi mocks: per-node chains, parallel nodes, stable inputs on scale
out, bundles carrying the one runtime handler."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pulumi
import pulumi_command as command
import pytest
from harness import run_program

from components import naming
from components import versions as v
from components.config import load_config
from components.nodes import library, phase, steps
from components.nodes.bootstrap import NodeBootstrap
from components.openstack.target import NodeTarget

COPY, CMD = "command:remote:CopyToRemote", "command:remote:Command"


def _program(workers: int, control_planes: int = 1):
    def program():
        cfg = load_config()

        def target(role: str, i: int) -> NodeTarget:
            name = naming.node_name(cfg.cluster_name, role, i)
            server = pulumi.CustomResource("katak8s:test:Server", name, {})
            return NodeTarget(name=name, role=role, index=i, flavor=f"{role}-flavor", ssh_user="ubuntu",
                              connection=command.remote.ConnectionArgs(host=f"203.0.113.{i}", user="ubuntu"),
                              private_ip=pulumi.Output.from_input(f"10.42.0.{i}"), server=server)

        nodes = SimpleNamespace(
            control_planes=[target(naming.CONTROL_PLANE, i) for i in range(control_planes)],
            workers=[target(naming.WORKER, i) for i in range(workers)])
        b = NodeBootstrap("bootstrap", cfg, nodes=nodes)
        assert list(b.phases) == [t.name for t in [*nodes.control_planes, *nodes.workers]]
        for n, phases in b.phases.items():
            by_name = {p.command._name: p.command for p in phases}
            assert b.ready[n] == [by_name[f"{n}-bootstrap"], by_name[f"{n}-kata"]]
            assert b.kube_ready[n] is by_name[f"{n}-bootstrap"]
    return program


def _bundle(reg) -> str:
    return phase.program_of(reg.plain("create"))


@pytest.fixture(scope="module")
def graph():
    return run_program({"containerRuntime": "crio"}, fn=_program(workers=2, control_planes=3))


def test_each_node_runs_its_five_phases_in_two_commands_under_the_component(graph):
    """Issue #15: the scripts once, then `bootstrap` (preflight, kernel, runtime, kube
    packages, in that order) and `kata` after it: three SSH steps per node."""
    comp = graph.of_type(naming.type_token("bootstrap", "NodeBootstrap"))[0]
    for node in ("dev-cp-0", "dev-cp-2", "dev-worker-1"):
        first, kata = graph.named(f"{node}-bootstrap"), graph.named(f"{node}-kata")
        scripts = graph.named(f"{node}-scripts")
        assert [r.name for r in graph if r.name.startswith(node + "-") and r.type in (COPY, CMD)] == [
            f"{node}-scripts", f"{node}-bootstrap", f"{node}-kata"]
        for reg in (first, kata, scripts):
            assert reg.parent == comp.urn
        assert graph.depends_on(kata, first) and graph.depends_on(first, scripts)
        assert scripts.plain("source")["path"] == "scripts/remote"  # a FileArchive: a path, no text
        assert scripts.plain("remotePath") == f"/home/ubuntu/.katak8s/scripts/{library.version()}"
        parsed = steps.parse(_bundle(first))
        assert [name for name, _ in parsed] == ["preflight", "kernel", "runtime", "kube-packages"]
        # The preview names the phase that changed: one trigger per phase.
        assert first.plain("triggers") == [f"{name}:{phase.sha256(p)}" for name, p in parsed]
        assert first.plain("create") == phase.command_line(_bundle(first), 4 * 1800 + 60)
        for name, program in parsed:
            assert f"KATAK8S_PHASE={name}\n" in program
        assert kata.plain("triggers") == [phase.sha256(_bundle(kata))]
        assert kata.plain("create") == phase.command_line(_bundle(kata), 1800)


def test_no_node_waits_for_another(graph):
    nodes = ["dev-cp-0", "dev-cp-1", "dev-cp-2", "dev-worker-0", "dev-worker-1"]
    for a in nodes:
        for b in nodes:
            if a != b:
                assert not graph.depends_on(graph.named(f"{a}-kata"), graph.named(f"{b}-scripts"))


def test_bundles_carry_the_single_kata_handler(graph):
    runtime = graph.phase_program("dev-worker-0", "runtime")
    assert "KATAK8S_SCRIPT=node/20-crio.sh\n" in runtime
    assert re.findall(r"^KATA_HANDLER=(.*)$", runtime, re.M) == [v.KATA_HANDLER]
    kata = graph.phase_program("dev-worker-0", "kata")
    assert re.findall(r"^KATA_HANDLER=(.*)$", kata, re.M) == [v.KATA_HANDLER]
    assert "FLAVOR=worker-flavor" in graph.phase_program("dev-worker-0", "preflight")
    assert "PREPULL_IMAGES=true" in graph.phase_program("dev-cp-1", "kube-packages")
    assert "PREPULL_IMAGES=false" in graph.phase_program("dev-worker-1", "kube-packages")


def test_adding_a_worker_changes_no_existing_input():
    before = run_program(fn=_program(workers=2))
    after = run_program(fn=_program(workers=3))
    old = {r.name: r.inputs for r in before if r.type in (COPY, CMD)}
    new = {r.name: r.inputs for r in after if r.type in (COPY, CMD)}
    assert {n: new[n] for n in old} == old
    assert sorted(set(new) - set(old)) == ["dev-worker-2-bootstrap", "dev-worker-2-kata", "dev-worker-2-scripts"]


@pytest.mark.parametrize("runtime", ["containerd", "crio"])
def test_whole_program_runtime_table_runtimeclass_and_workloads_agree(runtime):
    """Pitfall 1 (upstream-bootstrap.md §10): the RuntimeClass handler must equal the CRI
    runtime table name, and workloads must name that class."""
    g = run_program({"containerRuntime": runtime, "sampleWorkloads": True})
    handlers = set()
    for reg in g.find(lambda r: r.type == CMD and r.name.endswith("-bootstrap")):
        runtime = g.phase_program(reg.name.removesuffix("-bootstrap"), "runtime")
        handlers.update(re.findall(r"^KATA_HANDLER=(.*)$", runtime, re.M))
    rcs = g.of_type("kubernetes:node.k8s.io/v1:RuntimeClass")
    classes = {r.plain("handler") for r in rcs}
    assert {r.plain("metadata")["name"] for r in rcs} == {v.KATA_HANDLER}
    used = set()
    for reg in g.find(lambda r: r.type in ("kubernetes:apps/v1:Deployment", "kubernetes:core/v1:Pod")):
        spec = reg.plain("spec") or {}
        pod = spec.get("template", {}).get("spec", spec)
        if pod.get("runtimeClassName"):
            used.add(pod["runtimeClassName"])
    assert handlers == classes == {v.KATA_HANDLER}
    assert used <= {v.KATA_HANDLER} and used, "no sample workload runs in Kata"


@pytest.mark.parametrize("runtime,waits_for_kata", [("containerd", False), ("crio", True)])
def test_kubeadm_init_waits_for_cp0s_kata_phase_only_under_crio(runtime, waits_for_kata):
    """review-node F4: CRI-O's smoke test lends a loopback CNI config and starts a sandbox the
    kubelet does not know; it must be over before kubeadm init starts the kubelet on cp-0."""
    g = run_program({"containerRuntime": runtime})
    init, kata = g.named("dev-cp-0-kubeadm-init"), g.named("dev-cp-0-kata")
    assert g.depends_on(init, g.named("dev-cp-0-bootstrap"))  # it ends with the kube packages
    assert g.depends_on(init, kata) == waits_for_kata
