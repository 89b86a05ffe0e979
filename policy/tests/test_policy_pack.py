"""The policy pack's validate functions, called directly with engine-shaped props.

Props go through the same deserialize_properties + unknown_checking_proxy the analyzer
applies (pulumi_policy/policy.py), so secrets arrive unwrapped and preview unknowns raise
exactly as they would under `pulumi preview --policy-pack policy`.
"""

from __future__ import annotations

import re
import runpy
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    StackValidationArgs,
)
from pulumi_policy.deserialize import deserialize_properties
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError, unknown_checking_proxy

POLICY_DIR = Path(__file__).resolve().parent.parent
ROOT = POLICY_DIR.parent
sys.path.insert(0, str(POLICY_DIR))
import katak8s_policies as kp  # noqa: E402  (the pack directory is not a package)

SECRET = {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270"}


def _opts(secret_outputs=()) -> PolicyResourceOptions:
    return PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), list(secret_outputs))


def _props(props: dict[str, Any]):
    return unknown_checking_proxy(deserialize_properties(props))


def rargs(typ: str, props: dict[str, Any], name: str = "r", secret_outputs=()) -> ResourceValidationArgs:
    return ResourceValidationArgs(typ, _props(props), f"urn:pulumi:dev::katak8s::{typ}::{name}", name,
                                  _opts(secret_outputs), None)


def presource(typ: str, props: dict[str, Any], name: str, urn: str | None = None) -> PolicyResource:
    return PolicyResource(typ, _props(props), urn or f"urn:pulumi:dev::katak8s::{typ}::{name}", name, _opts(),
                          None, None, [], {})


def run(fn, args) -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    fn(args, lambda message, urn=None: found.append((message, urn)))
    return found


# --- security-group rules ----------------------------------------------------------------

RULE = kp.SEC_GROUP_RULE


def rule(**kw):
    return {"direction": "ingress", "ethertype": "IPv4", "securityGroupId": "sg-1", **kw}


@pytest.mark.parametrize("props", [
    rule(protocol="tcp", portRangeMin=22.0, portRangeMax=22.0, remoteIpPrefix="0.0.0.0/0"),
    rule(protocol="tcp", portRangeMin=6443, portRangeMax=6443, remoteIpPrefix="0.0.0.0/0"),
    rule(protocol="6", portRangeMin=6443, portRangeMax=6443, remoteIpPrefix="::/0", ethertype="IPv6"),
    rule(protocol="tcp", portRangeMin=10250, portRangeMax=10250, remoteIpPrefix="10.42.0.0/24"),
    rule(protocol="udp", portRangeMin=4789, portRangeMax=4789, remoteGroupId=UNKNOWN_STRING_VALUE),
    rule(remoteGroupId="sg-nodes"),
    rule(protocol="tcp", portRangeMin=10250, portRangeMax=10250, remoteAddressGroupId="ag-admins"),
    {"direction": "egress", "ethertype": "IPv4", "securityGroupId": "sg-1", "remoteIpPrefix": "0.0.0.0/0"},
], ids=["ssh-world", "api-world", "api-world-v6", "kubelet-subnet", "vxlan-group-unknown",
        "all-from-group", "address-group", "egress-world"])
def test_rules_that_may_stay(props):
    assert run(kp.validate_security_group_rule, rargs(RULE, props)) == []


@pytest.mark.parametrize("props, needle", [
    (rule(protocol="tcp", portRangeMin=10250.0, portRangeMax=10250.0, remoteIpPrefix="0.0.0.0/0"),
     "port 10250 "),
    (rule(protocol="tcp", portRangeMin=22, portRangeMax=6443, remoteIpPrefix="0.0.0.0/0"), "ports 22-6443"),
    (rule(protocol="udp", portRangeMin=22, portRangeMax=22, remoteIpPrefix="0.0.0.0/0"), "udp port 22"),
    (rule(protocol="tcp", portRangeMin=30000, portRangeMax=32767, remoteIpPrefix="::/0"), "to ::/0"),
    (rule(), "every protocol all ports to anywhere"),
    (rule(protocol="tcp", remoteIpPrefix="0.0.0.0/0"), "tcp all ports"),
], ids=["kubelet-world", "range-world", "udp-ssh", "nodeports-v6", "no-remote", "tcp-all"])
def test_rules_open_to_the_world_are_rejected(props, needle):
    found = run(kp.validate_security_group_rule, rargs(RULE, props, name="bad-rule"))
    assert len(found) == 1
    assert needle in found[0][0] and "'bad-rule'" in found[0][0]


def test_other_resource_types_are_not_rule_checked():
    assert run(kp.validate_security_group_rule, rargs("openstack:networking/secGroup:SecGroup", {})) == []


@pytest.mark.parametrize("props, bad", [
    ({"protocolPort": 6443}, False),
    ({"protocolPort": 80, "allowedCidrs": ["203.0.113.0/24"]}, False),
    ({"protocolPort": 80}, True),
    ({"protocolPort": 8443, "allowedCidrs": ["0.0.0.0/0"]}, True),
])
def test_lb_listeners(props, bad):
    assert bool(run(kp.validate_lb_listener, rargs(kp.LB_LISTENER, props))) is bad


# --- commands carrying credentials -------------------------------------------------------

CMD = "command:remote:Command"
BENIGN_CREATE = "sudo -n timeout 1800 bash /home/ubuntu/.katak8s/kernel.sh"


@pytest.mark.parametrize("name, props, secret_outputs, why", [
    ("dev-cp-0-fetch", {"create": "sudo cat /etc/kubernetes/admin.conf"}, (), "create command reads"),
    ("dev-cp-0-kubeconfig", {"create": BENIGN_CREATE, "logging": "stdoutAndStderr"}, (), "its name"),
    ("dev-worker-3-phase", {"create": BENIGN_CREATE, "stdin": {**SECRET, "value": "tok"},
                            "logging": "stdout"}, (), "stdin"),
    ("dev-cp-0-x", {"create": BENIGN_CREATE, "logging": "stderr"}, ("stdout",), "declares stdout secret"),
    ("dev-cp-0-y", {"create": "kubeadm token create --print-join-command"}, (), "create command reads"),
    ("dev-cp-1-z", {"create": BENIGN_CREATE, "stdin": UNKNOWN_STRING_VALUE}, (), "stdin"),
])
def test_logged_credentials_are_rejected(name, props, secret_outputs, why):
    found = run(kp.validate_command_logging, rargs(CMD, props, name=name, secret_outputs=secret_outputs))
    assert len(found) == 1 and why in found[0][0], found


@pytest.mark.parametrize("name, props, secret_outputs", [
    ("dev-cp-0-kubeconfig", {"create": "sudo cat /etc/kubernetes/admin.conf", "logging": "none"},
     ("stdout",)),
    ("dev-cp-1-phase", {"create": UNKNOWN_STRING_VALUE, "stdin": UNKNOWN_STRING_VALUE, "logging": "none"},
     ()),
    ("dev-worker-0-kernel", {"create": BENIGN_CREATE}, ()),
    # A drain's delete uses admin.conf to talk to the API; its output carries no credential.
    ("dev-worker-1-drain", {"create": BENIGN_CREATE,
                            "delete": "kubectl --kubeconfig /etc/kubernetes/admin.conf drain x"}, ()),
])
def test_quiet_or_harmless_commands_pass(name, props, secret_outputs):
    assert run(kp.validate_command_logging, rargs(CMD, props, name=name, secret_outputs=secret_outputs)) == []


@pytest.mark.parametrize("name", ["joint-lab-worker-0-kernel", "tokenizer-cp-0-preflight",
                                  "secrets-dev-cp-1-kata", "my-private-key-worker-12-runtime"])
def test_a_cluster_name_never_makes_a_command_a_credential_handler(name):
    """review-pulumi F14: the name heuristic judges only the phase part."""
    props, secret_outputs = {"create": BENIGN_CREATE}, ()
    assert run(kp.validate_command_logging, rargs(CMD, props, name=name, secret_outputs=secret_outputs)) == []
    # The phase part still counts under such a cluster name.
    found = run(kp.validate_command_logging, rargs(CMD, props, name="joint-lab-cp-0-kubeconfig"))
    assert len(found) == 1 and "its name" in found[0][0]


def _unused(name, props, secret_outputs):
    assert run(kp.validate_command_logging, rargs(CMD, props, name=name, secret_outputs=secret_outputs)) == []


def test_unknown_command_text_is_left_to_the_update():
    """Nothing known marks it sensitive and its text is unknown: the analyzer turns this
    into "can't run policy during preview" and `pulumi up` checks it with known values."""
    with pytest.raises(UnknownValueError):
        run(kp.validate_command_logging, rargs(CMD, {"create": UNKNOWN_STRING_VALUE}, name="dev-cp-0-kernel"))


# --- kata namespaces ---------------------------------------------------------------------

LIMITS = {"limits": {"cpu": "500m", "memory": "256Mi"}, "requests": {"cpu": "100m", "memory": "128Mi"}}


def pod_spec(runtime_class: str | None = "kata", resources=LIMITS, init=None) -> dict:
    spec: dict[str, Any] = {"containers": [{"name": "app", "image": "img", "resources": resources}]}
    if init is not None:
        spec["initContainers"] = [init]
    if runtime_class:
        spec["runtimeClassName"] = runtime_class
    return spec


def deployment(name="web", namespace="kata-demo", annotations=None, **spec_kw) -> PolicyResource:
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if annotations:
        meta["annotations"] = annotations
    return presource("kubernetes:apps/v1:Deployment",
                     {"metadata": meta, "spec": {"template": {"spec": pod_spec(**spec_kw)}}}, name)


def namespace(name: str, labels=None) -> PolicyResource:
    return presource(kp.NAMESPACE, {"metadata": {"name": name, "labels": labels or {}}}, name)


def sargs(*resources, config=None) -> StackValidationArgs:
    return StackValidationArgs(list(resources), config)


def test_kata_workloads_with_runtime_class_and_limits_pass():
    stack = sargs(namespace("kata-demo"), deployment(),
                  presource("kubernetes:core/v1:Pod", {"metadata": {"name": "c", "namespace": "kata-demo"},
                                                        "spec": pod_spec()}, "c"))
    assert run(kp.validate_kata_runtime_class, stack) == []
    assert run(kp.validate_kata_resource_limits, stack) == []


def test_missing_runtime_class_in_kata_demo_is_rejected_with_its_urn():
    bad = deployment(name="runc-by-mistake", runtime_class=None)
    found = run(kp.validate_kata_runtime_class, sargs(bad))
    assert [urn for _, urn in found] == [bad.urn]
    assert "runtimeClassName" in found[0][0] and "kata-demo" in found[0][0]


def test_runc_twin_with_a_reason_is_allowed():
    twin = deployment(name="web-runc", runtime_class=None,
                      annotations={kp.RUNC_EXEMPT_ANNOTATION: "baseline"})
    assert run(kp.validate_kata_runtime_class, sargs(twin)) == []


def test_runc_reason_on_the_pod_template_counts_too():
    twin = deployment(name="web-runc", runtime_class=None)
    twin.props["spec"]["template"]["metadata"] = {"annotations": {kp.RUNC_EXEMPT_ANNOTATION: "baseline"}}
    assert run(kp.validate_kata_runtime_class, sargs(twin)) == []
    empty = deployment(name="web-runc", runtime_class=None, annotations={kp.RUNC_EXEMPT_ANNOTATION: ""})
    assert len(run(kp.validate_kata_runtime_class, sargs(empty))) == 1  # a reason, not just the key


def test_labeled_namespace_is_a_kata_namespace():
    workload = deployment(namespace="team-a", runtime_class=None)
    assert run(kp.validate_kata_runtime_class, sargs(namespace("team-a"), workload)) == []
    labeled = namespace("team-a", {kp.KATA_NAMESPACE_LABEL: "true"})
    assert len(run(kp.validate_kata_runtime_class, sargs(labeled, workload))) == 1


def test_configured_namespaces_replace_the_default():
    cfg = {"kataNamespaces": ["team-b"]}
    assert run(kp.validate_kata_runtime_class, sargs(deployment(runtime_class=None), config=cfg)) == []
    found = run(kp.validate_kata_runtime_class,
                sargs(deployment(namespace="team-b", runtime_class=None), config=cfg))
    assert len(found) == 1


def test_cronjob_and_default_namespace_paths():
    cron = presource("kubernetes:batch/v1:CronJob", {
        "metadata": {"name": "nightly", "namespace": "kata-demo"},
        "spec": {"schedule": "@daily", "jobTemplate": {"spec": {"template": {"spec": pod_spec(None)}}}}},
        "nightly")
    assert len(run(kp.validate_kata_runtime_class, sargs(cron))) == 1
    pod = presource("kubernetes:core/v1:Pod", {"metadata": {"name": "p"}, "spec": pod_spec(None)}, "p")
    assert run(kp.validate_kata_runtime_class, sargs(pod)) == []  # "default" is not a kata namespace


@pytest.mark.parametrize("spec_kw, missing", [
    ({"resources": {}}, "cpu or memory"),
    ({"resources": {"limits": {"memory": "256Mi"}}}, "no cpu limit"),
    ({"init": {"name": "setup", "image": "img"}}, "'setup'"),
])
def test_containers_without_limits_are_rejected(spec_kw, missing):
    found = run(kp.validate_kata_resource_limits, sargs(deployment(**spec_kw)))
    assert len(found) == 1 and missing in found[0][0], found


def test_limits_are_not_required_outside_kata_namespaces():
    assert run(kp.validate_kata_resource_limits, sargs(deployment(namespace="tools", resources={}))) == []


# --- the pack itself ---------------------------------------------------------------------

def test_ports_mirror_versions_py():
    sys.path.insert(0, str(ROOT))
    from components import versions

    assert (kp.SSH_PORT, kp.API_PORT) == (versions.SSH_PORT, versions.API_PORT)


def test_main_builds_one_pack_of_every_policy(monkeypatch):
    """__main__.py, run as the CLI would, passes every policy to one mandatory pack
    (PolicyPack itself is replaced: the real one starts a gRPC server and blocks)."""
    import pulumi_policy

    built = []
    monkeypatch.setattr(pulumi_policy, "PolicyPack", lambda **kw: built.append(kw))
    runpy.run_path(str(POLICY_DIR / "__main__.py"), run_name="__main__")
    assert len(built) == 1
    assert re.fullmatch(r"[A-Za-z0-9_.-]+", built[0]["name"])
    names = [p.name for p in built[0]["policies"]]
    assert names == [p.name for p in kp.POLICIES] and len(set(names)) == 5
    assert built[0]["enforcement_level"] == pulumi_policy.EnforcementLevel.MANDATORY


def test_pack_manifest_and_pins():
    manifest = yaml.safe_load((POLICY_DIR / "PulumiPolicy.yaml").read_text())
    assert manifest["runtime"] == {"name": "python", "options": {"virtualenv": "venv"}}
    assert re.fullmatch(r"\d+\.\d+\.\d+", manifest["version"])
    pins = dict(re.findall(r"^([a-z0-9-]+)==(\S+)$", (POLICY_DIR / "requirements.txt").read_text(), re.M))
    dev = (ROOT / "requirements-dev.txt").read_text() + (ROOT / "requirements.txt").read_text()
    project = dict(re.findall(r"^([a-z0-9-]+)==(\S+)$", dev, re.M))
    assert pins and all(project.get(k) == v for k, v in pins.items()), (pins, project)


@pytest.mark.parametrize("config", [
    {},
    {"controlPlaneCount": 3, "floatingIpPerNode": True, "kataDedicatedWorkers": True,
     "containerRuntime": "crio"},
], ids=["dev", "ha-crio-fips"])
def test_the_projects_own_stack_passes_the_pack(config):
    """Every resource the stack declares (under the project's mocks) satisfies every
    policy: the pack must not block the stack it ships with."""
    sys.path.insert(0, str(ROOT / "tests"))
    import harness

    try:
        graph = harness.run_program(config)
    except (ImportError, NotImplementedError) as exc:  # components still skeletons
        pytest.skip(f"the program does not evaluate yet: {exc!r}")
    found = []
    report = lambda message, urn=None: found.append(message)  # noqa: E731
    resources = []
    for reg in graph:
        args = ResourceValidationArgs(reg.type, _props(reg.inputs), reg.urn, reg.name,
                                      _opts(reg.additional_secret_outputs), None)
        for policy in kp.POLICIES:
            if isinstance(policy, kp.ResourceValidationPolicy):
                policy.validate(args, report)
        resources.append(presource(reg.type, reg.inputs, reg.name, reg.urn))
    for policy in kp.POLICIES:
        if isinstance(policy, kp.StackValidationPolicy):
            policy.validate(StackValidationArgs(resources), report)
    assert found == [], "\n".join(found)
    commands = [r for r in graph if r.type in kp.COMMANDS]
    assert not commands or any(kp.carries_credentials(
        ResourceValidationArgs(r.type, _props(r.inputs), r.urn, r.name, _opts(r.additional_secret_outputs),
                               None))
        for r in commands), "no command recognised as credential-bearing: detection is blind to this project"


def _rule(name, prefix, port=10250, group="sg-1"):
    return presource(RULE, {"direction": "ingress", "ethertype": "IPv4", "protocol": "tcp",
                                      "portRangeMin": port, "portRangeMax": port, "remoteIpPrefix": prefix,
                                      "securityGroupId": group}, name)


def test_two_half_internet_rules_are_a_world_open_port():
    """Issue #12: the union of prefixes decides, not a literal 0.0.0.0/0."""
    found = run(kp.validate_world_union, sargs(_rule("a", "0.0.0.0/1"), _rule("b", "128.0.0.0/1")))
    assert len(found) == 1 and "together open tcp ports 10250-10250 to the whole internet" in found[0][0]
    # SSH may be world-open, other groups or halves alone are not a union of everything.
    assert run(kp.validate_world_union, sargs(_rule("a", "0.0.0.0/1", 22), _rule("b", "128.0.0.0/1", 22))) == []
    assert run(kp.validate_world_union, sargs(_rule("a", "0.0.0.0/1"), _rule("b", "128.0.0.0/1", group="sg-2"))) == []
    assert run(kp.validate_world_union, sargs(_rule("a", "0.0.0.0/1"), _rule("b", "203.0.113.0/24"))) == []
