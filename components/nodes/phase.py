"""One node phase = one remote.Command that runs a script from the node's copy of scripts/remote.

Each node gets the node-side scripts once: one CopyToRemote of scripts/remote (a FileArchive,
which the state records as a path and a hash, not the text) to
`~/.katak8s/scripts/<digest>/remote/`, one directory per version, never overwritten
(components/nodes/library.py). A phase's command then carries a short program: its
parameters as `KEY='value'` lines, the sha256 of every file it runs (`KATAK8S_FILES`), and
scripts/remote/launch.sh, which finds the copy whose files match those sums and sources the
phase script from it. So the state holds each phase's parameters and digests, not its
~30 KB of shell; a preview shows the parameter or the digest that changed, naming the script
(the CLI prints a line diff of a multi-line string: pulumi/pulumi pkg/backend/display/
object_diff.go printTextDiff);
and a command's delete, which runs with what the state saved, finds the exact files it was
created with, because old copies stay. Shell is never assembled from Python strings: the
only generated lines are `KEY='value'` assignments.

A phase without a delete script is replaced when its program changes (`triggers`), so it
re-runs when its script, its libraries or its parameters change. Every command also re-runs,
as an update that runs `create` again (pulumi-command commandController.go Update), when
anything else it is given changes: its SSH connection (a new key or jump host), its stdin,
or its delete script. Every script is guarded and idempotent for that reason (review-pulumi F13).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_command as command

# PHASE_TIMEOUT_SECONDS: the outer safety net of one phase, defined beside the config
# limits it bounds (drainTimeoutSeconds); every wait inside a script is bounded more tightly.
from components.config import PHASE_TIMEOUT_SECONDS
from components.openstack.target import NodeTarget

SCRIPTS_DIR = Path(__file__).resolve().parents[2] / "scripts" / "remote"
LIB = "lib/common.sh"
LAUNCHER = "launch.sh"
# Where a program looks for the scripts when no node is given (the default sshUser, ubuntu):
# tests and the plan render with it; every real command gets its node's NodeTarget.remote_dir.
DEFAULT_HOME = "/home/ubuntu/.katak8s"
_ENV_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")


def _shell_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return shlex.quote(value)
    if isinstance(value, (list, tuple)):
        return "(" + " ".join(shlex.quote(str(x)) for x in value) + ")"
    raise TypeError(f"unsupported parameter type {type(value).__name__}: {value!r}")


def render_env(params: Any) -> str:
    """A frozen dataclass of parameters -> `KEY='value'` lines (sequences become arrays).

    Field `kata_version` becomes `KATA_VERSION`. Every value is shell-quoted.
    """
    if not dataclasses.is_dataclass(params):
        raise TypeError("phase parameters must be a dataclass instance")
    lines = []
    for field in dataclasses.fields(params):
        name = field.name.upper()
        if not _ENV_NAME.match(name):
            raise ValueError(f"parameter name {field.name!r} is not a shell variable name")
        lines.append(f"{name}={_shell_value(getattr(params, field.name))}")
    return "\n".join(lines) + "\n"


@functools.lru_cache(maxsize=None)
def file_sha256(rel_path: str) -> str:
    """sha256 of a file under scripts/remote, as `sha256sum` prints it."""
    return hashlib.sha256((SCRIPTS_DIR / rel_path).read_bytes()).hexdigest()


@functools.lru_cache(maxsize=None)
def _body(rel_path: str) -> str:
    """A script's text without its shebang (the program has its own context)."""
    text = (SCRIPTS_DIR / rel_path).read_text()
    return text.split("\n", 1)[1] if text.startswith("#!") else text


@functools.lru_cache(maxsize=None)
def _launcher() -> str:
    """scripts/remote/launch.sh without its comment lines: the tail of every program, so
    every command in the state carries its ~600 bytes of code, not the file's explanations."""
    lines = (SCRIPTS_DIR / LAUNCHER).read_text().splitlines()
    return "".join(f"{line}\n" for line in lines if not line.lstrip().startswith("#"))


@functools.lru_cache(maxsize=None)
def extra_libs(script: str) -> tuple[str, ...]:
    """Libraries a script declares with `# katak8s-lib: lib/<name>.sh` lines: it sources them
    from beside itself, and its program carries their sums (launch.sh checks them)."""
    text = (SCRIPTS_DIR / script).read_text()
    return tuple(m.group(1) for m in re.finditer(r"^# katak8s-lib: (\S+)$", text, re.M))


@functools.lru_cache(maxsize=None)
def standalone(script: str) -> bool:
    """A script marked `katak8s-standalone` sources no library: its program changes only
    with the script itself (scripts/remote/cluster/kubeconfig.sh says why)."""
    return "katak8s-standalone" in (SCRIPTS_DIR / script).read_text()


def files(script: str) -> tuple[str, ...]:
    """Every file under scripts/remote that `script` runs: the common library, the libraries
    it declares (`# katak8s-lib:`), then the script itself."""
    libs = () if standalone(script) else (LIB, *extra_libs(script))
    return (*libs, script)


def render_program(phase: str, script: str, params: Any, *, home: str = DEFAULT_HOME) -> str:
    """The program a node runs for `phase` (under `bash -c`): the parameters, the sha256 of
    every file it runs, and scripts/remote/launch.sh, which sources `script` from the copy of
    scripts/remote under `home` whose files match. No shell is generated here: only
    `KEY='value'` lines. A standalone script (kubeconfig.sh) travels whole instead, so its
    program changes with nothing but itself: not with the library, nor with launch.sh."""
    if standalone(script):
        return (f"# katak8s phase {phase}: scripts/remote/{script}, whole (it sources nothing).\n"
                "set -euo pipefail\n"
                f"KATAK8S_PHASE={shlex.quote(phase)}\n"
                "KATAK8S_PARAMS=/dev/null\n"
                "# --- parameters ---\n"
                + render_env(params)
                + f"# --- scripts/remote/{script} ---\n"
                + _body(script))
    needed = files(script)
    sums = " ".join(shlex.quote(f"{file_sha256(f)}  {f}") for f in needed)
    return (
        f"# katak8s phase {phase}: runs scripts/remote/{script}"
        + (" with " + ", ".join(f"scripts/remote/{f}" for f in needed[:-1]) if len(needed) > 1 else "")
        + ",\n# from this node's copy of scripts/remote whose files have these sha256 sums.\n"
        "set -euo pipefail\n"
        f"KATAK8S_PHASE={shlex.quote(phase)}\n"
        f"KATAK8S_HOME={shlex.quote(home)}\n"
        f"KATAK8S_SCRIPT={shlex.quote(script)}\n"
        f"KATAK8S_FILES=({sums})\n"
        "# --- parameters ---\n"
        + render_env(params)
        + f"# --- scripts/remote/{LAUNCHER} ---\n"
        + _launcher()
    )


def command_line(program: str, timeout: int) -> str:
    """The remote command that runs `program` as root, bounded by `timeout` seconds."""
    return f"sudo -n timeout {timeout} bash -c {shlex.quote(program)}"


def program_of(command_text: str | None) -> str | None:
    """The program inside a command line built by `command_line` (plan and review tools)."""
    if not command_text:
        return None
    words = shlex.split(command_text)
    return words[-1] if len(words) >= 2 and words[-2] == "-c" else None


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Phase:
    command: command.remote.Command
    program: str  # what `create` runs under `bash -c` (render_program)


def run_phase(
    parent: pulumi.Resource,
    target: NodeTarget,
    scripts: pulumi.Resource,
    *,
    phase: str,
    script: str | None = None,
    params: Any = None,
    program: str | None = None,
    depends_on: Sequence[pulumi.Resource] = (),
    stdin: pulumi.Input[str] | None = None,
    secret_stdout: bool = False,
    delete_script: str | None = None,
    delete_params: Any = None,
    deleted_with: pulumi.Resource | None = None,
    triggers: Sequence[Any] | None = None,
    timeout: int = PHASE_TIMEOUT_SECONDS,
    delete_on_destroy: bool = False,
) -> Phase:
    """Declare one phase of `target` as a child of `parent`; `scripts` is the target's copy
    of scripts/remote (components/nodes/library.py), which the command waits for.

    `stdin` carries secrets (join tokens) so they never reach a command line; commands
    that receive or print secrets run with logging off and a secret stdout.
    `delete_script` (a script under scripts/remote, rendered like the phase) runs when the
    command is deleted. `deleted_with` names the resource whose deletion makes that
    delete pointless: pass the first control plane's server for scale-in paths, so that
    removing a worker drains and resets it while destroying the whole stack skips every
    drain instead of hanging on a cluster that is going away.
    `triggers`, when given, replace the program's digest as what REPLACES the command
    (pass the node's identity, e.g. its server id). A content change then re-runs the
    create in place (an update: the digests ride in the create text) instead of replacing
    the command, so it never runs the delete. Commands whose delete is destructive (kubeadm
    reset, drain) need this: with the digest as the trigger, any edit of
    scripts/remote/lib/common.sh would reset and drain every node.
    `timeout` bounds the whole create (PHASE_TIMEOUT_SECONDS unless a phase needs more).
    `delete_on_destroy`: no `deleted_with` at all, so `pulumi destroy` runs the delete too
    (a delete whose deleted_with target goes in the same operation runs nothing: pulumi/pulumi
    step.go DeleteStep.Apply, isDeletedWith); for cleanups that must precede the cluster's end.
    `program`, instead of `script` and `params`, is a program rendered already (several
    phases in one command: components/nodes/steps.py).
    """
    if program is None:
        if script is None:
            raise ValueError(f"phase {phase} needs a script or a program")
        program = render_program(phase, script, params, home=target.remote_dir)
    sensitive = secret_stdout or stdin is not None
    delete = None
    if delete_script is not None:
        # A delete runs with what the state saved: its program names the files by their
        # sums, and the node keeps every copy of the scripts (library.py). No secret in it.
        delete = command_line(render_program(f"{phase}-delete", delete_script, delete_params,
                                             home=target.remote_dir), PHASE_TIMEOUT_SECONDS)
    cmd = command.remote.Command(
        f"{target.name}-{phase}",
        connection=target.connection,
        create=command_line(program, timeout),
        delete=delete,
        stdin=stdin,
        triggers=list(triggers) if triggers is not None else [sha256(program)],
        logging=command.remote.Logging.NONE if sensitive else None,
        add_previous_output_in_env=False,
        opts=pulumi.ResourceOptions(
            parent=parent,
            depends_on=[scripts, *depends_on],
            # A new server gets every phase again. Phases whose delete undoes something
            # (drain, reset, delete the Node) must NOT name it in replace_with: the engine
            # deletes that cascade FIRST, before the dependents it orders (pulumi/pulumi
            # step_generator.go continueStepsFromDiff, `toReplace = append(toReplace,
            # replacedWith...)` then the reverse loop), which reset a node before draining
            # it (review-pulumi F3). Their `triggers=[server id]` replaces them instead, in
            # reverse dependency order: drain, reset, delete the Node (tests/engine_model.py E4/E5).
            replace_with=[target.server] if delete_script is None else None,
            deleted_with=None if delete_on_destroy else deleted_with or target.server,
            delete_before_replace=delete_script is not None,
            additional_secret_outputs=["stdout", "stderr"] if sensitive else None,
        ),
    )
    return Phase(command=cmd, program=program)
