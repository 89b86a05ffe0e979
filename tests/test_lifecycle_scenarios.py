"""Every documented operation as a scenario: the program evaluated before and after the
change, the engine model (tests/engine_model.py) over both, and the exact node-level
scripts that would run, in order. Mocks alone see only the graph; these see the lifecycle.
Each scenario that review-pulumi.md found broken (F3, F5, F6, F8, F20) fails on the code
before its fix."""

from __future__ import annotations

import dataclasses

import pytest
from engine_model import plan_steps, simulate
from harness import BASE_CONFIG, run_program
from operations import node_actions

from components.config import ConfigError
from components.nodes import library, phase
from components.openstack import cloudinit

CP0, W0, W1, W2 = "dev-cp-0", "dev-worker-0", "dev-worker-1", "dev-worker-2"
JUMP = "dev-jump-host"
SERVER = "openstack:compute/instance:Instance"
COMMAND = "command:remote:Command"
REMOVAL = ["drain (on dev-cp-0)", "kubeadm reset", "delete the Node (on dev-cp-0)", "server deleted"]
# One command runs these, then kata (components/nodes/bootstrap.py BOOTSTRAP_PHASES).
BOOTSTRAP = ["preflight", "kernel", "runtime", "kube packages"]


def up(before: dict | None, after: dict | None, *, replace: tuple[str, ...] = ()):
    """(steps, per-node actions) of `pulumi up` from config `before` to config `after`
    (None: a fresh stack / `pulumi destroy`)."""
    old = run_program(before) if before is not None else None

    def evaluate(fresh):
        return None if after is None else run_program(after, deployed=old, fresh=fresh)

    steps, new = simulate(old, evaluate, replace=replace)
    return steps, node_actions(steps, old, new)


def destructive(steps) -> list[str]:
    """Deletes that run a script on a node (drain, reset, delete the Node)."""
    return [s.name for s in steps if s.op == "delete" and s.reg.type == COMMAND
            and s.reg.plain("delete") and not s.skipped]


def _in_order(items: list[str], *expected: str) -> bool:
    positions = [items.index(e) for e in expected]
    return positions == sorted(positions)


def test_fresh_up_bootstraps_every_node_then_forms_the_cluster():
    steps, actions = up(None, {"workerCount": 2})
    assert {s.op for s in steps} == {"create"}
    assert set(actions) == {CP0, W0, W1, JUMP}
    assert actions[JUMP] == ["server created"], "no phase runs on the jump host: no cluster member"
    cp0 = actions[CP0]
    assert cp0[0] == "server created"
    assert _in_order(cp0, *BOOTSTRAP, "kubeadm init", "read the kubeconfig")
    assert _in_order(cp0, *BOOTSTRAP, "kata")
    for worker in (W0, W1):
        assert _in_order(actions[worker], "server created", *BOOTSTRAP, "kata",
                         "mint join credentials (on dev-cp-0)", "kubeadm join",
                         "wait until registered (on dev-cp-0)")


def test_a_no_op_rerun_does_nothing():
    steps, actions = up({"workerCount": 2}, {"workerCount": 2})
    assert steps == [] and actions == {}


def test_scale_out_touches_only_the_new_node():
    steps, actions = up({"workerCount": 2}, {"workerCount": 3})
    assert list(actions) == [W2] and {s.op for s in steps} == {"create"}
    assert _in_order(actions[W2], "server created", *BOOTSTRAP, "kubeadm join", "wait until registered (on dev-cp-0)")


def test_scale_in_drains_resets_deletes_the_node_then_the_server():
    steps, actions = up({"workerCount": 3}, {"workerCount": 2})
    assert actions == {W2: REMOVAL}
    assert {s.op for s in steps} == {"delete"} and all(W2 in s.name for s in steps)


@pytest.mark.parametrize("ha,node", [(False, W1), (True, "dev-cp-1")])
def test_replacing_a_joined_server_drains_before_it_resets(ha, node):
    """review-pulumi F3: the replace_with cascade ran reset.sh before drain.sh."""
    cfg = {"workerCount": 2, "controlPlaneCount": 3 if ha else 1}
    _, actions = up(cfg, cfg, replace=(node,))
    assert list(actions) == [node]
    assert actions[node][:5] == [*REMOVAL, "new server created (replaced: --replace)"]
    assert _in_order(actions[node], "new server created (replaced: --replace)", *BOOTSTRAP, "kubeadm join")


def test_a_flavor_change_never_resizes_a_joined_server():
    """review-pulumi F5: a new flavor resized every server of the role at once."""
    steps, actions = up({"workerCount": 2}, {"workerCount": 2, "workerFlavor": "m2.xlarge"})
    assert not [s for s in steps if s.reg.type == SERVER]
    assert actions == {W0: ["preflight (re-run)"], W1: ["preflight (re-run)"]}  # it names the flavor


def test_a_replaced_server_gets_the_new_flavor_drained_first():
    """A replacement is checked against the program's values, not the ignored old ones (E1):
    `pulumi up --replace` is how a node rolls onto a new flavor or image, one at a time."""
    after = {"workerCount": 2, "workerFlavor": "m2.xlarge"}
    steps, actions = up({"workerCount": 2}, after, replace=(W1,))
    assert actions[W1][:5] == [*REMOVAL, "new server created (replaced: --replace)"]
    assert W0 not in actions or "server" not in " ".join(actions[W0])
    (server,) = [s for s in steps if s.reg.type == SERVER and s.op == "replace"]
    assert server.reg.plain("flavorName") == "m2.xlarge" and server.delete_first


def test_an_image_change_applies_to_new_servers_only():
    image = "11111111-2222-3333-4444-555555555555"
    steps, actions = up({"workerCount": 2}, {"workerCount": 3, "image": image})
    assert list(actions) == [W2]
    (server,) = [s for s in steps if s.reg.type == SERVER]
    assert server.op == "create" and server.reg.plain("imageId") == image


def test_a_new_cloud_init_renderer_replaces_no_server(monkeypatch):
    """user_data is ForceNew: a katak8s release that renders other user data would replace
    every server, delete first, cp-0 included (a new cluster)."""
    old = run_program({"workerCount": 2})
    render = cloudinit.render
    monkeypatch.setattr(cloudinit, "render", lambda data: render(data) + "# katak8s next release\n")
    steps, new = simulate(old, lambda fresh: run_program({"workerCount": 2}, deployed=old, fresh=fresh))
    assert new.named(CP0).plain("userData") != old.named(CP0).plain("userData")  # the renderer did change
    assert steps == []


def test_a_kata_version_change_reruns_only_the_kata_phases():
    steps, actions = up({"workerCount": 2}, {"workerCount": 2, "kataVersion": "4.1.0", "kataSha256": "a" * 64})
    assert actions == {n: ["kata (re-run)"] for n in (CP0, W0, W1)}
    assert not destructive(steps)


@pytest.mark.parametrize("change,words", [
    ({"kubernetesVersion": "1.35"}, "katak8s:kubernetesVersion: cannot go down"),
    ({"kubernetesVersion": "1.37", "deployed": "1.35"}, "katak8s:kubernetesVersion: cannot jump"),
    ({"containerRuntime": "crio"}, "katak8s:containerRuntime: cannot switch"),
])
def test_a_downgrade_a_two_minor_jump_or_a_runtime_switch_is_refused_before_any_resource(change, words):
    """Before, the node scripts refused them in the middle of `pulumi up`."""
    change = dict(change)
    old = run_program({"kubernetesVersion": change.pop("deployed", "1.36")})
    with pytest.raises(ConfigError, match=words) as err:
        run_program(change, deployed=old)
    made = {r.type for r in err.value.graph if r.custom}
    assert not [t for t in made if t.startswith(("openstack:", "command:", "kubernetes:"))], made


@pytest.mark.parametrize("before,after", [(1, 3), (3, 1), (3, 5)])
def test_moving_between_one_and_several_control_planes_is_refused_before_any_resource(before, after):
    """review-pulumi F20: the refusal came from init.sh, after the LB and servers existed."""
    old = run_program({"controlPlaneCount": before})
    if (before == 1) == (after == 1):
        run_program({"controlPlaneCount": after}, deployed=old)
        return
    with pytest.raises(ConfigError, match="katak8s:controlPlaneCount: cannot move between 1 and 3 or 5") as err:
        run_program({"controlPlaneCount": after}, deployed=old)
    made = {r.type for r in err.value.graph if r.custom}
    assert not [t for t in made if t.startswith(("openstack:", "command:", "kubernetes:"))], made


SUPPLIED = "-----BEGIN OPENSSH PRIVATE KEY-----\nsupplied\n-----END OPENSSH PRIVATE KEY-----"


def test_setting_an_ssh_key_on_a_deployed_stack_is_refused_at_preview():
    """review-pulumi F6: every Command would dial with a key the servers do not have."""
    old = run_program({})
    for preview in (True, False):
        with pytest.raises(ConfigError, match="katak8s:sshPrivateKey: the nodes accept only the key") as err:
            run_program({"sshPrivateKey": SUPPLIED}, deployed=old, preview=preview)
        assert not [r for r in err.value.graph if r.type.startswith(("openstack:", "command:"))]


def test_removing_a_supplied_key_is_refused_and_keeping_it_is_not():
    old = run_program({"sshPrivateKey": SUPPLIED})
    run_program({"sshPrivateKey": SUPPLIED}, deployed=old)
    with pytest.raises(ConfigError, match="sshPrivateKey"):
        run_program({}, deployed=old, preview=True)  # a new key would be generated


def _edit_library(monkeypatch) -> None:
    digest = phase.file_sha256.__wrapped__
    monkeypatch.setattr(phase, "file_sha256", lambda rel: "e" * 64 if rel == phase.LIB else digest(rel))
    monkeypatch.setattr(library, "version", lambda: "edited")  # the node gets a new copy


def _edit_launcher(monkeypatch) -> None:
    launcher = phase._launcher.__wrapped__
    monkeypatch.setattr(phase, "_launcher", lambda: launcher() + ": edited\n")


@pytest.mark.parametrize("edit", [_edit_library, _edit_launcher], ids=["lib/common.sh", "launch.sh"])
def test_an_edit_of_shared_code_never_replaces_a_node_command_nor_the_kubeconfig(monkeypatch, edit):
    """review-pulumi F8: the kubeconfig read-back was replaced, so every PR preview showed
    the Kubernetes layer unknown; and no command with a destructive delete may be replaced.
    scripts/remote/lib/common.sh and launch.sh are in every program but the standalone
    kubeconfig read-back's."""
    old = run_program({"workerCount": 2})
    edit(monkeypatch)
    steps, new = simulate(old, lambda fresh: run_program({"workerCount": 2}, deployed=old, fresh=fresh))
    commands = [s for s in steps if s.reg.type == COMMAND]
    assert commands, "the edit re-runs the phases whose programs carry it"
    assert not destructive(steps)
    assert not [s for s in commands if s.op == "replace" and s.reg.plain("delete")]
    assert not [s for s in commands if s.name.endswith("-kubeconfig")]
    assert new.named(f"{CP0}-kubeconfig").inputs == old.named(f"{CP0}-kubeconfig").inputs


def test_destroy_skips_every_drain_reset_and_node_deletion():
    steps, actions = up({"workerCount": 2}, None)
    assert {s.op for s in steps} == {"delete"}
    for worker in (W0, W1):
        assert actions[worker] == [
            "drain skipped (on dev-cp-0) (deleted with dev-cp-0)",
            "kubeadm reset skipped (deleted with dev-cp-0)",
            "delete the Node skipped (on dev-cp-0) (deleted with dev-cp-0)",
            "server deleted"]
    kube = [i for i, s in enumerate(steps) if s.reg.type.startswith("kubernetes:")]
    servers = [i for i, s in enumerate(steps) if s.reg.type == SERVER]
    assert max(kube) < min(servers), "Kubernetes objects go while the API still exists"


def test_the_model_bites_without_the_f3_fix():
    """The same graph with replace_with on the join (the code before the F3 fix): reset first."""
    graph = run_program({"workerCount": 2})
    join = graph.named(f"{W1}-kubeadm-join")
    join.replace_with = [graph.named(W1).urn]
    steps = plan_steps(graph, graph, replace=(W1,))
    order = [s.name for s in steps if s.op == "delete" and s.reg.type == COMMAND and s.reg.plain("delete")]
    assert order[:2] == [f"{W1}-kubeadm-join", f"{CP0}-membership-{W1}"]


def test_config_is_checked_before_the_deployed_state():
    with pytest.raises(ConfigError, match="workerCount"):
        run_program({"workerCount": -1}, deployed=run_program({}))


def test_base_config_is_a_deployable_stack():
    assert BASE_CONFIG["allowedCidrs"]


def test_a_rotated_key_is_accepted_once_its_public_key_is_named():
    old = run_program({})
    supplied = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5supplied katak8s-supplied-key"  # what the mock derives
    steps, actions = up({}, {"sshPrivateKey": SUPPLIED, "acceptSshPublicKey": supplied})
    assert not destructive(steps) and not [s for s in steps if s.reg.type == SERVER]
    # Every Command dials with the new key: an update that re-runs its create (C2).
    assert all(a.endswith("(re-run)") for acts in actions.values() for a in acts) and actions
    with pytest.raises(ConfigError, match="sshPrivateKey"):  # another accepted key does not help
        run_program({"sshPrivateKey": SUPPLIED, "acceptSshPublicKey": "ssh-ed25519 AAAAother"}, deployed=old)


@pytest.mark.parametrize("cfg", [{"workerCount": 2}, {"workerCount": 1, "controlPlaneCount": 3}])
def test_no_destructive_delete_is_in_a_replace_cascade(cfg):
    """The engine deletes a replace_with / deleted_with cascade first and in Go-map order
    (engine_model E4): a drain, reset or Node deletion there would run in any order, before
    the dependents it must follow (review-pulumi F3). So a command with a delete script is
    replaced only through its triggers, and is deleted with the first control plane only."""
    graph = run_program(cfg)
    cp0 = graph.named(CP0).urn
    destructive_cmds = [r for r in graph.of_type(COMMAND) if r.plain("delete")]
    # the cloud controller's destroy guard must run at destroy: deleted with nothing
    # (tests/test_cloud_provider.py proves its order)
    guard = graph.named(f"{CP0}-cloud-cleanup")
    assert guard.replace_with == [] and guard.deleted_with in ("", None) and guard in destructive_cmds
    destructive_cmds.remove(guard)
    assert len(destructive_cmds) == 3 * (cfg["workerCount"] + cfg.get("controlPlaneCount", 1) - 1)
    for reg in [*destructive_cmds, guard]:
        assert reg.replace_on_changes == ["triggers[*]"]
    for reg in destructive_cmds:
        assert reg.replace_with == [] and reg.deleted_with == cp0, reg.name


def test_a_new_node_subnet_is_refused_before_it_moves_every_node():
    """A port's fixed IP is updated in place (O1): the model shows no node script, yet every
    node's address would change under kubeadm. Refused at preview instead."""
    # The mocks' addresses are placeholders; the stack's real outputs hold addresses.
    deployed = {"controlPlanePrivateIps": ["10.42.0.11"], "workerPrivateIps": ["10.42.0.21", "10.42.0.22"]}
    steps, _ = up({"workerCount": 2}, {"workerCount": 2, "nodeCidr": "10.43.0.0/24"})
    ports = [s for s in steps if s.reg.type == "openstack:networking/port:Port"]
    assert ports and {s.op for s in ports} == {"update"}, "the danger the refusal prevents"
    with pytest.raises(ConfigError, match="katak8s:nodeCidr: cannot change on a deployed cluster"):
        run_program({"workerCount": 2, "nodeCidr": "10.43.0.0/24"}, deployed=deployed)


def test_the_jump_host_comes_first_and_goes_last():
    """Every SSH step's connection names it, so the engine creates it before any step and
    deletes it after the last one (E7: reverse dependency order)."""
    graph = run_program({"workerCount": 2})
    jump = graph.named(JUMP)
    commands = [r for r in graph if r.type in (COMMAND, "command:remote:CopyToRemote")]
    assert commands and all(graph.depends_on(c, jump) for c in commands)
    steps = plan_steps(graph, None)
    order = [s.name for s in steps]
    ran = [i for i, s in enumerate(steps) if s.reg.type == COMMAND]
    assert order.index(JUMP) > max(ran)


def test_moving_a_deployed_stack_onto_a_dedicated_jump_host_reruns_steps_and_destroys_nothing():
    """A stack deployed before the jump host (no `jumpHost` output) keeps its first control
    plane; setting jumpHost moves SSH: every connection changes, so every step re-runs."""
    old = run_program({"workerCount": 2, "jumpHost": "first-control-plane"})
    del old.exports["jumpHost"]  # as a stack from before this output
    kept = run_program({"workerCount": 2}, deployed=old)
    assert JUMP not in {r.name for r in kept} and kept.exports["jumpHost"].value == "first-control-plane"
    steps, new = simulate(old, lambda fresh: run_program({"workerCount": 2, "jumpHost": "dedicated"},
                                                         deployed=old, fresh=fresh))
    assert not destructive(steps)
    servers = [s for s in steps if s.reg.type == SERVER]
    assert [(s.name, s.op) for s in servers] == [(JUMP, "create")]
    assert {s.op for s in steps if s.reg.type == COMMAND} <= {"update"}
    fips = {s.name: s.op for s in steps if s.reg.type == "openstack:networking/floatingIp:FloatingIp"}
    assert fips == {f"{JUMP}-fip": "create"}  # cp-0 keeps its floating IP: the single control plane's API


def test_moving_the_jump_host_while_removing_a_node_is_refused_at_preview():
    """review: the removed worker's drain and reset dial through cp-0, which the move takes
    out of the jump-host group early in the same `up`."""
    old = run_program({"workerCount": 2, "jumpHost": "first-control-plane"})
    with pytest.raises(ConfigError, match="katak8s:jumpHost: cannot move SSH to dedicated in the same") as err:
        run_program({"workerCount": 1, "jumpHost": "dedicated"}, deployed=old)
    assert not [r for r in err.value.graph if r.type.startswith(("openstack:", "command:"))]
    run_program({"workerCount": 2, "jumpHost": "dedicated"}, deployed=old)  # moving alone is fine
    run_program({"workerCount": 1}, deployed=old)  # and so is scaling in alone


def test_a_reworded_security_rule_replaces_no_live_rule(monkeypatch):
    """Neutron refuses a rule that differs from a live one only in its description, and
    every rule argument is ForceNew: a new reason text must never replace a rule."""
    from components.openstack import firewall

    design = firewall.design
    old = run_program({"workerCount": 2})
    monkeypatch.setattr(firewall, "design", lambda: tuple(
        dataclasses.replace(r, reason=r.reason + " (reworded)") for r in design()))
    steps = plan_steps(old, run_program({"workerCount": 2}, deployed=old))
    assert not [s for s in steps if s.reg.type == "openstack:networking/secGroupRule:SecGroupRule"]


def test_a_new_floating_ip_updates_the_approver_in_place_and_touches_no_other_node():
    """floatingIpPerNode: the new node's floating IP joins the addresses kubelet-csr-approver
    admits (components/kubernetes/metrics.py serving_ip_prefixes); the approver's release is
    updated, never replaced, and nothing else in the cluster changes."""
    before, after = {"workerCount": 2, "floatingIpPerNode": True}, {"workerCount": 3, "floatingIpPerNode": True}
    steps, actions = up(before, after)
    assert list(actions) == [W2]
    changed = [(s.op, s.name) for s in steps if s.op != "create"]
    assert changed == [("update", "kubernetes-metrics-csr-approver")], changed
    steps, actions = up(after, before)  # and back: the removed node's address goes too
    assert [(s.op, s.name) for s in steps if s.reg.type.startswith("kubernetes:")] == [
        ("update", "kubernetes-metrics-csr-approver")]


def test_turning_metrics_server_off_deletes_only_its_release():
    """The kubelets keep their serving certificates (set at init): the approver and every
    node command stay; metrics-server alone goes."""
    steps, actions = up({"workerCount": 2}, {"workerCount": 2, "metricsServer": False})
    assert actions == {}
    assert [(s.op, s.name) for s in steps] == [("delete", "kubernetes-metrics-metrics-server")]
