"""The first-boot user data: minimal, stable, and valid for the real cloud-init."""

from __future__ import annotations

import dataclasses

import pytest
import yaml
from test_openstack_support import assert_valid_cloud_config, cloud_init_schema

from components import naming
from components.openstack import cloudinit

# Obviously fake keys in the real shapes: a multi-line OpenSSH private key and its public line.
FAKE_PRIVATE = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\n"
    "b3BlbnNzaC1rZXktdjEAAAAAFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKE\n"
    "TESTONLYTESTONLYTESTONLYTESTONLYTESTONLYTESTONLYTESTONLYTESTONLYTESTONLY==\n"
    "-----END OPENSSH PRIVATE KEY-----\n"
)
FAKE_PUBLIC = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAK\n"


def user_data(role: str, index: int, cluster: str = "demo") -> cloudinit.UserData:
    return cloudinit.UserData(hostname=naming.node_name(cluster, role, index),
                              host_private_key=FAKE_PRIVATE, host_public_key=FAKE_PUBLIC)


VARIANTS = {
    "cloudinit-control-plane.yaml": user_data(naming.CONTROL_PLANE, 0),
    "cloudinit-worker.yaml": user_data(naming.WORKER, 1),
}


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_golden(name, golden):
    golden(name, cloudinit.render(VARIANTS[name]))


@pytest.mark.parametrize("data", [
    *VARIANTS.values(),
    # longest node name config allows: a 40-character cluster name and worker 499
    user_data(naming.WORKER, 499, cluster="c" * 40),
    # the one-line placeholders the mocks use (what scripts/plan.py shows)
    cloudinit.UserData(hostname="dev-cp-0", host_private_key="<OpenSSH private key of dev-cp-0-host-key>",
                       host_public_key="ssh-ed25519 AAAAC3Nz dev-cp-0-host-key"),
], ids=["control-plane", "worker", "longest-name", "placeholders"])
def test_cloud_init_schema_accepts_every_variant(data, tmp_path):
    assert_valid_cloud_config(cloudinit.render(data), tmp_path)


@pytest.mark.parametrize("doc, error", [
    # Why ssh_genkeytypes lists ed25519 instead of []: the schema demands one entry.
    ({"ssh_genkeytypes": []}, "is too short"),
    ({"ssh_keys": {"dsa_privat": "x"}}, "does not match"),
    ({"ssh_pwauth": "no", "hostname": 1}, "is not of type"),
])
def test_cloud_init_schema_rejects_broken_documents(doc, error, tmp_path):
    """Negative controls: the validator used above does reject what cloud-init would not accept."""
    result = cloud_init_schema(cloudinit.HEADER + yaml.safe_dump(doc), tmp_path)
    assert result.returncode != 0
    assert error in result.stdout + result.stderr


def test_document_holds_only_first_boot_needs():
    doc = yaml.safe_load(cloudinit.render(VARIANTS["cloudinit-worker.yaml"]))
    assert set(doc) == {"hostname", "fqdn", "ssh_deletekeys", "ssh_genkeytypes", "ssh_keys", "ssh_pwauth"}
    assert doc["hostname"] == doc["fqdn"] == "demo-worker-1"
    assert doc["ssh_keys"] == {"ed25519_private": FAKE_PRIVATE, "ed25519_public": FAKE_PUBLIC.strip()}
    assert doc["ssh_deletekeys"] is True and doc["ssh_genkeytypes"] == ["ed25519"]
    assert doc["ssh_pwauth"] is False


def test_inputs_are_only_hostname_and_host_key():
    """Nothing version- or script-dependent can reach user_data: the renderer takes no such
    input. sshd settings are the jump host's alone: a node's document has no write_files."""
    assert [f.name for f in dataclasses.fields(cloudinit.UserData)] == [
        "hostname", "host_private_key", "host_public_key", "sshd_config", "bootcmd"]
    assert "write_files" not in cloudinit.document(VARIANTS["cloudinit-worker.yaml"])


def test_the_jump_hosts_sshd_settings_pass_the_schema(tmp_path):
    from components.openstack import jumphost
    data = cloudinit.UserData(hostname="dev-jump-host", host_private_key=FAKE_PRIVATE,
                              host_public_key=FAKE_PUBLIC, sshd_config=jumphost.SSHD_CONFIG,
                              bootcmd=jumphost.SSHD_BOOTCMD)
    text = cloudinit.render(data)
    assert_valid_cloud_config(text, tmp_path)
    [entry] = cloudinit.document(data)["write_files"]
    assert entry["path"] == cloudinit.SSHD_DROPIN and "MaxStartups 128:30:256" in entry["content"]
    assert "PerSourcePenalties" not in entry["content"]  # OpenSSH 9.6 would refuse the file
    assert cloudinit.document(data)["bootcmd"] == list(jumphost.SSHD_BOOTCMD)


def test_render_is_deterministic_and_starts_with_the_cloud_config_header():
    data = VARIANTS["cloudinit-control-plane.yaml"]
    text = cloudinit.render(data)
    assert text == cloudinit.render(dataclasses.replace(data))
    assert text.startswith("#cloud-config\n")
    # the private key is a literal block, byte-for-byte the key
    assert "ed25519_private: |\n    -----BEGIN OPENSSH PRIVATE KEY-----\n" in text
