"""scripts/plan_diff.py on synthetic plan directories shaped like scripts/plan.py's output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import plan_diff  # noqa: E402

BASE_RESOURCES = [
    "katak8s:network:ClusterNetwork\tnetwork\t",
    "openstack:networking/network:Network\tnetwork-net\tnetwork",
    "command:remote:Command\tdev-worker-0-kata\tbootstrap",
    "command:remote:Command\tdev-worker-1-kata\tbootstrap",
]


def write_plan(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def base_files() -> dict[str, str]:
    return {
        "resources.txt": "\n".join(sorted(BASE_RESOURCES)) + "\n",
        "inputs/network-net.json": json.dumps({"name": "dev", "mtu": 1450}, sort_keys=True),
        "inputs/dev-worker-0-kata.json": json.dumps({"inputs": {"create": "bash kata.sh",
                                                                 "triggers": ["aa"]}}),
        "nodes/dev-worker-0/kata.sh": "#!/usr/bin/env bash\nKATA_VERSION='4.1.0'\nmain\n",
        "nodes/dev-worker-0/preflight.sh": "check\n",
        "nodes/dev-worker-1/kata.sh": "#!/usr/bin/env bash\nKATA_VERSION='4.1.0'\nmain\n",
        "cloud-init/dev-worker-0.yaml": "#cloud-config\nhostname: dev-worker-0\n",
        "kubeadm/join-dev-worker-0.yaml": "kind: JoinConfiguration\n",
    }


@pytest.fixture
def plans(tmp_path):
    def make(head_changes: dict[str, str | None]) -> tuple[Path, Path]:
        head = base_files()
        for rel, text in head_changes.items():
            if text is None:
                head.pop(rel)
            else:
                head[rel] = text
        return write_plan(tmp_path / "base", base_files()), write_plan(tmp_path / "head", head)
    return make


def test_identical_plans_say_so(plans):
    d = plan_diff.compare(*plans({}))
    assert d.empty and d.diff == ""
    text = plan_diff.render_summary(d)
    assert text.startswith(plan_diff.MARKER + "\n") and "No differences" in text


def test_scale_out_by_one_worker(plans):
    """The PR a reviewer most often sees: one node's resources, scripts and files appear."""
    d = plan_diff.compare(*plans({
        "resources.txt": "\n".join(sorted(BASE_RESOURCES + [
            "command:remote:Command\tdev-worker-2-kata\tbootstrap",
            "command:remote:Command\tdev-worker-2-preflight\tbootstrap"])) + "\n",
        "nodes/dev-worker-2/kata.sh": "kata\n",
        "nodes/dev-worker-2/preflight.sh": "check\n",
        "cloud-init/dev-worker-2.yaml": "#cloud-config\n",
    }))
    assert d.added == [("command:remote:Command", "dev-worker-2-kata", "bootstrap"),
                       ("command:remote:Command", "dev-worker-2-preflight", "bootstrap")]
    assert d.removed == [] and d.changed == []
    assert d.nodes == [("dev-worker-2", "kata, preflight", "new node")]
    assert d.files == [("cloud-init/dev-worker-2.yaml", "added (+1 −0)")]
    text = plan_diff.render_summary(d)
    assert "**2 added, 0 removed, 0 changed** resources" in text
    assert "| ➕ added | `command:remote:Command` | `dev-worker-2-kata` | `bootstrap` |" in text
    assert "| `dev-worker-2` | kata, preflight | new node |" in text
    assert "--- /dev/null\n+++ head/nodes/dev-worker-2/kata.sh\n" in d.diff


def test_version_bump_changes_inputs_and_scripts(plans):
    bumped = "#!/usr/bin/env bash\nKATA_VERSION='4.2.0'\nmain\n"
    d = plan_diff.compare(*plans({
        "inputs/dev-worker-0-kata.json": json.dumps({"inputs": {"create": "bash kata.sh",
                                                                 "triggers": ["bb"]}}),
        "nodes/dev-worker-0/kata.sh": bumped,
        "nodes/dev-worker-1/kata.sh": bumped,
    }))
    assert d.added == d.removed == [] and d.files == []
    assert d.changed == [("dev-worker-0-kata", ["triggers"])]
    assert d.nodes == [("dev-worker-0", "kata", "changed (+1 −1)"),
                       ("dev-worker-1", "kata", "changed (+1 −1)")]
    text = plan_diff.render_summary(d)
    assert "| `dev-worker-0-kata` | `triggers` |" in text
    assert "-KATA_VERSION='4.1.0'\n+KATA_VERSION='4.2.0'\n" in d.diff
    assert "--- base/nodes/dev-worker-1/kata.sh\n+++ head/nodes/dev-worker-1/kata.sh\n" in d.diff


def test_removed_resources_nodes_phases_and_files(plans):
    d = plan_diff.compare(*plans({
        "resources.txt": "\n".join(sorted(BASE_RESOURCES[:-1])) + "\n",
        "nodes/dev-worker-1/kata.sh": None,
        "nodes/dev-worker-0/preflight.sh": None,
        "nodes/dev-worker-0/runtime.sh": "containerd\n",
        "kubeadm/join-dev-worker-0.yaml": None,
        "inputs/network-net.json": json.dumps({"name": "dev", "mtu": 1400}, sort_keys=True),
    }))
    assert d.removed == [("command:remote:Command", "dev-worker-1-kata", "bootstrap")]
    assert d.nodes == [("dev-worker-0", "preflight", "removed"), ("dev-worker-0", "runtime", "added"),
                       ("dev-worker-1", "kata", "node removed")]
    assert d.files == [("kubeadm/join-dev-worker-0.yaml", "removed (+0 −1)")]
    assert d.changed == [("network-net", ["mtu"])]
    assert "+++ /dev/null" in d.diff
    assert "| ➖ removed |" in plan_diff.render_summary(d)


def test_space_separated_resource_lines_and_root_resources(tmp_path):
    base = write_plan(tmp_path / "b", {"resources.txt": "katak8s:access:SshAccess access\n"})
    lines = "katak8s:access:SshAccess access\ntls:index/privateKey:PrivateKey access-key access\n"
    head = write_plan(tmp_path / "h", {"resources.txt": lines})
    d = plan_diff.compare(base, head)
    assert d.added == [("tls:index/privateKey:PrivateKey", "access-key", "access")]


def test_a_missing_base_renders_everything_as_added(tmp_path):
    head = write_plan(tmp_path / "head", base_files())
    (tmp_path / "empty").mkdir()
    d = plan_diff.compare(tmp_path / "empty", head)
    assert len(d.added) == len(BASE_RESOURCES) and d.removed == []
    assert {n for n, _, c in d.nodes if c == "new node"} == {"dev-worker-0", "dev-worker-1"}


def test_long_tables_are_cut_and_cells_escaped(tmp_path):
    many = [f"t:x:Y\tr{i:03d}|pipe\t" for i in range(plan_diff.MAX_ROWS + 5)]
    (tmp_path / "b").mkdir()
    head = write_plan(tmp_path / "h", {"resources.txt": "\n".join(many) + "\n"})
    text = plan_diff.render_summary(plan_diff.compare(tmp_path / "b", head))
    assert "… and 5 more (see the full diff artifact)." in text
    assert "`r000\\|pipe`" in text and "r044" not in text.split("… and")[0].split("r039")[1]


def test_the_summary_stays_under_githubs_comment_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(plan_diff, "MAX_ROWS", 10_000)
    (tmp_path / "b").mkdir()
    lines = "".join(f"t:x:Y\t{'n' * 80}{i}\t\n" for i in range(2000))
    head = write_plan(tmp_path / "h", {"resources.txt": lines})
    text = plan_diff.render_summary(plan_diff.compare(tmp_path / "b", head))
    assert len(text) < 65536 and text.endswith("see the full diff artifact.\n")


def test_cli_is_deterministic_and_writes_both_files(plans, tmp_path):
    base, head = plans({"nodes/dev-worker-0/kata.sh": "changed\n"})
    outputs = []
    for run in ("one", "two"):
        summary, diff = tmp_path / f"{run}.md", tmp_path / f"{run}.diff"
        proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "plan_diff.py"), str(base), str(head),
                               "--summary", str(summary), "--diff", str(diff), "--title", "Plan (dev)",
                               "--artifact-url", "https://example.test/r/1", "--note", "base had no plan"],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0 and proc.stdout == "", proc.stderr
        outputs.append((summary.read_text(), diff.read_text()))
    assert outputs[0] == outputs[1]
    text = outputs[0][0]
    assert text.splitlines()[:4] == [plan_diff.MARKER, "### Plan (dev)", "", "> base had no plan"]
    assert "[this run](https://example.test/r/1)" in text


def test_cli_refuses_a_missing_plan_directory(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "plan_diff.py"), str(tmp_path / "nope"),
                           str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "scripts/plan.py --out" in proc.stderr
