"""How the node stages reach one server: its name, role, SSH connection and address.

Built by the OpenStack stage (components/openstack/nodes.py NodePool) for every server; the
node stages (components/nodes/, components/cluster/) only read it, so data flows one way.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_command as command


@dataclass(frozen=True, kw_only=True)
class NodeTarget:
    """Everything a phase needs to reach one node over SSH."""

    name: str  # server name == hostname == Kubernetes node name
    role: str  # naming.CONTROL_PLANE | naming.WORKER
    index: int
    flavor: str
    ssh_user: str
    connection: pulumi.Input[command.remote.ConnectionArgs]
    private_ip: pulumi.Output[str]
    server: pulumi.Resource  # phases are replaced with it and skip deletes when it goes

    @property
    def remote_dir(self) -> str:
        home = "/root" if self.ssh_user == "root" else f"/home/{self.ssh_user}"
        return f"{home}/.katak8s"


def after(resource: pulumi.Resource, value: pulumi.Input[str]) -> pulumi.Output[str]:
    """`value`, but only once `resource` exists: a connection built from it makes every
    command wait for the server, not just for its port or floating IP."""
    return pulumi.Output.all(resource.id, value).apply(lambda xs: xs[1])
