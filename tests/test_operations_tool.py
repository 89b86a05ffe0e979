"""scripts/operations.py: the operation plan users read before `pulumi up`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import operations

ROOT = Path(__file__).resolve().parent.parent


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "scripts/operations.py"), "--stack", "dev", *args],
                          capture_output=True, text=True, cwd=ROOT)


def test_docs_show_the_tools_real_output():
    """docs/operations.md cannot drift from what the tool prints."""
    text = (ROOT / "docs" / "operations.md").read_text()
    block = text.split(operations.DOC_BEGIN, 1)[1].split(operations.DOC_END, 1)[0]
    assert block.strip() == operations.examples_markdown().strip(), \
        "regenerate with: venv/bin/python scripts/operations.py --write-docs"
    for title, *_ in operations.EXAMPLES:
        assert f"#### {title}\n" in block


def test_cli_scale_in_prints_the_node_order():
    res = _run("--set", "workerCount=1")
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines()[0] == (
        "dev-worker-1: drain (on dev-cp-0), then kubeadm reset, then delete the Node (on dev-cp-0), "
        "then server deleted")


def test_cli_exits_2_with_the_refusal():
    res = _run("--set", "controlPlaneCount=3")
    assert res.returncode == 2 and "katak8s:controlPlaneCount: cannot move between 1 and 3" in res.stdout


def test_cli_before_plan_needs_a_graph(tmp_path):
    res = _run("--before-plan", str(tmp_path))
    assert res.returncode == 2 and "has no graph.json" in res.stderr
