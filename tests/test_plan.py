"""The offline plan renders the dev stack completely and deterministically."""

from __future__ import annotations

import filecmp
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _plan(out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "scripts/plan.py"), "--stack", "dev",
                           "--out", str(out), *extra], capture_output=True, text=True, cwd=ROOT)


@pytest.fixture(scope="module")
def dev_plan(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("plan") / "dev"
    result = _plan(out)
    assert result.returncode == 0, result.stderr
    return out


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_two_runs_are_byte_identical(dev_plan, tmp_path):
    again = tmp_path / "again"
    assert _plan(again).returncode == 0
    first, second = _tree(dev_plan), _tree(again)
    assert first.keys() == second.keys()
    assert [k for k in first if first[k] != second[k]] == []


def test_plan_shows_every_artifact_kind(dev_plan):
    nodes = sorted(p.name for p in (dev_plan / "nodes").iterdir())
    assert nodes == ["dev-cp-0", "dev-worker-0", "dev-worker-1"]
    phases = {p.stem for p in (dev_plan / "nodes" / "dev-worker-1").glob("*.sh")}
    assert len(phases) >= 5, phases  # preflight, kernel, runtime, kata, kube packages, join...
    # Every server's user data, the jump host's too (its sshd settings are reviewed like the rest).
    assert sorted(p.stem for p in (dev_plan / "cloud-init").glob("*.yaml")) == sorted([*nodes, "dev-jump-host"])
    kubeadm = sorted(p.name for p in (dev_plan / "kubeadm").glob("*.yaml"))
    assert kubeadm == ["dev-cp-0-kubeadm-init.yaml", "dev-worker-0-kubeadm-join.yaml",
                       "dev-worker-1-kubeadm-join.yaml"]
    join = (dev_plan / "kubeadm" / "dev-worker-0-kubeadm-join.yaml").read_text()
    assert "kind: JoinConfiguration" in join and "mock placeholders" in join
    assert (dev_plan / "kubernetes" / "RuntimeClass").is_dir()
    text = (dev_plan / "resources.txt").read_text()
    assert "openstack:compute/instance:Instance  dev-worker-1" in text


def test_deployment_only_values_are_marked_placeholders(dev_plan):
    outputs = (dev_plan / "outputs.json").read_text()
    assert "<floating IP of" in outputs
    assert '"kubeconfig": "[secret]"' in outputs


def test_a_config_change_reads_as_a_diff(dev_plan, tmp_path):
    bigger = tmp_path / "bigger"
    assert _plan(bigger, "--set", "workerCount=3").returncode == 0
    cmp = filecmp.dircmp(dev_plan / "nodes", bigger / "nodes")
    assert cmp.right_only == ["dev-worker-2"] and cmp.left_only == []
    for node in cmp.common_dirs:  # existing nodes run exactly the same scripts
        sub = filecmp.dircmp(dev_plan / "nodes" / node, bigger / "nodes" / node)
        assert sub.diff_files == [], (node, sub.diff_files)


def test_bad_config_fails_cleanly(tmp_path):
    result = _plan(tmp_path / "bad", "--set", "workerCount=-1")
    assert result.returncode == 2
    assert "katak8s:workerCount: must be an integer from 0 to 500, got -1" in result.stderr
    assert "Traceback" not in result.stderr


KEY_TEXT = ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAAsecretsecret\n"
            "-----END OPENSSH PRIVATE KEY-----")


def _leaks(root: Path) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.is_file() and "secretsecret" in p.read_text(errors="replace")]


def test_no_secret_reaches_the_plan_from_set(tmp_path):
    """Issue #12 s4: whatever the source of a secret key's value, the plan holds a placeholder."""
    out = tmp_path / "plan"
    assert _plan(out, "--set", f"sshPrivateKey={KEY_TEXT}").returncode == 0
    assert _leaks(out) == []


def test_no_secret_reaches_the_plan_from_a_plaintext_stack_value(tmp_path):
    stack_file = tmp_path / "Pulumi.leaky.yaml"
    dev = (ROOT / "Pulumi.dev.yaml").read_text()
    stack_file.write_text(dev + "  katak8s:sshPrivateKey: |\n"
                          + "".join(f"    {line}\n" for line in KEY_TEXT.splitlines()))
    out = tmp_path / "plan"
    assert _plan(out, "--stack-file", str(stack_file)).returncode == 0
    assert _leaks(out) == []
