"""One node phase = one CopyToRemote of a self-contained bundle + one remote.Command.

The bundle is the exact text that runs on the node: the rendered parameters, then
scripts/remote/lib/common.sh, then the phase script, each copied verbatim from the real files.
The phase script sources its library and parameter file through KATAK8S_LIB and
KATAK8S_PARAMS, which the bundle points at /dev/null because both are already inlined;
run from a checkout, the same script sources the real files. Shell is never assembled
from Python strings: the only generated lines are `KEY='value'` assignments.

The command's trigger is the bundle's sha256, so a phase re-runs when its script, its
library or its parameters change. It also re-runs, as an update that runs `create` again
(pulumi-command commandController.go Update), when anything else it is given changes: its
SSH connection (a new key or jump host), its stdin, or its delete script. Every script is
guarded and idempotent for that reason (review-pulumi F13).
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
def _body(rel_path: str) -> str:
    """A script's text without its shebang (the bundle has its own)."""
    text = (SCRIPTS_DIR / rel_path).read_text()
    return text.split("\n", 1)[1] if text.startswith("#!") else text


@functools.lru_cache(maxsize=None)
def extra_libs(script: str) -> tuple[str, ...]:
    """Libraries a script declares with `# katak8s-lib: lib/<name>.sh` lines, inlined after
    the common library (the script sources them itself unless KATAK8S_BUNDLED is set)."""
    text = (SCRIPTS_DIR / script).read_text()
    return tuple(m.group(1) for m in re.finditer(r"^# katak8s-lib: (\S+)$", text, re.M))


@functools.lru_cache(maxsize=None)
def standalone(script: str) -> bool:
    """A script marked `katak8s-standalone` sources no library: its bundle changes only
    with the script itself (scripts/remote/cluster/kubeconfig.sh says why)."""
    return "katak8s-standalone" in (SCRIPTS_DIR / script).read_text()


def render_bundle(phase: str, script: str, params: Any) -> str:
    """The exact file a node runs for `phase`: parameters + libraries + script."""
    libs = () if standalone(script) else (LIB, *extra_libs(script))
    return (
        "#!/usr/bin/env bash\n"
        f"# katak8s phase {phase}: generated from scripts/remote/{script}"
        + "".join(f" and scripts/remote/{lib}" for lib in libs[:1])
        + "".join(f", scripts/remote/{lib}" for lib in libs[1:])
        + ".\n"
        "# Do not edit on the node: the next `pulumi up` replaces it.\n"
        "set -euo pipefail\n"
        "# --- parameters ---\n"
        f"KATAK8S_PHASE={shlex.quote(phase)}\n"
        "KATAK8S_LIB=/dev/null\n"
        "KATAK8S_PARAMS=/dev/null\n"
        + ("KATAK8S_BUNDLED=1\n" if len(libs) > 1 else "")
        + render_env(params)
        + "".join(f"# --- scripts/remote/{lib} ---\n" + _body(lib) for lib in libs)
        + f"# --- scripts/remote/{script} ---\n"
        + _body(script)
    )


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Phase:
    copy: command.remote.CopyToRemote
    command: command.remote.Command
    bundle: str


def run_phase(
    parent: pulumi.Resource,
    target: NodeTarget,
    *,
    phase: str,
    script: str,
    params: Any,
    depends_on: Sequence[pulumi.Resource] = (),
    stdin: pulumi.Input[str] | None = None,
    secret_stdout: bool = False,
    delete_script: str | None = None,
    delete_params: Any = None,
    deleted_with: pulumi.Resource | None = None,
    triggers: Sequence[Any] | None = None,
    timeout: int = PHASE_TIMEOUT_SECONDS,
) -> Phase:
    """Declare one phase of `target` as children of `parent`.

    `stdin` carries secrets (join tokens) so they never reach a command line; commands
    that receive or print secrets run with logging off and a secret stdout.
    `delete_script` (a script under scripts/, rendered like the phase) runs when the
    command is deleted. `deleted_with` names the resource whose deletion makes that
    delete pointless: pass the first control plane's server for scale-in paths, so that
    removing a worker drains and resets it while destroying the whole stack skips every
    drain instead of hanging on a cluster that is going away.
    `triggers`, when given, replace the bundle digest as what REPLACES the command
    (pass the node's identity, e.g. its server id). A content change then re-runs the
    create in place (an update: the digest rides in the create text as a comment)
    instead of replacing the command, so it never runs the delete. Commands whose
    delete is destructive (kubeadm reset, drain) need this: with the digest as the
    trigger, any edit of scripts/remote/lib/common.sh would reset and drain every node.
    `timeout` bounds the whole create (PHASE_TIMEOUT_SECONDS unless a phase needs more).
    """
    bundle = render_bundle(phase, script, params)
    digest = sha256(bundle)
    base = f"{target.name}-{phase}"
    remote_path = f"{target.remote_dir}/{phase}.sh"
    child = pulumi.ResourceOptions(parent=parent)
    copy = command.remote.CopyToRemote(
        f"{base}-copy",
        connection=target.connection,
        source=pulumi.StringAsset(bundle),
        remote_path=remote_path,
        opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(replace_with=[target.server])),
    )
    sensitive = secret_stdout or stdin is not None
    delete = None
    if delete_script is not None:
        delete_bundle = render_bundle(f"{phase}-delete", delete_script, delete_params)
        # The delete bundle travels inside the command text because a delete runs with
        # what the state saved, after the copy may already be gone; it holds no secret.
        delete = f"sudo -n timeout {PHASE_TIMEOUT_SECONDS} bash -c {shlex.quote(delete_bundle)}"
    # Quoted although sshUser is validated (a login name): defence in depth, and a no-op
    # for every valid name, so existing commands keep their text.
    create = f"sudo -n timeout {timeout} bash {shlex.quote(remote_path)}"
    if triggers is not None:
        create += f"  # bundle sha256 {digest}"
    cmd = command.remote.Command(
        f"{base}",
        connection=target.connection,
        create=create,
        delete=delete,
        stdin=stdin,
        triggers=list(triggers) if triggers is not None else [digest],
        logging=command.remote.Logging.NONE if sensitive else None,
        add_previous_output_in_env=False,
        opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(
            depends_on=[copy, *depends_on],
            # A new server gets every phase again. Phases whose delete undoes something
            # (drain, reset, delete the Node) must NOT name it in replace_with: the engine
            # deletes that cascade FIRST, before the dependents it orders (pulumi/pulumi
            # step_generator.go continueStepsFromDiff, `toReplace = append(toReplace,
            # replacedWith...)` then the reverse loop), which reset a node before draining
            # it (review-pulumi F3). Their `triggers=[server id]` replaces them instead, in
            # reverse dependency order: drain, reset, delete the Node (tests/engine_model.py E4/E5).
            replace_with=[target.server] if delete_script is None else None,
            deleted_with=deleted_with or target.server,
            delete_before_replace=delete_script is not None,
            additional_secret_outputs=["stdout", "stderr"] if sensitive else None,
        )),
    )
    return Phase(copy=copy, command=cmd, bundle=bundle)
