"""The security-group design as data: every ingress rule of the cluster, with its reason.

`design()` is the whole table (each rule says when it applies); `rules_for(cfg)` picks
the rules a stack needs; components/openstack/network.py turns each into one SecGroupRule and
docs/openstack.md shows `markdown_table()`, so code, docs and tests read one source.

Only ingress is listed: each role's group keeps Neutron's default egress rules (allow
all), because nodes download packages, images and Kata releases. A rule's source is the
stack's allowedCidrs, the node subnet, or the security group of a role (remote_group_id,
so only cluster members match, whatever their addresses).

Calico runs VXLAN with BGP disabled (components/kubernetes, not configurable): pod
traffic between nodes is UDP 4789 between node addresses, so there is no TCP 179 (BGP)
and no IP protocol 4 (IP-in-IP) rule, and pod CIDRs never need allowed_address_pairs
(upstream-bootstrap.md §8.3-8.4).
"""

from __future__ import annotations

from dataclasses import dataclass

from components import naming
from components import versions as v

# Sources (besides a role name, which means "members of that role's security group").
ALLOWED_CIDRS = "allowedCidrs"
NODE_CIDR = "nodeCidr"
# The group on the jump host's port only (the dedicated jump host's, or the first control
# plane's on stacks that keep it: components/openstack/jumphost.py): the one place SSH
# enters from outside, and the nodes accept SSH from its members alone (issue #12).
JUMP_HOST = "jump-host"
# When a rule applies.
ALWAYS = "always"
HA_ONLY = "controlPlaneCount > 1"
FIP_PER_NODE = "floatingIpPerNode"
CLOUD_PROVIDER = "cloudProvider"

# Cited in docs/openstack.md, so public URLs (reference notes: upstream-bootstrap.md §8.4, §9).
_KUBEADM_PORTS = ("[Kubernetes ports and protocols]"
                  "(https://kubernetes.io/docs/reference/networking/ports-and-protocols/)")
_CALICO_PORTS = ("[Calico network requirements](https://docs.tigera.io/calico/latest/"
                 "getting-started/kubernetes/requirements#network-requirements)")
_SSH = ("[pulumi-command](https://www.pulumi.com/registry/packages/command/api-docs/remote/command/)"
        " connects over SSH")
CP, W = naming.CONTROL_PLANE, naming.WORKER


@dataclass(frozen=True, kw_only=True)
class Rule:
    """One ingress rule of the design."""

    target: str  # the role whose security group holds the rule
    protocol: str  # tcp | udp | icmp
    ports: tuple[int, int] | None  # inclusive range; None for ICMP (all types)
    source: str  # ALLOWED_CIDRS | NODE_CIDR | JUMP_HOST | a role (remote_group_id)
    when: str  # ALWAYS | HA_ONLY | FIP_PER_NODE | CLOUD_PROVIDER
    reason: str
    upstream: str

    @property
    def key(self) -> str:
        """Stable resource-name part: `<proto>-<ports>-from-<source>` (target is the group)."""
        ports = "all" if self.ports is None else (
            str(self.ports[0]) if self.ports[0] == self.ports[1] else f"{self.ports[0]}-{self.ports[1]}")
        source = {ALLOWED_CIDRS: "allowed", NODE_CIDR: "subnet"}.get(self.source, self.source)
        return f"{self.protocol}-{ports}-from-{source}"


def _p(port: int) -> tuple[int, int]:
    return (port, port)


def _among_all(protocol: str, ports: tuple[int, int] | None, reason: str, upstream: str) -> list[Rule]:
    """A rule every node needs from every node (both roles, both directions)."""
    return [Rule(target=t, protocol=protocol, ports=ports, source=s, when=ALWAYS, reason=reason,
                 upstream=upstream) for t in (CP, W) for s in (CP, W)]


def design() -> tuple[Rule, ...]:
    """Every ingress rule the project may create, in a fixed order."""
    rules = [
        # From outside: only what an operator and Pulumi need, only from allowedCidrs.
        Rule(target=JUMP_HOST, protocol="tcp", ports=_p(v.SSH_PORT), source=ALLOWED_CIDRS, when=ALWAYS,
             reason="SSH from operators and Pulumi to the jump host",
             upstream=_SSH),
        Rule(target=CP, protocol="tcp", ports=_p(v.SSH_PORT), source=ALLOWED_CIDRS, when=FIP_PER_NODE,
             reason="SSH straight to each control plane's own floating IP",
             upstream=_SSH),
        Rule(target=W, protocol="tcp", ports=_p(v.SSH_PORT), source=ALLOWED_CIDRS, when=FIP_PER_NODE,
             reason="SSH straight to each worker's own floating IP",
             upstream=_SSH),
        Rule(target=CP, protocol="tcp", ports=_p(v.API_PORT), source=ALLOWED_CIDRS, when=ALWAYS,
             reason="Kubernetes API for kubectl and the Pulumi Kubernetes provider",
             upstream=_KUBEADM_PORTS),
        # The jump host relays SSH to every node over the private network; only its port is
        # in the jump-host group, so no node can SSH to another.
        Rule(target=CP, protocol="tcp", ports=_p(v.SSH_PORT), source=JUMP_HOST, when=ALWAYS,
             reason="SSH relayed by the jump host to the control planes",
             upstream=_SSH + " (`proxy`: the jump host)"),
        Rule(target=W, protocol="tcp", ports=_p(v.SSH_PORT), source=JUMP_HOST, when=ALWAYS,
             reason="SSH relayed by the jump host to the workers",
             upstream=_SSH + " (`proxy`: the jump host)"),
        # Kubernetes control plane.
        Rule(target=CP, protocol="tcp", ports=_p(v.API_PORT), source=CP, when=ALWAYS,
             reason="API server from control-plane kubelets, joins and controllers",
             upstream=_KUBEADM_PORTS),
        Rule(target=CP, protocol="tcp", ports=_p(v.API_PORT), source=W, when=ALWAYS,
             reason="API server from worker kubelets, kube-proxy and calico-node",
             upstream=_KUBEADM_PORTS),
        # Octavia's amphora opens its member connections and TCP health checks from its own
        # port in the member subnet (subnet_id of each Member), not from the client's address
        # and not from a security group we own, so the members must admit the node subnet.
        Rule(target=CP, protocol="tcp", ports=_p(v.API_PORT), source=NODE_CIDR, when=HA_ONLY,
             reason="API server from the Octavia amphora (member traffic and health checks)",
             upstream="Octavia amphora driver: it plugs a port into each member's subnet "
                      "and connects from it"),
        Rule(target=CP, protocol="tcp", ports=(v.ETCD_PORTS[0], v.ETCD_PORTS[-1]), source=CP, when=HA_ONLY,
             reason="etcd client and peer traffic among stacked etcd members",
             upstream=_KUBEADM_PORTS),
        # The API server reaches every kubelet (logs, exec, port-forward), and so does
        # metrics-server, which runs on the control planes for that reason
        # (components/kubernetes/metrics.py): no worker reaches a kubelet.
        Rule(target=CP, protocol="tcp", ports=_p(v.KUBELET_PORT), source=CP, when=ALWAYS,
             reason="kubelet API from the API server and metrics-server", upstream=_KUBEADM_PORTS),
        Rule(target=W, protocol="tcp", ports=_p(v.KUBELET_PORT), source=CP, when=ALWAYS,
             reason="kubelet API from the API server and metrics-server", upstream=_KUBEADM_PORTS),
        # Services of type LoadBalancer (the OpenStack cloud controller): an amphora reaches its
        # members' NodePorts from its own port in the node subnet, like the API's members above.
        # The controller's manage-security-groups stays off: it would add groups to ports
        # Pulumi owns (components/kubernetes/cloud_controller.py). Members are the workers:
        # kubeadm labels control planes node.kubernetes.io/exclude-from-external-load-balancers,
        # which the service controller skips.
        *(Rule(target=W, protocol=proto, ports=v.NODE_PORTS, source=NODE_CIDR, when=CLOUD_PROVIDER,
               reason="NodePorts of LoadBalancer Services from the Octavia amphora (members and health checks)",
               upstream="[cloud-provider-openstack](https://github.com/kubernetes/cloud-provider-openstack/blob/"
                        "master/docs/openstack-cloud-controller-manager/expose-applications-using-loadbalancer-"
                        "type-service.md)")
          # UDP Services too, with UDP-CONNECT monitors on the NodePort (CPO loadbalancer.go)
          for proto in ("tcp", "udp")),
    ]
    # Calico data plane and control plane, between every pair of nodes.
    rules += _among_all("udp", _p(v.VXLAN_PORT), "Calico VXLAN pod traffic between nodes", _CALICO_PORTS)
    rules += _among_all("tcp", _p(v.TYPHA_PORT), "calico-node to Typha (Typha runs on any node)",
                        _CALICO_PORTS)
    rules += _among_all("icmp", None, "path-MTU discovery (fragmentation needed) and ping between nodes",
                        "RFC 1191 (path MTU discovery); VXLAN lowers the pod MTU")
    return tuple(rules)


def applies(rule: Rule, *, ha: bool, floating_ip_per_node: bool, cloud_provider: bool = False) -> bool:
    return {ALWAYS: True, HA_ONLY: ha, FIP_PER_NODE: floating_ip_per_node,
            CLOUD_PROVIDER: cloud_provider}[rule.when]


def rules_for(cfg) -> tuple[Rule, ...]:
    """The rules a stack (ClusterConfig, settled: components/deployed.py) needs."""
    return tuple(r for r in design() if applies(r, ha=cfg.ha, floating_ip_per_node=cfg.floating_ip_per_node,
                                                cloud_provider=cfg.cloud_provider))


def _ports_text(rule: Rule) -> str:
    if rule.ports is None:
        return "all types"
    lo, hi = rule.ports
    return str(lo) if lo == hi else f"{lo}-{hi}"


def _source_text(rule: Rule) -> str:
    if rule.source in (ALLOWED_CIDRS, NODE_CIDR):
        return f"`{rule.source}`"
    if rule.source == JUMP_HOST:
        return "jump-host group (the jump host's port only)"
    return f"{rule.source} group"


def markdown_table(rules: tuple[Rule, ...] | None = None) -> str:
    """The design as the Markdown table docs/openstack.md shows (a test keeps them equal)."""
    lines = ["| to (group) | protocol | port | from | when | why | source |",
             "|---|---|---|---|---|---|---|"]
    for r in rules if rules is not None else design():
        lines.append(f"| {r.target} | {r.protocol.upper()} | {_ports_text(r)} | {_source_text(r)} "
                     f"| {r.when} | {r.reason} | {r.upstream} |")
    return "\n".join(lines) + "\n"
