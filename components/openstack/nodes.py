"""Servers: one port, one pinned host key and one server per node, and how to reach each over SSH.

class NodePool(pulumi.ComponentResource), token katak8s:nodes:NodePool
    NodePool(name, cfg, *, network, access, jump_host="dedicated", opts=None)
    .control_planes: list[phase.NodeTarget]   index order; [0] is the kubeadm init node
    .workers: list[phase.NodeTarget]
    .jump: JumpHost                           where SSH enters (components/openstack/jumphost.py)
    .jump_host: Output[str]                   its floating IP: the dedicated VM's, or cp-0's
    .api_host: Output[str] | None             cp-0's floating IP (the API of a single control plane)
    .ports / .servers / .host_keys / .floating_ips: dicts keyed by node name
    .host_public_keys: dict[str, Output[str]] the pinned `ssh-ed25519 ...` of each node
    .server_groups: dict[role, ServerGroup];  .image_id: Output[str]

Each node's resources depend only on its own index and on shared resources (network,
groups, key pair, the jump host), so adding a worker leaves every existing input as it was.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import pulumi
import pulumi_command as command
import pulumi_openstack as openstack
import pulumi_tls as tls

from components import naming
from components.config import ClusterConfig
from components.openstack import cloudinit
from components.openstack.access import SshAccess
from components.openstack.jumphost import DEDICATED, JumpHost
from components.openstack.network import ClusterNetwork
from components.openstack.target import NodeTarget, after

# Dialling a fresh VM (pulumi-command retries dialling only, waiting 100 ms x 1.5^n
# between attempts, capped at 5 s; pulumi-sdk.md §2.2). Phases dial once the server is
# ACTIVE; the guest then still boots and cloud-init writes the pinned host key before
# sshd answers. While the guest's network is not up (or the floating IP's NAT is not
# programmed yet) packets are dropped, so an attempt lasts PER_DIAL_TIMEOUT + backoff
# (~25 s): 60 attempts cover ~25 min of slow boot on a busy nested-virt host. Once the
# guest answers but sshd is not listening yet, attempts are refused at once and cost
# only the backoff: 60 attempts still wait ~4.5 min, far longer than that gap. 20 s per
# dial (default 15) leaves a CPU-starved booting guest time for the TCP and SSH
# handshakes, and retransmits a lost SYN several times within one attempt.
DIAL_ERROR_LIMIT = 60
# Server inputs that change only for new (or explicitly replaced) servers.
FROZEN_INPUTS = ("imageId", "blockDevices", "flavorName", "userData")
PER_DIAL_TIMEOUT = 20
# Spread each role over hypervisors when the cloud can, but still schedule when it can't
# (a hard anti-affinity group fails the boot of node N+1 on a cloud with N hosts).
SERVER_GROUP_POLICY = "soft-anti-affinity"
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)
# Nova's CPU-feature traits for nested virtualization (nova/virt/libvirt/utils.py).
NESTED_VIRT_TRAITS = ("HW_CPU_X86_VMX", "HW_CPU_X86_INTEL_VMX", "HW_CPU_X86_SVM", "HW_CPU_X86_AMD_SVM")
_HINT = re.compile(r"(^|[^a-z])(vmx|svm|nested|host-passthrough|host-model)([^a-z]|$)")


def nested_virt_hints(extra_specs: Mapping[str, str] | None) -> list[str]:
    """Extra specs of a flavor that suggest nested virtualization (empty: no hint).

    `trait:HW_CPU_X86_VMX=required` (or an SVM/INTEL/AMD variant) is the real signal;
    any other key or value naming vmx/svm/nesting or a host CPU mode counts as a hint.
    A trait set to `forbidden` is the opposite of a hint.
    """
    hints = []
    for key, value in sorted((extra_specs or {}).items()):
        if key.startswith("trait:") and key[len("trait:"):] in NESTED_VIRT_TRAITS:
            if str(value).lower() == "required":
                hints.append(f"{key}={value}")
        elif _HINT.search(f"{key}={value}".lower()):
            hints.append(f"{key}={value}")
    return hints


class NodePool(pulumi.ComponentResource):
    def __init__(self, name: str, cfg: ClusterConfig, *, network: ClusterNetwork, access: SshAccess,
                 jump_host: str = DEDICATED, opts: pulumi.ResourceOptions | None = None):
        super().__init__(naming.type_token("nodes", "NodePool"), name, None, opts)
        self._cfg, self._network, self._access = cfg, network, access
        self._tags = [naming.cluster_tag(cfg.cluster_name)]
        self._flavors = {naming.CONTROL_PLANE: cfg.control_plane_flavor, naming.WORKER: cfg.worker_flavor}
        self.flavor_checks = {f: self._check_flavor(f) for f in sorted(set(self._flavors.values()))}

        # An image ID pins the image; a name resolves to the newest image of that name.
        self.image_id: pulumi.Output[str] = (
            pulumi.Output.from_input(cfg.image) if _UUID.match(cfg.image) else
            openstack.images.get_image_output(name=cfg.image, most_recent=True,
                                              opts=pulumi.InvokeOutputOptions(parent=self)).id)
        self.server_groups = {
            role: openstack.compute.ServerGroup(
                f"{name}-{role}", name=f"{cfg.cluster_name}-{role}", policies=SERVER_GROUP_POLICY,
                opts=pulumi.ResourceOptions(parent=self))
            for role in (naming.CONTROL_PLANE, naming.WORKER)
        }
        self.ports: dict[str, openstack.networking.Port] = {}
        self.servers: dict[str, openstack.compute.Instance] = {}
        self.host_keys: dict[str, tls.PrivateKey] = {}
        self.host_public_keys: dict[str, pulumi.Output[str]] = {}
        self.floating_ips: dict[str, openstack.networking.FloatingIp] = {}
        self._dial = {"user": cfg.ssh_user, "private_key": access.private_key,
                      "dial_error_limit": DIAL_ERROR_LIMIT, "per_dial_timeout": PER_DIAL_TIMEOUT}
        self.jump = JumpHost(f"{name}-jump-host", cfg, kind=jump_host, network=network, access=access,
                             image_id=self.image_id, dial=self._dial, opts=pulumi.ResourceOptions(parent=self))
        self._dedicated = self.jump.proxy is not None
        self._proxy: command.remote.ProxyConnectionArgs | None = self.jump.proxy

        self.control_planes = [self._node(naming.CONTROL_PLANE, i) for i in range(cfg.control_plane_count)]
        self.workers = [self._node(naming.WORKER, i) for i in range(cfg.worker_count)]
        first = naming.node_name(cfg.cluster_name, naming.CONTROL_PLANE, 0)
        self.api_host: pulumi.Output[str] | None = (
            after(self.servers[first], self.floating_ips[first].address) if first in self.floating_ips else None)
        self.jump_host: pulumi.Output[str] = self.jump.address if self._dedicated else self.api_host
        self.register_outputs({
            "jump_host": self.jump_host,
            "control_plane_private_ips": [t.private_ip for t in self.control_planes],
            "worker_private_ips": [t.private_ip for t in self.workers],
        })

    def _check_flavor(self, flavor: str) -> list[str] | None:
        """Warn at plan time when nothing in the flavor hints at VMX/SVM. Only a hint: many
        clouds pass the host CPU through without any trait; the preflight phase is the gate.

        Never fails a preview: the lookup lists extra specs, which some clouds forbid, and
        the Terraform data source then returns an error (terraform-provider-openstack
        data_source_openstack_compute_flavor_v2.go, ListExtraSpecs; review-pulumi F10). A
        synchronous invoke lets that error be caught here; None means "could not check"."""
        roles = ", ".join(sorted(r for r, f in self._flavors.items() if f == flavor))
        try:
            found = openstack.compute.get_flavor(name=flavor, opts=pulumi.InvokeOptions(parent=self))
        except Exception as err:  # noqa: BLE001 any lookup failure only skips the hint
            pulumi.log.warn(f"could not look up flavor {flavor!r} ({roles}) to check for nested "
                            f"virtualization ({str(err).splitlines()[0][:200] if str(err) else type(err).__name__}); "
                            "skipped: the preflight phase still checks /dev/kvm on every node.", resource=self)
            return None
        hints = nested_virt_hints(found.extra_specs)
        if not hints:
            pulumi.log.warn(
                f"flavor {flavor!r} ({roles}) has no extra spec hinting at nested virtualization "
                f"(e.g. trait:HW_CPU_X86_VMX=required or trait:HW_CPU_X86_SVM=required); Kata needs "
                "/dev/kvm inside the VM. Check with `openstack flavor show "
                f"{flavor} -c properties`; the preflight phase fails if /dev/kvm is missing "
                "(docs/openstack.md, 'Nested virtualization').", resource=self)
        return hints

    def _node(self, role: str, index: int) -> NodeTarget:
        cfg, net, access = self._cfg, self._network, self._access
        node = naming.node_name(cfg.cluster_name, role, index)
        child = pulumi.ResourceOptions(parent=self)

        first = role == naming.CONTROL_PLANE and index == 0
        # The jump host's port alone carries the jump-host group: the source of every
        # node's SSH rule (components/openstack/firewall.py JUMP_HOST); cp-0's, on stacks
        # that keep it as their jump host.
        relay = first and not self._dedicated
        groups = [net.security_group_ids[role], *([net.jump_host_group_id] if relay else [])]
        port = openstack.networking.Port(
            f"{node}-port", name=node, network_id=net.network_id, fixed_ips=[{"subnet_id": net.subnet_id}],
            security_group_ids=groups, admin_state_up=True, tags=self._tags, opts=child)
        host_key = tls.PrivateKey(f"{node}-host-key", algorithm="ED25519", opts=child)
        host_public = host_key.public_key_openssh
        user_data = pulumi.Output.secret(pulumi.Output.all(host_key.private_key_openssh, host_public).apply(
            lambda keys: cloudinit.render(cloudinit.UserData(
                hostname=node, host_private_key=keys[0], host_public_key=keys[1]))))
        boot_volume = cfg.boot_volume_size > 0
        server = openstack.compute.Instance(
            node,
            name=node,
            flavor_name=self._flavors[role],
            image_id=None if boot_volume else self.image_id,
            block_devices=[{
                "uuid": self.image_id, "source_type": "image", "destination_type": "volume",
                "volume_size": cfg.boot_volume_size, "boot_index": 0, "delete_on_termination": True,
            }] if boot_volume else None,
            key_pair=access.keypair_name,
            networks=[{"port": port.id}],
            scheduler_hints=[{"group": self.server_groups[role].id}],
            metadata=naming.cluster_metadata(cfg.cluster_name, role),
            tags=self._tags,
            user_data=user_data,
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(
                depends_on=[access.keypair, net.router_interface],
                # A new image (the cloud refreshing `ubuntu-24.04`) rebuilds a server in
                # place, a new flavor resizes it (Nova resize: reboot), new user data (a new
                # katak8s renderer) replaces it: every server of a role at once, undrained
                # (terraform-provider-openstack compute_instance_v2 Update; review-pulumi F5).
                # They apply to servers created afterwards, and to a server replaced with
                # `pulumi up --replace`: a replacement is checked against the program's
                # values, not the ignored old ones (pulumi/pulumi step_generator.go
                # continueStepsFromImport L1325 for a targeted replace, L2003-2022 for any
                # other). docs/operations.md rolls nodes that way, drained first, one at a time.
                ignore_changes=list(FROZEN_INPUTS),
                # A replacement (a renamed cluster, new user data) must free the port
                # first: a port serves one server at a time, so create-before-delete fails.
                delete_before_replace=True,
            )),
        )
        fip = None
        # Floating IPs stay few: the jump host's and the API endpoint's (cp-0's for one
        # control plane, the load balancer's for several), unless every node wants one.
        if (first and (relay or not cfg.ha)) or cfg.floating_ip_per_node:
            fip = openstack.networking.FloatingIp(
                f"{node}-fip", pool=cfg.external_network, port_id=port.id,
                description=f"katak8s {cfg.cluster_name}: {node}", tags=self._tags,
                opts=pulumi.ResourceOptions.merge(
                    child, pulumi.ResourceOptions(depends_on=[net.router_interface])))
            self.floating_ips[node] = fip

        private_ip = port.all_fixed_ips.apply(lambda ips: ips[0])
        dial = self._dial
        if fip is not None and not self._dedicated:
            connection = command.remote.ConnectionArgs(
                host=after(server, fip.address), host_key=host_public, **dial)
        else:  # every step through the jump host, over the private network
            connection = command.remote.ConnectionArgs(host=after(server, private_ip), host_key=host_public,
                                                       proxy=self._proxy, **dial)
        if relay:
            # Every node without its own floating IP is reached through cp-0.
            self._proxy = command.remote.ProxyConnectionArgs(
                host=after(server, fip.address), host_key=host_public, **dial)

        self.ports[node], self.servers[node], self.host_keys[node] = port, server, host_key
        self.host_public_keys[node] = host_public
        return NodeTarget(name=node, role=role, index=index, flavor=self._flavors[role],
                          ssh_user=cfg.ssh_user, connection=connection, private_ip=private_ip, server=server)
