"""The SSH jump host: where every SSH step of `pulumi up` enters the cluster.

class JumpHost(pulumi.ComponentResource), token katak8s:nodes:JumpHost
    JumpHost(name, cfg, *, kind, network, access, image_id, opts=None)
    .kind: "dedicated" | "first-control-plane"
    .proxy: ProxyConnectionArgs | None      None: the first control plane relays (NodePool)
    .address: Output[str] | None            its floating IP (dedicated only)
    .server / .port / .host_key / .floating_ip

The CLI runs up to P steps at once and pulumi-command never closes a step's SSH client,
nor the proxy client through a jump host (commandOutputs.go run, connection.go Dial): one
`up` leaves a session open on the jump host for every step (benchmarks/schedule.py counts
them: 846 at 3+50). On the first control plane they compete with etcd and the API server
for memory and processes; so the dedicated jump host is a small VM of its own, no cluster
member (no kubelet, no phase runs on it), with its own security group and a pinned host
key like every node, and sshd sized for the parallelism (SSHD_CONFIG).

It matters only to `pulumi up`: the cluster never uses it. Every SSH step's connection
names it, so the engine creates it before any step and deletes it after the last
(reverse dependency order). Stacks deployed before it keep the first control plane as
jump host unless `jumpHost` says otherwise (components/deployed.py).
"""

from __future__ import annotations

import pulumi
import pulumi_command as command
import pulumi_openstack as openstack
import pulumi_tls as tls

from components import naming
from components.config import ClusterConfig
from components.openstack import cloudinit, firewall
from components.openstack.access import SshAccess
from components.openstack.network import ClusterNetwork
from components.openstack.target import after

DEDICATED, FIRST_CONTROL_PLANE = "dedicated", "first-control-plane"
# sshd_config(5). MaxStartups: concurrent unauthenticated connections before sshd drops
# new ones (default 10:30:100); the CLI opens up to P (64 recommended, README "Benchmark")
# at once, each retried on failure, so 128 start refusing 30 % only beyond twice that.
# MaxSessions: sessions per connection (one per step). ClientAlive*: a Pulumi run that
# died leaves no session for more than 2 min. Only settings of OpenSSH 9.6 (Ubuntu 24.04).
SSHD_CONFIG = (
    "# katak8s jump host: sized for `pulumi up --parallel 64` (components/openstack/jumphost.py)\n"
    "MaxStartups 128:30:256\n"
    "MaxSessions 16\n"
    "ClientAliveInterval 30\n"
    "ClientAliveCountMax 4\n"
    "PasswordAuthentication no\n"
    "AllowTcpForwarding yes\n"
)


# OpenSSH 9.8+ (Ubuntu 26.04) penalises a source address whose connections fail
# authentication or exceed the login grace time (PerSourcePenalties, on by default); every
# step comes from the one address of the Pulumi runner, and a dial cut at its 20 s timeout
# counts, so a busy `up` could lock itself out for up to 10 min. 9.6 (24.04) does not know
# the keyword and would refuse the whole file, so it is written only where sshd accepts it
# (`sshd -G` parses without host keys). Key-only logins from allowedCidrs stay the guard.
SSHD_BOOTCMD = (
    "if sshd -G -o PerSourcePenalties=no >/dev/null 2>&1; then "
    "echo 'PerSourcePenalties no' > /etc/ssh/sshd_config.d/09-katak8s-penalties.conf; fi",
)


class JumpHost(pulumi.ComponentResource):
    def __init__(self, name: str, cfg: ClusterConfig, *, kind: str, network: ClusterNetwork,
                 access: SshAccess, image_id: pulumi.Input[str], dial: dict,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__(naming.type_token("nodes", "JumpHost"), name, None, opts)
        self.kind = kind
        self.proxy: command.remote.ProxyConnectionArgs | None = None
        self.address: pulumi.Output[str] | None = None
        if kind != DEDICATED:
            self.register_outputs({"kind": kind})  # the first control plane relays (NodePool)
            return
        child = pulumi.ResourceOptions(parent=self)
        host = f"{cfg.cluster_name}-{firewall.JUMP_HOST}"
        tags = [naming.cluster_tag(cfg.cluster_name)]
        self.port = openstack.networking.Port(
            f"{host}-port", name=host, network_id=network.network_id,
            fixed_ips=[{"subnet_id": network.subnet_id}], security_group_ids=[network.jump_host_group_id],
            admin_state_up=True, tags=tags, opts=child)
        self.host_key = tls.PrivateKey(f"{host}-host-key", algorithm="ED25519", opts=child)
        public = self.host_key.public_key_openssh
        user_data = pulumi.Output.secret(pulumi.Output.all(self.host_key.private_key_openssh, public).apply(
            lambda keys: cloudinit.render(cloudinit.UserData(
                hostname=host, host_private_key=keys[0], host_public_key=keys[1], sshd_config=SSHD_CONFIG,
                bootcmd=SSHD_BOOTCMD))))
        boot_volume = cfg.boot_volume_size > 0  # as the nodes: some clouds' flavors have no root disk
        self.server = openstack.compute.Instance(
            host, name=host, flavor_name=cfg.jump_host_flavor, image_id=None if boot_volume else image_id,
            block_devices=[{
                "uuid": image_id, "source_type": "image", "destination_type": "volume",
                "volume_size": cfg.boot_volume_size, "boot_index": 0, "delete_on_termination": True,
            }] if boot_volume else None,
            key_pair=access.keypair_name, networks=[{"port": self.port.id}],
            metadata=naming.cluster_metadata(cfg.cluster_name), tags=tags, user_data=user_data,
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(
                depends_on=[access.keypair, network.router_interface],
                # As the nodes (components/openstack/nodes.py FROZEN_INPUTS): a new image or
                # flavor applies when it is replaced (`pulumi up --replace`), never in place.
                ignore_changes=["imageId", "blockDevices", "flavorName", "userData"],
                delete_before_replace=True)))
        self.floating_ip = openstack.networking.FloatingIp(
            f"{host}-fip", pool=cfg.external_network, port_id=self.port.id,
            description=f"katak8s {cfg.cluster_name}: SSH jump host", tags=tags,
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[network.router_interface])))
        self.address = after(self.server, self.floating_ip.address)
        self.proxy = command.remote.ProxyConnectionArgs(host=self.address, host_key=public, **dial)
        self.register_outputs({"kind": kind, "address": self.address})
