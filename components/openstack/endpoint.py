"""The Kubernetes API endpoint: an Octavia load balancer in HA, else the first control plane.

class ApiEndpoint(pulumi.ComponentResource), token katak8s:endpoint:ApiEndpoint
    ApiEndpoint(name, cfg, *, network, nodes, opts=None)
    .public_host: Output[str]    what kubectl reaches: the LB floating IP (HA) or cp-0's floating IP
    .private_host: Output[str]   kubeadm controlPlaneEndpoint host: the LB VIP (HA) or cp-0's private IP
    .port: int                   versions.API_PORT
    .load_balancer / .listener / .pool / .monitor / .floating_ip: None without HA
    .members: list[Member]       one per control plane, in index order
"""

from __future__ import annotations

import pulumi
import pulumi_openstack as openstack

from components import naming
from components import versions as v
from components.config import ClusterConfig, ConfigError
from components.openstack.network import ClusterNetwork
from components.openstack.nodes import NodePool

# TCP health check of each apiserver: a member is out after 3 failed checks 5 s apart.
MONITOR_DELAY, MONITOR_TIMEOUT, MONITOR_RETRIES = 5, 3, 3
# Octavia closes idle TCP flows after 50 s by default, which would cut `kubectl logs -f`,
# `exec` and watches through the VIP whenever they are quiet; an hour keeps them usable
# (the apiserver closes long watches itself, every 5-10 min by default).
IDLE_TIMEOUT_MS = 3_600_000
AMPHORA = "amphora"
# A flavor name no cloud uses: the lookup below only asks whether Octavia answers.
OCTAVIA_PROBE = "katak8s-octavia-probe"


def require_octavia(cfg: ClusterConfig) -> None:
    """With 3 or 5 control planes, refuse at preview when the cloud has no Octavia, before
    any server is declared (issue #12), instead of failing on the load balancer after the
    servers exist. A synchronous lookup of a flavor nobody has: Octavia answers "Your query
    returned no results"; a cloud without it fails to build the load-balancer client
    (terraform-provider-openstack data_source_openstack_lb_flavor_v2.go Read:
    LoadBalancerV2Client, then flavors.List; gophercloud "No suitable endpoint could be
    found in the service catalog"). Any other answer (a policy refusal, a timeout)
    cannot decide, so it only warns: Octavia itself still has the last word."""
    if not cfg.ha:
        return
    try:
        openstack.loadbalancer.get_flavor_v2(name=OCTAVIA_PROBE)
        return
    except Exception as err:  # noqa: BLE001 sorted out below by what the provider said
        text = str(err)
    if "returned no results" in text:
        return
    first = text.splitlines()[0][:300] if text else "no answer"
    # gophercloud's ErrEndpointNotFound text; any other client error (authentication,
    # a Keystone timeout) is wrapped the same way by the provider, so it cannot decide.
    if "No suitable endpoint could be found" in text:
        raise ConfigError([f"katak8s:controlPlaneCount: {cfg.control_plane_count} control planes need the "
                           "Octavia load-balancer service for the API endpoint, and this cloud's catalog has "
                           f"none ({first}); use 1 control plane, or ask the cloud for Octavia, got "
                           f"{cfg.control_plane_count}"])
    pulumi.log.warn(f"could not check for Octavia ({first}); an HA control plane needs it.")


class ApiEndpoint(pulumi.ComponentResource):
    def __init__(self, name: str, cfg: ClusterConfig, *, network: ClusterNetwork, nodes: NodePool,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__(naming.type_token("endpoint", "ApiEndpoint"), name, None, opts)
        self.port: int = v.API_PORT
        self.load_balancer = self.listener = self.pool = self.monitor = self.floating_ip = None
        self.members: list[openstack.loadbalancer.Member] = []
        first = nodes.control_planes[0]
        if not cfg.ha:
            self.public_host: pulumi.Output[str] = nodes.api_host
            self.private_host: pulumi.Output[str] = first.private_ip
        else:
            self._load_balancer(name, cfg, network, nodes)
        self.register_outputs({"public_host": self.public_host, "private_host": self.private_host,
                               "port": self.port})

    def _load_balancer(self, name: str, cfg: ClusterConfig, network: ClusterNetwork, nodes: NodePool) -> None:
        child = pulumi.ResourceOptions(parent=self)
        tags = [naming.cluster_tag(cfg.cluster_name)]
        lb_name = f"{cfg.cluster_name}-api"
        # amphora, not the cloud's default provider: the OVN provider rejects the listener's
        # allowed_cidrs (Octavia feature matrix), which this endpoint relies on (below).
        self.load_balancer = openstack.loadbalancer.LoadBalancer(
            f"{name}-lb", name=lb_name, vip_subnet_id=network.subnet_id, loadbalancer_provider=AMPHORA,
            description=f"katak8s {cfg.cluster_name}: Kubernetes API", tags=tags, opts=child)
        # An amphora reaches the members from its own address, so the members' security
        # group cannot tell clients apart; the listener's allowed_cidrs filters them on the
        # VIP instead: allowedCidrs, plus the node subnet because every kubelet, kube-proxy
        # and joining node talks to controlPlaneEndpoint (the VIP) from its node address.
        self.listener = openstack.loadbalancer.Listener(
            f"{name}-listener", name=lb_name, loadbalancer_id=self.load_balancer.id,
            protocol="TCP", protocol_port=v.API_PORT,
            allowed_cidrs=sorted(set(cfg.allowed_cidrs) | {cfg.node_cidr}),
            timeout_client_data=IDLE_TIMEOUT_MS, timeout_member_data=IDLE_TIMEOUT_MS, tags=tags, opts=child)
        self.pool = openstack.loadbalancer.Pool(
            f"{name}-pool", name=lb_name, listener_id=self.listener.id, protocol="TCP",
            lb_method="ROUND_ROBIN", tags=tags, opts=child)
        self.monitor = openstack.loadbalancer.Monitor(
            f"{name}-monitor", name=lb_name, pool_id=self.pool.id, type="TCP",
            delay=MONITOR_DELAY, timeout=MONITOR_TIMEOUT, max_retries=MONITOR_RETRIES,
            max_retries_down=MONITOR_RETRIES, opts=child)
        for target in nodes.control_planes:
            self.members.append(openstack.loadbalancer.Member(
                f"{name}-member-{target.name}", name=target.name, pool_id=self.pool.id,
                address=target.private_ip, protocol_port=v.API_PORT, subnet_id=network.subnet_id,
                tags=tags, opts=child))
        self.floating_ip = openstack.networking.FloatingIp(
            f"{name}-fip", pool=cfg.external_network, port_id=self.load_balancer.vip_port_id,
            description=f"katak8s {cfg.cluster_name}: Kubernetes API", tags=tags,
            opts=pulumi.ResourceOptions.merge(
                child, pulumi.ResourceOptions(depends_on=[network.router_interface])))
        self.public_host = self.floating_ip.address
        self.private_host = self.load_balancer.vip_address
