"""The configuration contract: every bad input fails with one error that names each
problem's key, value and the allowed values, before any resource is declared."""

from __future__ import annotations

import pytest
from harness import BASE_CONFIG, run_program

from components import versions
from components.config import ConfigError, parse_config

# (case, config overrides, key that must be named, words the message must contain)
BAD = [
    ("missing flavor", {"controlPlaneFlavor": None}, "katak8s:controlPlaneFlavor", "is required"),
    ("missing network", {"externalNetwork": None}, "katak8s:externalNetwork", "is required"),
    ("missing cidrs", {"allowedCidrs": None}, "katak8s:allowedCidrs", "is required"),
    ("empty cidrs", {"allowedCidrs": []}, "katak8s:allowedCidrs", "at least one CIDR"),
    ("worker count type", {"workerCount": "two"}, "katak8s:workerCount", "must be an integer, got 'two'"),
    ("worker count low", {"workerCount": -1}, "katak8s:workerCount",
     "must be an integer from 0 to 500, got -1"),
    ("worker count high", {"workerCount": 501}, "katak8s:workerCount", "from 0 to 500, got 501"),
    ("even control planes", {"controlPlaneCount": 2}, "katak8s:controlPlaneCount", "one of 1, 3, 5, got 2"),
    ("zero control planes", {"controlPlaneCount": 0}, "katak8s:controlPlaneCount", "one of 1, 3, 5"),
    ("boolean type", {"sampleWorkloads": "yes"}, "katak8s:sampleWorkloads", "must be a boolean"),
    ("list type", {"allowedCidrs": "10.0.0.0/8"}, "katak8s:allowedCidrs", "must be a list of strings"),
    ("malformed cidr", {"nodeCidr": "10.42.0.0/33"}, "katak8s:nodeCidr", "IPv4 CIDR"),
    ("host bits", {"podCidr": "192.168.1.1/16"}, "katak8s:podCidr", "no host bits"),
    ("malformed allowed", {"allowedCidrs": ["1.2.3.4/40"]}, "katak8s:allowedCidrs[0]", "IPv4 CIDR"),
    ("bad dns", {"dnsNameservers": ["8.8.8"]}, "katak8s:dnsNameservers[0]", "IPv4 address"),
    ("overlap pod/service", {"podCidr": "10.96.0.0/16"}, "katak8s:podCidr", "must not overlap katak8s:serviceCidr"),
    ("overlap node/pod", {"nodeCidr": "192.168.3.0/24"}, "katak8s:nodeCidr", "must not overlap katak8s:podCidr"),
    ("node cidr too small", {"nodeCidr": "10.42.0.0/29", "workerCount": 10}, "katak8s:nodeCidr",
     "must hold 11 nodes plus 6 reserved addresses; use a prefix of /27"),
    ("unknown runtime", {"containerRuntime": "docker"}, "katak8s:containerRuntime",
     "must be one of containerd, crio, got 'docker'"),
    ("unknown hypervisor", {"kataHypervisor": "firecracker"}, "katak8s:kataHypervisor",
     "must be one of qemu, clh"),
    ("unsupported k8s", {"kubernetesVersion": "1.30"}, "katak8s:kubernetesVersion", "minor is not supported"),
    ("malformed k8s", {"kubernetesVersion": "v1.36"}, "katak8s:kubernetesVersion", "must be 1.M or 1.M.P"),
    ("malformed kata", {"kataVersion": "4.1"}, "katak8s:kataVersion", "must be a release tag X.Y.Z"),
    ("old kata", {"kataVersion": "3.32.0"}, "katak8s:kataVersion", "4.x release from 4.1.0 on"),
    ("calico minor", {"calicoVersion": "3.31.7"}, "katak8s:calicoVersion", "minor is not supported"),
    ("malformed calico", {"calicoVersion": "latest"}, "katak8s:calicoVersion", "must be 3.M.P"),
    ("calico not tested with 1.37", {"kubernetesVersion": "1.37", "calicoVersion": "3.32.1"},
     "katak8s:calicoVersion", "Calico 3.32 is not tested with Kubernetes 1.37 (it covers 1.34, 1.35, 1.36); use 3.33"),
    ("bad sha", {"kataSha256": "abc"}, "katak8s:kataSha256", "64 lowercase hex"),
    ("unpinned kata", {"kataVersion": "4.2.0"}, "katak8s:kataSha256", "is required for kataVersion 4.2.0"),
    ("cluster name chars", {"clusterName": "Prod_1"}, "katak8s:clusterName", "DNS-1123 label"),
    ("cluster name length", {"clusterName": "a" * 41}, "katak8s:clusterName", "at most 40 characters"),
    ("small boot volume", {"bootVolumeSize": 5}, "katak8s:bootVolumeSize", "at least 20 GiB"),
    ("typo key", {"workerCont": 3}, "katak8s:workerCont", "unknown key"),
    ("dedicated without workers", {"kataDedicatedWorkers": True, "workerCount": 0},
     "katak8s:kataDedicatedWorkers", "needs workerCount >= 1"),
]


def _raw(overrides: dict) -> dict:
    raw = {**BASE_CONFIG, **overrides}
    return {k: v for k, v in raw.items() if v is not None}


@pytest.mark.parametrize("case,overrides,key,words", BAD, ids=[c[0] for c in BAD])
def test_bad_input_names_key_value_and_rule(case, overrides, key, words):
    with pytest.raises(ConfigError) as err:
        parse_config(_raw(overrides), stack="dev")
    matching = [p for p in err.value.problems if p.startswith(key + ":")]
    assert matching, f"no problem names {key}: {err.value.problems}"
    assert any(words in p for p in matching), matching


@pytest.mark.parametrize("case,overrides,key,words", BAD, ids=[c[0] for c in BAD])
def test_bad_input_declares_no_resource(case, overrides, key, words):
    config = {k: v for k, v in {**BASE_CONFIG, **overrides}.items() if v is not None}
    with pytest.raises(ConfigError) as err:
        run_program(config, base=False)
    assert key in str(err.value)
    assert len(err.value.graph) == 0, [r.name for r in err.value.graph]


def test_every_problem_is_reported_at_once():
    raw = {"workerCount": "-3", "controlPlaneCount": "4", "nodeCidr": "nonsense",
           "containerRuntime": "rkt", "kubernetesVersion": "2.0"}
    with pytest.raises(ConfigError) as err:
        parse_config(raw, stack="dev")
    keys = {p.split(":")[1] for p in err.value.problems}
    assert {"controlPlaneFlavor", "workerFlavor", "externalNetwork", "allowedCidrs", "workerCount",
            "controlPlaneCount", "nodeCidr", "containerRuntime", "kubernetesVersion"} <= keys
    assert f"({len(err.value.problems)} problems)" in str(err.value)


def test_secret_values_never_appear_in_errors():
    with pytest.raises(ConfigError) as err:
        parse_config({**BASE_CONFIG, "sshPrivateKey": 12345}, stack="dev")
    assert "12345" not in str(err.value)
    assert "katak8s:sshPrivateKey: must be a string, got [secret]" in str(err.value)


def test_defaults_and_derived_values():
    cfg = parse_config(BASE_CONFIG, stack="Staging")
    assert cfg.cluster_name == "staging"  # the stack name, lowercased, is the default
    assert (cfg.control_plane_count, cfg.worker_count) == (1, 2)
    assert cfg.kubernetes_patch == versions.KUBERNETES_PATCHES[versions.DEFAULT_KUBERNETES_VERSION]
    assert cfg.kata_version == versions.DEFAULT_KATA_VERSION
    assert versions.KATA_STATIC_SHA256[cfg.kata_version]  # the default has a pinned checksum
    assert cfg.cri_socket == versions.CRI_SOCKETS["containerd"]
    assert cfg.ssh_private_key is None and not cfg.ha and not cfg.opens_world


def test_cli_string_values_are_typed():
    # `pulumi config set` stores scalars as strings and lists as JSON.
    cfg = parse_config({**BASE_CONFIG, "workerCount": "50", "sampleWorkloads": "false",
                        "allowedCidrs": '["198.51.100.0/24", "203.0.113.7/32"]',
                        "kubernetesVersion": "1.35.2", "controlPlaneCount": "3"}, stack="dev")
    assert cfg.worker_count == 50 and cfg.sample_workloads is False
    assert cfg.allowed_cidrs == ("198.51.100.0/24", "203.0.113.7/32")
    assert cfg.kubernetes_patch == "1.35.2" and cfg.kubernetes_minor == "1.35" and cfg.ha


def test_world_open_cidr_is_a_warning_not_an_error():
    cfg = parse_config({**BASE_CONFIG, "allowedCidrs": ["0.0.0.0/0"]}, stack="dev")
    assert cfg.opens_world


def test_node_cidr_exactly_large_enough_passes():
    # /28 = 16 addresses = 10 nodes + 6 reserved.
    parse_config({**BASE_CONFIG, "nodeCidr": "10.42.0.0/28", "workerCount": 9}, stack="dev")
    with pytest.raises(ConfigError):
        parse_config({**BASE_CONFIG, "nodeCidr": "10.42.0.0/28", "workerCount": 10}, stack="dev")


# --- a secret key must arrive encrypted (Pulumi.yaml cannot say so: pulumi/pulumi#21865) ----


def _required(**extra):
    return {"controlPlaneFlavor": "f", "workerFlavor": "f", "externalNetwork": "n",
            "allowedCidrs": '["203.0.113.0/24"]', **extra}


def test_a_plaintext_ssh_key_is_refused_without_echoing_it():
    key = "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----"
    with pytest.raises(ConfigError) as err:
        parse_config(_required(sshPrivateKey=key), stack="dev", encrypted=frozenset())
    assert "katak8s:sshPrivateKey: must be set as a secret" in str(err.value)
    assert "pulumi config set --secret katak8s:sshPrivateKey" in str(err.value)
    assert "abc" not in str(err.value) and "[secret]" in str(err.value)


def test_an_encrypted_or_unset_ssh_key_is_accepted():
    parse_config(_required(sshPrivateKey="k"), stack="dev", encrypted=frozenset({"sshPrivateKey"}))
    assert parse_config(_required(), stack="dev", encrypted=frozenset()).ssh_private_key is None


def test_accept_ssh_public_key_must_be_a_public_key_line():
    with pytest.raises(ConfigError, match="acceptSshPublicKey: must be an OpenSSH public key line"):
        parse_config(_required(acceptSshPublicKey="-----BEGIN OPENSSH PRIVATE KEY-----"), stack="dev")
    assert parse_config(_required(acceptSshPublicKey="ssh-ed25519 AAAAC3Nz me@x"), stack="dev").accept_ssh_public_key



@pytest.mark.parametrize("k8s,calico,want", [
    ("1.36", "", "3.32.1"),        # what every deployed stack had: the default resolves to it
    ("1.35", "", "3.32.1"),
    ("1.37", "", "3.33.0"),        # 3.32 is not tested with 1.37 (versions.CALICO_COVERS)
    ("1.37.1", "", "3.33.0"),
    ("1.35", "3.33.0", "3.33.0"),  # 3.33 covers 1.35 to 1.37
    ("1.36", "3.32.1", "3.32.1"),
])
def test_an_empty_calico_version_is_the_release_tested_with_the_minor(k8s, calico, want):
    cfg = parse_config(_raw({"kubernetesVersion": k8s, "calicoVersion": calico}), stack="dev")
    assert cfg.calico_version == want
    assert v_covers(want, cfg.kubernetes_minor)


def v_covers(calico: str, minor: str) -> bool:
    return minor in versions.CALICO_COVERS[".".join(calico.split(".")[:2])]


def test_every_minor_s_calico_covers_it_and_1_37_is_supported():
    assert "1.37" in versions.KUBERNETES_MINORS
    for minor, stack in versions.KUBERNETES_MINORS.items():
        assert v_covers(stack.calico, minor), minor
        assert stack.patch.startswith(minor + ".") and stack.pause.startswith("registry.k8s.io/pause:")
    assert versions.DEFAULT_CALICO_VERSION == "3.32.1"  # deployed stacks keep their Calico


def test_a_default_jump_host_too_small_for_one_ups_sessions_is_warned():
    """pulumi-command keeps every step's session open on the jump host until `up` ends
    (components/config_rules.py held_sessions, JUMP_HOST_SESSION_MIB: measured)."""
    def warnings(**over):
        return parse_config(_required(controlPlaneCount=3, **over), stack="dev").warnings

    assert not [w for w in warnings(workerCount=82) if "jumpHost" in w]  # 509 sessions fit 2 GiB
    assert [w for w in warnings(workerCount=83) if "jumpHostFlavor" in w]
    big = [w for w in warnings(workerCount=200) if "jumpHostFlavor" in w]
    assert big and "keeps 1219 SSH sessions open" in big[0] and "at least 5 GiB" in big[0], big
    # jumpHost unset may still mean the first control plane on a stack deployed before the
    # dedicated jump host (settled after config, components/deployed.py): the warning says so.
    assert "deployed before the dedicated jump host" in big[0]
    explicit = [w for w in warnings(workerCount=200, jumpHost="dedicated") if "jumpHostFlavor" in w]
    assert explicit and "deployed before the dedicated jump host" not in explicit[0]
    assert not [w for w in warnings(workerCount=200, jumpHostFlavor="m1.large") if "jumpHost" in w]
    on_cp0 = [w for w in warnings(workerCount=200, jumpHost="first-control-plane") if "jumpHost" in w]
    assert len(on_cp0) == 1 and "the first control plane, beside etcd" in on_cp0[0], on_cp0
