"""components/deployed.py's pure rules: what a deployed stack refuses, from its last outputs."""

from __future__ import annotations

import grpc
import pytest

from components.config import parse_config
from components.deployed import CONTROL_PLANES, SSH_PUBLIC_KEY, refusals

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5old katak8s"
NEW = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5new other-comment"


def cfg(**extra):
    raw = {"controlPlaneFlavor": "f", "workerFlavor": "f", "externalNetwork": "n",
           "allowedCidrs": '["203.0.113.0/24"]', **extra}
    return parse_config(raw, stack="dev")


def test_a_fresh_stack_refuses_nothing():
    assert refusals({}, cfg(controlPlaneCount="3"), ssh_public_key=None) == []


@pytest.mark.parametrize("deployed,wanted,refused", [(1, 3, True), (3, 1, True), (5, 1, True), (3, 5, False),
                                                     (5, 3, False), (1, 1, False)])
def test_control_plane_layout(deployed, wanted, refused):
    out = refusals({CONTROL_PLANES: ["10.42.0.11"] * deployed}, cfg(controlPlaneCount=str(wanted)),
                   ssh_public_key=None)
    assert bool(out) == refused
    if refused:
        assert out[0].startswith("katak8s:controlPlaneCount:") and f"has {deployed}, got {wanted}" in out[0]


def test_ssh_key_same_key_other_comment_is_the_same_key():
    assert refusals({SSH_PUBLIC_KEY: KEY}, cfg(), ssh_public_key="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5old x") == []


@pytest.mark.parametrize("new_key", [NEW, None, ""])
def test_ssh_key_change_or_unknown_new_key_is_refused(new_key):
    (problem,) = refusals({SSH_PUBLIC_KEY: KEY}, cfg(), ssh_public_key=new_key)
    assert problem.startswith("katak8s:sshPrivateKey:") and "acceptSshPublicKey" in problem


def test_ssh_key_change_is_accepted_only_for_the_named_key():
    assert refusals({SSH_PUBLIC_KEY: KEY}, cfg(acceptSshPublicKey=NEW), ssh_public_key=NEW) == []
    assert refusals({SSH_PUBLIC_KEY: KEY}, cfg(acceptSshPublicKey=KEY + "x"), ssh_public_key=NEW)


def test_outputs_of_another_shape_are_not_trusted():
    assert refusals({CONTROL_PLANES: "10.0.0.1", SSH_PUBLIC_KEY: 42}, cfg(controlPlaneCount="3"),
                    ssh_public_key=NEW) == []


def _read_with(answer):
    """DeployedState.read() under the mocks, with the engine's readStackOutputs answer."""
    from harness import run_program

    from components.deployed import READ_STACK_OUTPUTS, DeployedState

    asked, got = [], {}

    def invoke(args):
        asked.append(args.args["name"])
        return answer(args.args["name"])

    run_program(fn=lambda: got.setdefault("state", DeployedState.read()), overrides={READ_STACK_OUTPUTS: invoke})
    return asked, got["state"]


class _NoSuchStack(grpc.RpcError):  # the engine's answer for a name the backend rejects
    def code(self):
        return grpc.StatusCode.UNKNOWN

    def details(self):
        return "a stack name may only contain alphanumeric, hyphens, underscores, or periods"


def test_a_legacy_self_managed_backend_is_read_by_the_bare_stack_name():
    def answer(name):
        if "/" in name:
            raise _NoSuchStack()
        return {"outputs": {CONTROL_PLANES: ["10.0.0.1"], "kubeconfig": "apiVersion: v1 ... client-key-data"}}

    asked, state = _read_with(answer)  # the secret outputs the invoke returns are not kept
    assert asked == ["organization/katak8s/dev", "dev"] and state.outputs == {CONTROL_PLANES: ["10.0.0.1"]}


def test_an_unreadable_state_skips_the_checks_with_a_warning():
    def answer(name):
        raise _NoSuchStack()

    asked, state = _read_with(answer)
    assert len(asked) == 2 and state.outputs == {}


@pytest.mark.parametrize("change,key", [({"podCidr": "10.244.0.0/16"}, "podCidr"),
                                        ({"serviceCidr": "10.100.0.0/16"}, "serviceCidr"),
                                        ({"nodeCidr": "10.43.0.0/24"}, "nodeCidr")])
def test_network_ranges_are_fixed_once_deployed(change, key):
    previous = {CONTROL_PLANES: ["10.42.0.11"], "workerPrivateIps": ["10.42.0.21"],
                "podCidr": "192.168.0.0/16", "serviceCidr": "10.96.0.0/12"}
    (problem,) = refusals(previous, cfg(**change), ssh_public_key=None)
    assert problem.startswith(f"katak8s:{key}: cannot change on a deployed cluster")
    assert refusals(previous, cfg(), ssh_public_key=None) == []


# --- kubernetesVersion and containerRuntime (issue #16 section 2) ------------------------------

from components.deployed import KUBERNETES_VERSION, RUNTIME, next_versions, version_notice  # noqa: E402


@pytest.mark.parametrize("deployed,wanted,words", [
    ("1.36.4", "1.35.8", "cannot go down from 1.36.4 to 1.35.8"),
    ("1.36.4", "1.36.2", "cannot go down from 1.36.4 to 1.36.2"),
    ("1.35.8", "1.37", "cannot jump from 1.35.8 to 1.37.1: kubeadm upgrades one minor at a time; the cluster can "
                       "move to 1.36.4 next, then to 1.37.1 in a later `pulumi up`"),
])
def test_downgrades_and_two_minor_jumps_are_refused_naming_the_next_versions(deployed, wanted, words):
    (problem,) = refusals({KUBERNETES_VERSION: deployed}, cfg(kubernetesVersion=wanted), ssh_public_key=None)
    assert problem.startswith("katak8s:kubernetesVersion: ") and words in problem, problem


@pytest.mark.parametrize("deployed,wanted", [("1.36.4", "1.36.4"), ("1.35.8", "1.36"), ("1.36.4", "1.37"),
                                             ("1.36.2", "1.36"), ("1.35.8", "1.35")])
def test_a_patch_or_one_minor_up_passes_the_preview_with_a_notice(deployed, wanted):
    c = cfg(kubernetesVersion=wanted)
    assert refusals({KUBERNETES_VERSION: deployed}, c, ssh_public_key=None) == []
    notice = version_notice({KUBERNETES_VERSION: deployed}, c)
    assert (notice is None) == (deployed == c.kubernetes_patch)
    if notice:
        assert "upgrades the cluster in place, no server replaced" in notice and "docs/operations.md" in notice
        assert "drained first" in notice and "resumes at that node" in notice


def test_the_next_versions_follow_kubeadms_one_minor_rule():
    assert next_versions("1.35.8") == ["1.36.4"]
    assert next_versions("1.35.2") == ["1.35.8", "1.36.4"]
    assert next_versions("1.36.4") == ["1.37.1"]
    assert next_versions("1.37.1") == []
    assert next_versions("garbage") == []


def test_a_runtime_switch_is_refused_at_preview():
    (problem,) = refusals({RUNTIME: "containerd"}, cfg(containerRuntime="crio"), ssh_public_key=None)
    assert problem.startswith("katak8s:containerRuntime: cannot switch a deployed cluster from containerd to crio")
    assert refusals({RUNTIME: "crio"}, cfg(containerRuntime="crio"), ssh_public_key=None) == []


@pytest.mark.parametrize("outputs,readable,key,want", [
    ({}, True, "", "dedicated"),  # a new stack
    ({"clusterName": "dev"}, True, "", "first-control-plane"),  # deployed before the jump host
    ({"jumpHost": "dedicated"}, True, "", "dedicated"),
    ({"jumpHost": "first-control-plane"}, True, "", "first-control-plane"),
    ({}, False, "", "first-control-plane"),  # unknown: never move SSH on a guess
    ({"jumpHost": "first-control-plane"}, True, "dedicated", "dedicated"),  # the key decides
])
def test_where_ssh_enters_follows_the_key_then_the_deployed_stack(outputs, readable, key, want):
    from components.deployed import DeployedState
    assert DeployedState(outputs, readable=readable).jump_host(cfg(jumpHost=key)) == want
