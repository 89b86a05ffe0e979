"""KubeadmCluster under Pulumi mocks: ordering, secrets, scale-in paths, stability.

The cluster runs on the real OpenStack layer (SshAccess, ClusterNetwork, NodePool,
ApiEndpoint) with a stand-in for NodeBootstrap (one command per node), so these tests do
not depend on the bootstrap phases; tests/test_cluster_program.py repeats the graph
checks on the whole __main__.py.
"""

from __future__ import annotations

import re
from typing import Any

import pulumi
import pulumi_command as command
import pytest
from harness import FAKE_JOIN_CREDENTIALS, SECRET_SIG, SECRET_VALUE, Graph, run_program, unsecret

from components.cluster import KubeadmCluster
from components.config import MAX_DRAIN_SECONDS, ConfigError, load_config
from components.nodes import library, phase
from components.openstack.access import SshAccess
from components.openstack.endpoint import ApiEndpoint
from components.openstack.network import ClusterNetwork
from components.openstack.nodes import NodePool

CMD, COPY = "command:remote:Command", "command:remote:CopyToRemote"
SERVER = "openstack:compute/instance:Instance"
SUPPLIED_KEY = ("-----BEGIN OPENSSH PRIVATE KEY-----\nkatak8s-cluster-test-key\n"
                "-----END OPENSSH PRIVATE KEY-----")
# Strings that must never show up outside a Pulumi secret: the minted token and
# certificate key, the admin kubeconfig's client key, and the SSH private key.
SECRET_NEEDLES = ("abcdef.0123456789abcdef", "f" * 64, "S0VZCg==", "client-key-data",
                  "katak8s-cluster-test-key", "OpenSSH private key of")
COMMAND_TEXT = ("create", "update", "delete", "environment", "triggers")


class StandInBootstrap:
    """NodeBootstrap's interface (.ready / .kube_ready / .scripts[node name]) with one command
    per node and the real copy of scripts/remote."""

    def __init__(self, nodes: NodePool):
        targets = [*nodes.control_planes, *nodes.workers]
        self.kube_ready = {t.name: command.remote.Command(f"{t.name}-bootstrap-standin",
                                                          connection=t.connection, create="true")
                           for t in targets}
        self.ready = {name: [cmd] for name, cmd in self.kube_ready.items()}
        self.scripts = {t.name: library.ship(self.kube_ready[t.name], t) for t in targets}


def build() -> KubeadmCluster:
    cfg = load_config()
    access = SshAccess("access", cfg)
    network = ClusterNetwork("network", cfg)
    nodes = NodePool("nodes", cfg, network=network, access=access)
    endpoint = ApiEndpoint("endpoint", cfg, network=network, nodes=nodes)
    cluster = KubeadmCluster("cluster", cfg, nodes=nodes, bootstrap=StandInBootstrap(nodes),
                             endpoint=endpoint)
    pulumi.export("kubeconfig", cluster.kubeconfig)
    return cluster


def cluster_graph(config: dict[str, Any] | None = None) -> Graph:
    return run_program({"workerCount": 2, **(config or {})}, fn=build)


# --- reusable graph checks (also run on the whole program) ------------------------------------

def plain_strings(value: Any, inside_secret: bool = False) -> list[str]:
    """Every string leaf NOT wrapped in a Pulumi secret."""
    if isinstance(value, dict):
        if value.get(SECRET_SIG) == SECRET_VALUE:
            return []
        return [s for v in value.values() for s in plain_strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in plain_strings(v)]
    return [value] if isinstance(value, str) else []


def secret_leaks(graph: Graph, needles: tuple[str, ...] = SECRET_NEEDLES) -> list[str]:
    leaks = []
    for reg in graph:
        for key, value in reg.inputs.items():
            for text in plain_strings(value):
                leaks += [f"{reg.name}.{key} holds {n!r} in plain text" for n in needles if n in text]
            if reg.type in (CMD, COPY) and key in COMMAND_TEXT:
                # A command line is visible in argv and in failure messages even when the
                # input is marked secret: nothing secret belongs there at all.
                flat = repr(unsecret(value))
                leaks += [f"{reg.name}.{key} (command text) holds {n!r}" for n in needles if n in flat]
        if reg.type in (CMD, COPY) and not reg.is_secret("connection"):
            leaks.append(f"{reg.name}.connection is not secret")
        sensitive = "stdin" in reg.inputs or any(n in repr(reg.outputs.get("stdout", "")) for n in needles)
        if reg.type == CMD and sensitive:
            if reg.inputs.get("logging") != "none" or "stdout" not in reg.additional_secret_outputs:
                leaks.append(f"{reg.name} carries secrets but logs them or keeps stdout in plain text")
    for name, export in graph.exports.items():
        if not export.secret and any(n in repr(export.value) for n in needles):
            leaks.append(f"export {name} holds a secret in plain text")
    return leaks


def cluster_commands(graph: Graph, kind: str) -> dict[str, Any]:
    """Commands of KubeadmCluster by node: kind is kubeadm-join, join-credentials or membership."""
    out = {}
    for reg in graph.of_type(CMD):
        if kind == "kubeadm-join" and reg.name.endswith("-kubeadm-join"):
            out[reg.name.removesuffix("-kubeadm-join")] = reg
        elif kind != "kubeadm-join" and f"-{kind}-" in reg.name:
            out[reg.name.split(f"-{kind}-", 1)[1]] = reg
    return out


def ordering_problems(graph: Graph, cps: int, workers: int, cluster: str = "dev") -> list[str]:
    problems = []
    init = graph.named(f"{cluster}-cp-0-kubeadm-init")
    joins = cluster_commands(graph, "kubeadm-join")
    mints = cluster_commands(graph, "join-credentials")
    names = [f"{cluster}-worker-{i}" for i in range(workers)]
    cp_names = [f"{cluster}-cp-{i}" for i in range(1, cps)]
    assert sorted(joins) == sorted(names + cp_names) == sorted(mints)
    for node in names + cp_names:
        for reg in (joins[node], mints[node]):
            if not graph.depends_on(reg, init):
                problems.append(f"{reg.name} does not wait for kubeadm init")
    for node in names:
        for other in names + cp_names:
            if other == node:
                continue
            for reg in (joins[node], mints[node]):
                if graph.depends_on(reg, joins[other]):
                    problems.append(f"{reg.name} waits for {other}'s join: workers must join in parallel")
                if graph.depends_on(reg, graph.named(f"{other}-port")):
                    problems.append(f"{reg.name} waits for another node ({other})")
    for prev, node in zip([f"{cluster}-cp-0", *cp_names], cp_names, strict=False):
        if prev != f"{cluster}-cp-0" and not graph.depends_on(mints[node], joins[prev]):
            problems.append(f"{node} mints its certificate key before {prev} joined")
    return problems


# A shell line that deletes a Node object (kubectl, or drain.sh's `kube` wrapper).
DELETES_NODE = re.compile(r"^\s*kube(ctl)?\s.*\bdelete node\b", re.M)


def deleted_text(reg) -> str:
    """What a command's delete runs: its program and the files it names by their sums (the
    node's copy of scripts/remote holds exactly these, scripts/remote/launch.sh checks)."""
    program = phase.program_of(reg.plain("delete")) or ""
    m = re.search(r"^KATAK8S_SCRIPT=(\S+)$", program, re.M)
    return program + "".join((phase.SCRIPTS_DIR / f).read_text() for f in phase.files(m.group(1))) if m else program


def scale_in_problems(graph: Graph, cluster: str = "dev") -> list[str]:
    """Scale-in must run upstream's order: drain (membership's delete), kubeadm reset on the
    node (join's delete), then delete the Node object (credentials' delete). Pulumi deletes
    a resource before what it depends on, so membership -> join -> credentials must hold."""
    problems = []
    cp0_server = graph.named(f"{cluster}-cp-0").urn
    members = cluster_commands(graph, "membership")
    mints = cluster_commands(graph, "join-credentials")
    for node, join in cluster_commands(graph, "kubeadm-join").items():
        member, mint = members.get(node), mints.get(node)
        if member is None or mint is None:
            problems.append(f"{node} has no membership (drain) or credentials (delete node) command")
            continue
        delete = deleted_text(join)
        if "kubeadm reset -f" not in delete:
            problems.append(f"{join.name} has no kubeadm reset on delete")
        drain = deleted_text(member)
        if "KATAK8S_SCRIPT=cluster/drain.sh" not in drain:
            problems.append(f"{member.name} does not drain on delete")
        if DELETES_NODE.search(drain):
            problems.append(f"{member.name} deletes the Node object before the reset needs it")
        if "KATAK8S_SCRIPT=cluster/delete-node.sh" not in deleted_text(mint):
            problems.append(f"{mint.name} does not delete the Node object on delete")
        if join.urn not in member.dependencies:
            problems.append(f"{member.name} does not depend on the join, so it would not be deleted first")
        if mint.urn not in join.dependencies:
            problems.append(f"{join.name} does not depend on {mint.name}, so the Node could go before the reset")
        for reg in (join, member, mint):
            if reg.deleted_with != cp0_server:
                problems.append(f"{reg.name}: deleted_with is not {cluster}-cp-0's server")
            if not reg.delete_before_replace:
                problems.append(f"{reg.name}: its delete undoes its create but is not delete-before-replace")
            if reg.plain("triggers") != [f"<id of {node}>"]:
                problems.append(f"{reg.name}: replaced by {reg.plain('triggers')}, not by its node's server")
    return problems


def comparable(reg) -> tuple:
    return (reg.type, reg.parent, reg.inputs, reg.deleted_with, tuple(reg.replace_with),
            reg.delete_before_replace, tuple(reg.additional_secret_outputs), tuple(reg.replace_on_changes))


def changed_inputs(before: Graph, after: Graph) -> list[str]:
    """Registrations of `before` whose inputs or replacement options differ in `after`."""
    out = []
    for reg in before:
        twin = after.by_urn.get(reg.urn)
        if twin is None:
            out.append(f"{reg.name} disappeared")
        elif comparable(twin) != comparable(reg):
            keys = sorted(k for k in set(reg.inputs) | set(twin.inputs)
                          if reg.inputs.get(k) != twin.inputs.get(k))
            out.append(f"{reg.name}: {keys or 'options'}")
    return out


# --- the tests ------------------------------------------------------------------------------

@pytest.mark.parametrize("cps,workers", [(1, 2), (3, 3)])
def test_joins_wait_for_init_workers_in_parallel_control_planes_in_turn(cps, workers):
    graph = cluster_graph({"controlPlaneCount": cps, "workerCount": workers})
    assert ordering_problems(graph, cps, workers) == []
    # Each join waits for its own node's bootstrap, and mints right before the join.
    for node, join in cluster_commands(graph, "kubeadm-join").items():
        standin = graph.named(f"{node}-bootstrap-standin")
        assert graph.depends_on(join, standin)
        assert graph.depends_on(cluster_commands(graph, "join-credentials")[node], standin)
    assert graph.depends_on(graph.named("dev-cp-0-kubeadm-init"), graph.named("dev-cp-0-bootstrap-standin"))


def test_the_ordering_check_can_fail():
    graph = cluster_graph({"controlPlaneCount": 3, "workerCount": 2})
    w1 = graph.named("dev-worker-1-kubeadm-join")
    w1.dependencies.append(graph.named("dev-worker-0-kubeadm-join").urn)
    assert ordering_problems(graph, 3, 2) == [
        "dev-worker-1-kubeadm-join waits for dev-worker-0's join: workers must join in parallel",
        "dev-worker-1-kubeadm-join waits for another node (dev-worker-0)"]


@pytest.mark.parametrize("key", [None, SUPPLIED_KEY])
def test_no_secret_in_a_command_line_environment_or_plain_output(key):
    graph = cluster_graph({"controlPlaneCount": 3, **({"sshPrivateKey": key} if key else {})})
    assert secret_leaks(graph) == []
    # The secrets did flow: the join's stdin and the kubeconfig export hold them, as secrets.
    stdin = graph.named("dev-worker-0-kubeadm-join").inputs["stdin"]
    assert stdin[SECRET_SIG] == SECRET_VALUE and "abcdef.0123456789abcdef" in stdin["value"]
    assert "f" * 64 in graph.named("dev-cp-1-kubeadm-join").inputs["stdin"]["value"]
    assert graph.exports["kubeconfig"].secret and "client-key-data" in graph.exports["kubeconfig"].value


def test_the_leak_check_can_fail():
    graph = cluster_graph()
    graph.named("dev-cp-0-kubeadm-init").inputs["create"] += " --token abcdef.0123456789abcdef"
    graph.named("dev-worker-0-kubeadm-join").inputs["stdin"] = FAKE_JOIN_CREDENTIALS
    assert secret_leaks(graph) == [
        "dev-cp-0-kubeadm-init.create holds 'abcdef.0123456789abcdef' in plain text",
        "dev-cp-0-kubeadm-init.create (command text) holds 'abcdef.0123456789abcdef'",
        "dev-worker-0-kubeadm-join.stdin holds 'abcdef.0123456789abcdef' in plain text",
        f"dev-worker-0-kubeadm-join.stdin holds {'f' * 64!r} in plain text"]


def test_credentials_and_kubeconfig_are_read_with_logging_off():
    graph = cluster_graph()
    for name in ("dev-cp-0-kubeconfig", "dev-cp-0-join-credentials-dev-worker-0"):
        reg = graph.named(name)
        assert reg.inputs["logging"] == "none" and "stdout" in reg.additional_secret_outputs
    kubeconfig = graph.exports["kubeconfig"]
    assert kubeconfig.secret
    assert "server: https://<floating IP of dev-cp-0-fip>:6443" in kubeconfig.value
    assert "10.42.0.10" not in kubeconfig.value  # the private server address is gone


def test_init_receives_its_config_on_stdin_without_secrets():
    graph = cluster_graph({"controlPlaneCount": 3})
    init = graph.named("dev-cp-0-kubeadm-init")
    assert init.inputs["create"] == phase.command_line(graph.program(init.name), 3600)
    assert "KATAK8S_SCRIPT=cluster/init.sh\n" in graph.program(init.name)
    assert "delete" not in init.inputs  # destroying cp-0's server is the teardown
    config = init.plain("stdin")
    assert "controlPlaneEndpoint: <VIP of endpoint-lb>:6443" in config
    assert "- <floating IP of endpoint-fip>" in config  # the public endpoint is a SAN
    assert "value: <fixed IP of dev-cp-0-port>" in config  # node-ip
    assert "KUBERNETES_VERSION=v1.36.4" in graph.program("dev-cp-0-kubeadm-init")


def test_join_config_names_the_node_and_the_private_endpoint():
    graph = cluster_graph({"kataDedicatedWorkers": "true"})
    config = graph.named("dev-worker-1-kubeadm-join").inputs["stdin"]["value"]
    assert "apiServerEndpoint: <fixed IP of dev-cp-0-port>:6443" in config
    assert "name: dev-worker-1" in config and "value: <fixed IP of dev-worker-1-port>" in config
    assert "key: katacontainers.io/kata-runtime" in config  # the dedicated pool's taint


@pytest.mark.parametrize("cps", [1, 3])
def test_every_join_has_the_scale_in_delete_path(cps):
    graph = cluster_graph({"controlPlaneCount": cps, "workerCount": 3})
    assert len(cluster_commands(graph, "membership")) == cps - 1 + 3
    assert scale_in_problems(graph) == []
    drain = graph.named("dev-cp-0-membership-dev-worker-2").plain("delete")
    assert "DRAIN_TIMEOUT=300" in drain and "NODE_NAME=dev-worker-2" in drain


def test_the_scale_in_check_can_fail():
    graph = cluster_graph()
    graph.named("dev-cp-0-membership-dev-worker-1").deleted_with = graph.named("dev-worker-1").urn
    graph.named("dev-worker-0-kubeadm-join").inputs.pop("delete")
    graph.named("dev-cp-0-join-credentials-dev-worker-1").inputs.pop("delete")
    join = graph.named("dev-worker-1-kubeadm-join")
    join.dependencies.remove(graph.named("dev-cp-0-join-credentials-dev-worker-1").urn)
    member = graph.named("dev-cp-0-membership-dev-worker-0")
    member.inputs["delete"] = phase.command_line(graph.program(member.name, delete=True)
                                                 + "\n  kube delete node \"${NODE_NAME}\" --ignore-not-found >&2", 1800)
    assert sorted(scale_in_problems(graph)) == [
        "dev-cp-0-join-credentials-dev-worker-1 does not delete the Node object on delete",
        "dev-cp-0-membership-dev-worker-0 deletes the Node object before the reset needs it",
        "dev-cp-0-membership-dev-worker-1: deleted_with is not dev-cp-0's server",
        "dev-worker-0-kubeadm-join has no kubeadm reset on delete",
        "dev-worker-1-kubeadm-join does not depend on dev-cp-0-join-credentials-dev-worker-1, "
        "so the Node could go before the reset"]


def test_scale_out_leaves_every_existing_input_unchanged():
    before, after = cluster_graph({"workerCount": 2}), cluster_graph({"workerCount": 3})
    assert changed_inputs(before, after) == []
    new = {r.name for r in after} - {r.name for r in before}
    assert all("dev-worker-2" in n for n in new), new
    assert {"dev-worker-2-kubeadm-join", "dev-cp-0-join-credentials-dev-worker-2",
            "dev-cp-0-membership-dev-worker-2"} <= new


def test_a_re_evaluation_is_identical():
    a, b = cluster_graph({"controlPlaneCount": 3}), cluster_graph({"controlPlaneCount": 3})
    assert {r.urn: comparable(r) + (sorted(r.dependencies),) for r in a} == \
           {r.urn: comparable(r) + (sorted(r.dependencies),) for r in b}


@pytest.mark.parametrize("change", [{"kubernetesVersion": "1.35"}, {"containerRuntime": "crio"},
                                    {"kataVersion": "4.1.1", "kataSha256": "a" * 64}])
def test_a_version_change_replaces_no_server_and_resets_no_node(change):
    before, after = cluster_graph(), cluster_graph(change)
    for reg in before.of_type(SERVER):
        assert after.by_urn[reg.urn].inputs == reg.inputs
    for kind in ("kubeadm-join", "membership", "join-credentials"):
        for node, reg in cluster_commands(before, kind).items():
            twin = after.by_urn[reg.urn]
            # Same triggers: an update re-runs the guarded create (which refuses the drift);
            # nothing is replaced, so no reset or drain runs.
            assert twin.inputs["triggers"] == reg.inputs["triggers"], (kind, node)
    init = after.named("dev-cp-0-kubeadm-init")
    assert "delete" not in init.inputs  # a replaced init only re-runs init.sh, which refuses


def test_drain_timeout_must_fit_inside_the_phase():
    with pytest.raises(ConfigError, match=f"from 30 to {MAX_DRAIN_SECONDS}"):
        cluster_graph({"drainTimeoutSeconds": MAX_DRAIN_SECONDS + 1})
    assert cluster_graph({"drainTimeoutSeconds": MAX_DRAIN_SECONDS})
