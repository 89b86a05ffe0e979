"""What the last `pulumi up` deployed, read at preview, to refuse changes a live cluster can't take.

    deployed = DeployedState(cfg)                  # reads this stack's own outputs
    gate = deployed.gate(cfg, ssh_public_key=...)  # Output that fails with ConfigError on a refusal

Some changes can be judged only against the deployed state: moving between 1 and 3/5
control planes (the API endpoint would move, review-pulumi F20) and a new SSH key (the
servers only accept the key they booted with, F6). The program reads the stack's own last
outputs through a StackReference: the engine's builtin provider answers it from the
backend at preview and at up, with no plugin (pulumi/pulumi pkg/resource/deploy/builtins.go
readStackReference -> backendClient.GetStackOutputs). Outputs change only when an update
finishes, so during an `up` they still describe the previous one. A fresh stack has none.

The gate is an input of the first resources (the key pair, the network, the server groups),
so on a refusal `pulumi preview` fails with the message, and `pulumi up --skip-preview`
registers nothing that depends on them. Chosen over a dynamic provider, whose pickled
class must be importable from the provider process (pulumi/pulumi#7453, open).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import pulumi
from pulumi.output import Unknown

from components.config import NAMESPACE, ClusterConfig, ConfigError

# The outputs the checks read (components/outputs.py exports them).
CONTROL_PLANES = "controlPlanePrivateIps"
SSH_PUBLIC_KEY = "sshPublicKey"


def _key(line: str) -> str:
    """An OpenSSH public key without its comment: `type base64`."""
    return " ".join(line.split()[:2])


def _ha(count: int) -> bool:
    return count > 1


def refusals(previous: Mapping[str, Any], cfg: ClusterConfig, *, ssh_public_key: str | None) -> list[str]:
    """Every change from `previous` (the stack's last outputs) that a live cluster can't take.

    Pure. `ssh_public_key` None means the new key is not known yet: on a deployed stack that
    happens only when a new key is being generated (the configured key was removed)."""
    problems = []
    ips = previous.get(CONTROL_PLANES)
    if isinstance(ips, list) and ips and _ha(len(ips)) != _ha(cfg.control_plane_count):
        problems.append(
            f"{NAMESPACE}:controlPlaneCount: cannot move between 1 and 3 or 5 control planes on a deployed "
            f"cluster (the Kubernetes API endpoint would move and kubeadm cannot change it); the cluster "
            f"has {len(ips)}, got {cfg.control_plane_count}. Set it back to "
            f"{'1' if len(ips) == 1 else '3 or 5'}, or build a new stack for the other layout")
    old_key = previous.get(SSH_PUBLIC_KEY)
    if isinstance(old_key, str) and old_key.strip():
        new_key = _key(ssh_public_key or "")
        accepted = bool(new_key) and new_key == _key(cfg.accept_ssh_public_key)
        if new_key != _key(old_key) and not accepted:
            problems.append(
                f"{NAMESPACE}:sshPrivateKey: the nodes accept only the key they were built with "
                f"({' '.join(old_key.split()[:2])[:40]}...), and this change would make every SSH step use "
                "another one. Set the previous key back; to rotate it, put the new public key on every node "
                f"first and set {NAMESPACE}:acceptSshPublicKey to it (docs/operations.md 'Rotating the SSH key')")
    return problems


class DeployedState:
    """The stack's own outputs from its last successful `pulumi up` (empty on a fresh stack)."""

    def __init__(self, cfg: ClusterConfig):
        org = pulumi.get_organization() or "organization"
        name = f"{org}/{pulumi.get_project()}/{pulumi.get_stack()}"
        self._ref = pulumi.StackReference(f"{cfg.cluster_name}-deployed", stack_name=name)

    def gate(self, cfg: ClusterConfig, *, ssh_public_key: pulumi.Input[str]) -> pulumi.Output[bool]:
        """True once every check passed; fails the program with ConfigError otherwise.

        Awaited with unknowns, not through apply(): in preview an apply never runs on an
        unknown value, and a key being generated on a deployed stack is exactly that."""

        async def value(out: pulumi.Input[Any]) -> Any:
            got = await pulumi.Output.from_input(out).future(with_unknowns=True)
            return None if isinstance(got, Unknown) else got

        async def check() -> bool:
            previous = {CONTROL_PLANES: await value(self._ref.get_output(CONTROL_PLANES)),
                        SSH_PUBLIC_KEY: await value(self._ref.get_output(SSH_PUBLIC_KEY))}
            problems = refusals(previous, cfg, ssh_public_key=await value(ssh_public_key))
            if problems:
                raise ConfigError(problems)
            return True

        task = asyncio.ensure_future(check())
        # Every gated input awaits it and reports the failure; mark it retrieved here so
        # asyncio does not print it a second time when the task is collected.
        task.add_done_callback(lambda t: t.cancelled() or t.exception())
        return pulumi.Output.from_input(task)


def gated(gate: pulumi.Input[Any], value: pulumi.Input[str]) -> pulumi.Output[str]:
    """`value`, once the gate passed: an input that keeps its resource from registering
    until the deployed-state checks are done, and forever when they fail."""
    return pulumi.Output.all(gate, value).apply(lambda a: a[1])
