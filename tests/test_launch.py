"""The command every phase runs (components/nodes/phase.py command_line + render_program)
finds the node's copy of scripts/remote by the sums it carries (scripts/remote/launch.sh).

Run for real in the sandbox: the exact `sudo -n timeout N bash -c '...'` text of a
Command (the sandbox's sudo and timeout pass through), against copies laid out where
components/nodes/library.py puts them."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from sandbox import Sandbox
from test_bootstrap_cases import bundle, cfg_for

from components.cluster.params import DrainParams
from components.nodes import library, phase


@pytest.fixture
def sb(tmp_path) -> Sandbox:
    return Sandbox(tmp_path)


def ran_after_launch(res) -> list:
    """The calls besides the command line's own sudo and timeout."""
    return [c for c in res.calls if c.name not in ("sudo", "timeout")]


def copy_dir(sb: Sandbox, version: str) -> str:
    return str(sb.path(f"{phase.DEFAULT_HOME}/scripts/{version}/remote"))


def test_the_command_line_runs_the_phase_from_the_copy(sb):
    line = phase.command_line(bundle(cfg_for(), "preflight"), 1800)
    res = sb.run_command(line)
    assert res.ok, res
    assert "[katak8s preflight] INFO" in res.stderr, res  # the real script ran
    again = sb.run_command(line)
    assert again.ok and again.changing() == [], again


def test_a_copy_whose_file_differs_is_never_run(sb):
    """A node whose copy was edited (or truncated by a failed copy) runs nothing of it."""
    copy = shutil.move(copy_dir(sb, library.version()), copy_dir(sb, "tampered"))
    with open(f"{copy}/node/00-preflight.sh", "a") as f:
        f.write("touch \"${KATAK8S_ROOT}/tampered-ran\"\n")
    res = sb.run_command(phase.command_line(bundle(cfg_for(), "preflight"), 1800))
    assert res.rc == 1, res
    assert "holds node/00-preflight.sh with the sha256 this command expects" in res.stderr
    assert "pulumi up --replace <URN of this node's -scripts resource>" in res.stderr
    assert not sb.exists("tampered-ran") and ran_after_launch(res) == []


def test_an_old_delete_finds_its_own_version_beside_newer_copies(sb):
    """A delete saved in the state before the scripts changed runs the files it was rendered
    with: the copies are never overwritten, and the newest one does not match it."""
    old = phase.render_program("membership-dev-worker-1-delete", "cluster/drain.sh",
                               DrainParams(node_name="dev-worker-1", drain_timeout=300, detach_reserve=90))
    # Named to sort before any hex version, so the glob meets it first; its drain.sh marks
    # that it ran before anything else it does.
    newer = shutil.copytree(copy_dir(sb, library.version()), copy_dir(sb, "0" * library.VERSION_CHARS))
    drain = Path(newer, "cluster/drain.sh")
    drain.write_text(drain.read_text().replace("set -euo pipefail\n", "set -euo pipefail\n"
                                               "touch \"${KATAK8S_ROOT}/newer-ran\"\n", 1))
    with open(f"{newer}/lib/common.sh", "a") as f:
        f.write("# a newer library\n")
    assert sorted(Path(newer).parent.parent.iterdir())[0].name == "0" * library.VERSION_CHARS
    res = sb.run_command(phase.command_line(old, 1800))
    assert not sb.exists("newer-ran"), res
    assert "no copy of scripts/remote" not in res.stderr, res
    # The real drain.sh of that version ran: its own refusal on a node without admin.conf.
    assert "[katak8s membership-dev-worker-1-delete] ERROR no /etc/kubernetes/admin.conf" in res.stderr, res


def test_a_node_without_any_copy_is_told_how_to_fix_it(sb):
    shutil.rmtree(sb.path(f"{phase.DEFAULT_HOME}/scripts"))
    res = sb.run_command(phase.command_line(bundle(cfg_for(), "kernel"), 1800))
    assert res.rc == 1 and "no copy of scripts/remote" in res.stderr and ran_after_launch(res) == [], res


def test_scripts_remote_holds_only_shell():
    """Every file there reaches every node and its digest names the version (library.py):
    nothing else belongs there (a stray file would only make new copies)."""
    assert {p.suffix for p in phase.SCRIPTS_DIR.rglob("*") if p.is_file()} == {".sh"}


def test_every_file_a_script_sources_is_among_its_sums():
    """launch.sh checks only the files the program lists: a library a script sources without
    declaring it (`# katak8s-lib:`) could come from another version."""
    import re

    for path in sorted(phase.SCRIPTS_DIR.glob("*/*.sh")):
        script = path.relative_to(phase.SCRIPTS_DIR).as_posix()
        if script.startswith("lib/"):
            continue
        sourced = set(re.findall(r"\.\./(lib/[a-z-]+\.sh)", path.read_text()))
        assert sourced <= set(phase.files(script)), (script, sourced - set(phase.files(script)))


def test_the_program_is_kept_for_the_operator_and_runs_again_from_there(sb):
    """docs/troubleshooting.md: `sudo bash ~/.katak8s/<phase>.sh` re-runs a phase by hand."""
    program = bundle(cfg_for(), "preflight")
    home = sb.path(phase.DEFAULT_HOME)
    if os.geteuid() == 0:
        os.chown(home, 1000, 1000)  # the SSH user's directory, as on a node
    assert sb.run_command(phase.command_line(program, 1800)).ok
    saved = sb.path(f"{phase.DEFAULT_HOME}/preflight.sh")
    assert saved.read_text() == program + "\n"
    # Owned like ~/.katak8s (the SSH user's), not root's: older releases SFTP this very path.
    assert (saved.stat().st_uid, saved.stat().st_gid) == (home.stat().st_uid, home.stat().st_gid)
    before = sb.snapshot()
    assert sb.run_command(phase.command_line(program, 1800)).ok
    assert sb.snapshot() == before, "a re-run rewrote the kept program"
    by_hand = sb.run_command(f"sudo bash {saved}")
    assert by_hand.ok and sb.snapshot() == before, by_hand
