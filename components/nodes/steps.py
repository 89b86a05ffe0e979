"""Several phases of one node in one Command (issue #15: at most 6 SSH steps per worker).

render_steps puts each phase's whole program (phase.render_program) in an array, then
scripts/remote/steps.sh, which runs them in order, each in its own bash, and skips a phase
whose program is the one that last succeeded on the node (a sha256 stamp). So merging keeps
what one Command per phase gave:
- per-phase re-runs: the command re-runs when any phase's program changes, and on the
  node only the changed phases run; a run that failed half way resumes at the failed phase;
- previews that name the phase: `phase_triggers` are the command's triggers, one
  `<phase>:<sha256 of its program>` each, so a preview shows which phase changed (and the
  create text shows which parameter or script sum);
- `~/.katak8s/<phase>.sh` per phase for the operator (launch.sh keeps each program).
"""

from __future__ import annotations

import functools
import re
import shlex
from collections.abc import Sequence
from typing import Any

from components.config import PHASE_TIMEOUT_SECONDS
from components.nodes.phase import DEFAULT_HOME, SCRIPTS_DIR, render_program, sha256

RUNNER = "steps.sh"


@functools.lru_cache(maxsize=None)
def _runner() -> str:
    """scripts/remote/steps.sh without its comment lines (as phase.py embeds launch.sh)."""
    lines = (SCRIPTS_DIR / RUNNER).read_text().splitlines()
    return "".join(f"{line}\n" for line in lines if not line.lstrip().startswith("#"))


def programs(steps: Sequence[tuple[str, str, Any]], *, home: str = DEFAULT_HOME) -> list[tuple[str, str]]:
    """(phase, program) of each (phase, script, params), in order."""
    return [(name, render_program(name, script, params, home=home)) for name, script, params in steps]


def command_timeout(rendered: Sequence[tuple[str, str]], *, step_timeout: int = PHASE_TIMEOUT_SECONDS) -> int:
    """The outer bound of a command of several phases: each phase's own, added up, and a
    minute more, so that a phase's own bound fires first and names the phase (steps.sh)."""
    return step_timeout * len(rendered) + 60


def phase_triggers(rendered: Sequence[tuple[str, str]]) -> list[str]:
    return [f"{name}:{sha256(program)}" for name, program in rendered]


def render_steps(rendered: Sequence[tuple[str, str]], *, home: str = DEFAULT_HOME,
                 step_timeout: int = PHASE_TIMEOUT_SECONDS) -> str:
    """One program that runs `rendered` phases in order, skipping those already done; each
    phase gets `step_timeout` seconds (the command as a whole: command_timeout)."""
    names = " ".join(shlex.quote(name) for name, _ in rendered)
    return (
        "# katak8s phases " + ", ".join(name for name, _ in rendered) + ": each one below runs\n"
        "# unless its program is the one that last succeeded on this node (scripts/remote/steps.sh).\n"
        "set -euo pipefail\n"
        f"KATAK8S_HOME={shlex.quote(home)}\n"
        f"KATAK8S_STEPS=({names})\n"
        f"KATAK8S_STEP_TIMEOUT={step_timeout}\n"
        "KATAK8S_PROGRAMS=(\n"
        + "".join(f"{shlex.quote(program)}\n" for _, program in rendered)
        + ")\n"
        f"# --- scripts/remote/{RUNNER} ---\n"
        + _runner()
    )


def parse(program: str | None) -> list[tuple[str, str]] | None:
    """render_steps backwards: (phase, program) of each phase, or None for a program of one
    phase (the plan and review tools, and the tests)."""
    m = re.search(r"^KATAK8S_STEPS=\((.*)\)$", program or "", re.M)
    if not m or program is None:
        return None
    section = program.split("KATAK8S_PROGRAMS=(\n", 1)[1].rsplit("\n)\n# --- scripts/", 1)[0]
    return list(zip(shlex.split(m.group(1)), shlex.split(section), strict=True))
