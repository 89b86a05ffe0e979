"""Network layer: the node network, its router to the outside, and one security group per role.

class ClusterNetwork(pulumi.ComponentResource), token katak8s:network:ClusterNetwork
    ClusterNetwork(name, cfg, opts=None)
    .network_id: Output[str]; .subnet_id: Output[str]
    .mtu: Output[int]                      the network's MTU read back (Calico derives its own)
    .security_group_ids: dict[str, Output[str]]   keyed by naming.CONTROL_PLANE / naming.WORKER
    .router_interface: the RouterInterface; floating IPs and servers wait for it (below)
    .external_network_id: Output[str]
    .rules: dict[str, SecGroupRule]        keyed by `<role>-<rule key>[-<cidr>]`

Every ingress rule comes from components/openstack/firewall.py (the design table); nothing here
types a port.
"""

from __future__ import annotations

import pulumi
import pulumi_openstack as openstack

from components import naming
from components.config import ClusterConfig
from components.openstack import firewall


def _cidr_key(cidr: str) -> str:
    """`203.0.113.0/24` -> `203.0.113.0-24`: rule names follow the CIDR, not its list position,
    so reordering allowedCidrs replaces nothing."""
    return cidr.replace("/", "-").replace(":", "_")


class ClusterNetwork(pulumi.ComponentResource):
    def __init__(self, name: str, cfg: ClusterConfig, opts: pulumi.ResourceOptions | None = None):
        super().__init__(naming.type_token("network", "ClusterNetwork"), name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        cluster = cfg.cluster_name
        tags = [naming.cluster_tag(cluster)]

        external = openstack.networking.get_network_output(
            name=cfg.external_network, external=True, opts=pulumi.InvokeOutputOptions(parent=self))
        self.external_network_id: pulumi.Output[str] = external.id

        network = openstack.networking.Network(
            f"{name}-net", name=cluster, admin_state_up=True, tags=tags, opts=child)
        subnet = openstack.networking.Subnet(
            f"{name}-subnet", name=cluster, network_id=network.id, cidr=cfg.node_cidr, ip_version=4,
            enable_dhcp=True, dns_nameservers=list(cfg.dns_nameservers) or None, tags=tags, opts=child)
        router = openstack.networking.Router(
            f"{name}-router", name=cluster, external_network_id=external.id, admin_state_up=True,
            tags=tags, opts=child)
        # Floating IPs need this interface ("external network is not reachable from subnet"),
        # and so does a first boot: on most clouds the metadata service that hands cloud-init
        # its user data (the pinned host key) is proxied in the router's namespace.
        self.router_interface = openstack.networking.RouterInterface(
            f"{name}-router-interface", router_id=router.id, subnet_id=subnet.id, opts=child)

        groups = {
            role: openstack.networking.SecGroup(
                f"{name}-{role}", name=f"{cluster}-{role}",
                # (The path predates components/openstack/: a new description would update every group.)
                description=f"katak8s {cluster}: {role} nodes (rules: components/firewall.py)",
                tags=tags, opts=child)
            for role in (naming.CONTROL_PLANE, naming.WORKER)
        }
        jump = openstack.networking.SecGroup(
            f"{name}-{firewall.JUMP_HOST}", name=f"{cluster}-{firewall.JUMP_HOST}",
            description=f"katak8s {cluster}: the SSH jump host's port only; SSH from allowedCidrs, and the "
                        "source of the nodes' SSH rules (components/openstack/firewall.py)",
            tags=tags, opts=child)
        self.rules: dict[str, openstack.networking.SecGroupRule] = {}
        for rule in firewall.rules_for(cfg):
            for suffix, remote in self._sources(cfg, rule, {**groups, firewall.JUMP_HOST: jump}):
                key = f"{rule.target}-{rule.key}{suffix}"
                self.rules[key] = openstack.networking.SecGroupRule(
                    f"{name}-{key}",
                    direction="ingress",
                    ethertype="IPv4",
                    security_group_id={**groups, firewall.JUMP_HOST: jump}[rule.target].id,
                    protocol=rule.protocol,
                    port_range_min=rule.ports[0] if rule.ports else None,
                    port_range_max=rule.ports[1] if rule.ports else None,
                    description=rule.reason,
                    # Every argument of a rule is ForceNew (terraform-provider-openstack
                    # networking_secgroup_rule_v2 has no Update), and Neutron refuses a
                    # second rule that differs from a live one only in its description
                    # (409 SecurityGroupRuleExists: its duplicate check ignores it), which
                    # the create-before-delete replacement would be. So a reworded reason
                    # applies to new rules only.
                    opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(ignore_changes=["description"])),
                    **remote,
                )

        self.network = network
        self.subnet = subnet
        self.router = router
        self.security_groups = groups
        self.network_id: pulumi.Output[str] = network.id
        self.subnet_id: pulumi.Output[str] = subnet.id
        self.mtu: pulumi.Output[int] = network.mtu
        self.security_group_ids: dict[str, pulumi.Output[str]] = {r: g.id for r, g in groups.items()}
        self.jump_host_group_id: pulumi.Output[str] = jump.id
        self.register_outputs({
            "network_id": self.network_id,
            "subnet_id": self.subnet_id,
            "mtu": self.mtu,
            "security_group_ids": self.security_group_ids,
        })

    @staticmethod
    def _sources(cfg: ClusterConfig, rule: firewall.Rule,
                 groups: dict[str, openstack.networking.SecGroup]) -> list[tuple[str, dict]]:
        """(name suffix, remote_* argument) pairs: one rule per allowed CIDR, else one."""
        if rule.source == firewall.ALLOWED_CIDRS:
            return [(f"-{_cidr_key(c)}", {"remote_ip_prefix": c}) for c in sorted(set(cfg.allowed_cidrs))]
        if rule.source == firewall.NODE_CIDR:
            return [("", {"remote_ip_prefix": cfg.node_cidr})]
        return [("", {"remote_group_id": groups[rule.source].id})]
