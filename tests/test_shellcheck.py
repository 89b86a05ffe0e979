"""shellcheck (the real one) over every shell script in scripts/, whoever wrote it, plus the
conventions every phase script shares (brief: "Node scripts")."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from sandbox import STUB_PROGRAM

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = sorted((ROOT / "scripts").rglob("*.sh"))
# Node and cluster scripts (scripts/remote/node, scripts/remote/cluster); the tools at the top of scripts/
# (test.sh, install-helm.sh) run on the operator's or CI's machine, not from a phase bundle.
# scripts/remote/launch.sh is no phase: it is the tail of every phase's program (phase.py).
PHASE_SCRIPTS = [p for p in SCRIPTS
                 if p.parent.name != "lib" and p.parent not in (ROOT / "scripts", ROOT / "scripts" / "remote")]
SHELLCHECK = shutil.which("shellcheck")
HEADER = re.compile(
    r'\A#!/usr/bin/env bash\nset -euo pipefail\n(#.*\n)+'
    r'# shellcheck source=scripts/remote/lib/common.sh\n'
    r'source "\$\(dirname "\$\{BASH_SOURCE\[0\]\}"\)/\.\./lib/common\.sh"\n'
    r'# shellcheck source=/dev/null\n'
    r'source "\$\{KATAK8S_PARAMS:-\$\{1:\?usage: \$0 PARAMS_FILE\}\}"\n')

STANDALONE_HEADER = re.compile(
    r'\A#!/usr/bin/env bash\nset -euo pipefail\n(#.*\n)+'
    r'# shellcheck source=/dev/null\n'
    r'source "\$\{KATAK8S_PARAMS:-\$\{1:\?usage: \$0 PARAMS_FILE\}\}"\n')


def _ids(paths):
    return [str(p.relative_to(ROOT)) for p in paths]


@pytest.mark.skipif(SHELLCHECK is None, reason="shellcheck is not installed (scripts/test.sh installs it)")
@pytest.mark.parametrize("script", SCRIPTS, ids=_ids(SCRIPTS))
def test_shellcheck_clean(script):
    # -x follows `source` lines; run from the repo root so source=scripts/... paths resolve.
    res = subprocess.run([SHELLCHECK, "-x", "--severity=info", str(script.relative_to(ROOT))],
                         cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.mark.skipif(SHELLCHECK is None, reason="shellcheck is not installed (scripts/test.sh installs it)")
def test_sandbox_stub_is_shellcheck_clean():
    res = subprocess.run([SHELLCHECK, "--severity=info", "-s", "bash", "-"], input=STUB_PROGRAM,
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stdout


def test_there_are_scripts_to_check():
    assert any(p.name == "common.sh" for p in SCRIPTS) and len(PHASE_SCRIPTS) >= 6


@pytest.mark.parametrize("script", SCRIPTS, ids=_ids(SCRIPTS))
def test_no_xtrace(script):
    # Scripts may handle join tokens and keys: tracing would log them (brief, Standards).
    assert not re.search(r"^\s*set\s+-[a-z]*x|set\s+-o\s+xtrace", script.read_text(), re.M)


@pytest.mark.parametrize("script", PHASE_SCRIPTS, ids=_ids(PHASE_SCRIPTS))
def test_phase_script_skeleton(script):
    text = script.read_text()
    if "katak8s-standalone" in text:  # sources no library (scripts/remote/cluster/kubeconfig.sh says why)
        assert STANDALONE_HEADER.match(text) and "lib/common.sh" not in text.split("katak8s-standalone")[1]
    else:
        assert HEADER.match(text), "header: shebang, strict mode, what it does + inputs, the two sources"
    assert re.search(r"^# inputs?:", text, re.M) or re.search(r"inputs?:", text.split("set -euo")[0])
    assert text.rstrip().endswith('main "$@"'), "a single ordered main at the bottom"
