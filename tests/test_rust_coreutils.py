"""review-node F17: Ubuntu 26.04 ships uutils' Rust coreutils as its coreutils. The node
scripts' sandbox suites run again here with uutils taking the place of GNU coreutils
(tests/sandbox.py KATAK8S_SANDBOX_COREUTILS), so a tool that behaves differently there fails a
test. The uutils here is Debian's rust-coreutils (installed by scripts/test.sh), an older
release than 26.04's: agreement here is evidence, not proof (docs/troubleshooting.md)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

UUTILS = Path("/usr/lib/cargo/bin/coreutils")
ROOT = Path(__file__).resolve().parent.parent
SANDBOX_SUITES = [
    "tests/test_bootstrap_node_prep.py", "tests/test_bootstrap_runtime.py", "tests/test_bootstrap_kata.py",
    "tests/test_bootstrap_kube_packages.py", "tests/test_bootstrap_apt.py", "tests/test_bootstrap_sandbox.py",
    "tests/test_cluster_scripts.py", "tests/test_cluster_scale_in.py", "tests/test_upgrade_scripts.py",
    "tests/test_launch.py", "tests/test_steps.py",
]


NO_UUTILS = "rust-coreutils is not installed (scripts/test.sh installs it)"


@pytest.mark.skipif(not (UUTILS / "ls").exists(), reason=NO_UUTILS)
def test_the_node_scripts_pass_their_sandbox_suites_on_rust_coreutils(tmp_path):
    env = {**os.environ, "KATAK8S_SANDBOX_COREUTILS": str(UUTILS), "PYTHONDONTWRITEBYTECODE": "1"}
    res = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", "--basetemp",
         str(tmp_path / "t"), *SANDBOX_SUITES], cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]


def test_the_sandbox_really_links_uutils_when_asked(tmp_path, monkeypatch):
    """The check above is only worth something if the sandbox's tools are uutils' then."""
    if not (UUTILS / "ls").exists():
        pytest.skip(NO_UUTILS)
    import sandbox

    monkeypatch.setattr(sandbox, "COREUTILS_FIRST", str(UUTILS))
    sb = sandbox.Sandbox(tmp_path)
    for tool in ("cat", "mktemp", "install", "sha256sum", "tail", "wc"):
        assert sb.bin.joinpath(tool).readlink().parent == UUTILS, tool
