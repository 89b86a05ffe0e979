"""The network keys' rules: CIDRs and addresses that can work on a cloud and in kubeadm.

Applied by components/config.py through `check_networks`; every problem names its key,
value and rule (issue #12, section 1). kubeadm's own bounds, from
cmd/kubeadm/app/apis/kubeadm/validation/validation.go and cmd/kubeadm/app/constants:
  - ValidatePodSubnetNodeMask: the pod subnet must hold the node mask (IPv4 default /24,
    getClusterNodeMask) and be at most PodSubnetNodeMaskMaxDiff = 16 bits larger;
  - ValidateServiceSubnetSize: at most MaximumBitsForServiceSubnet = 20 host bits (/12);
  - ValidateIPNetFromString: at least MinimumAddressesInServiceSubnet = 10 addresses (the
    DNS service is the tenth).
"""

from __future__ import annotations

import ipaddress
from typing import Any

NODE_MASK = 24  # kube-controller-manager --node-cidr-mask-size-ipv4 default (getClusterNodeMask)
POD_NODE_MASK_MAX_DIFF = 16
SERVICE_MAX_HOST_BITS = 20
SERVICE_MIN_ADDRESSES = 10
# Addresses Neutron and the cloud take from the node subnet besides the nodes: network,
# broadcast, gateway, up to two DHCP ports (clouds with dhcp_agents_per_network = 2) and
# the router's SNAT port. HA adds the Octavia VIP and one port per amphora of an
# active-standby pair, plus one for a failover amphora that is built before the old one goes.
RESERVED_ADDRESSES = 6
# Neutron refuses a subnet with more resolvers than max_dns_nameservers (default 5).
MAX_DNS_NAMESERVERS = 5
# Each allowed CIDR becomes 2 rules (SSH, API; 3 with floatingIpPerNode) beside ~20 fixed
# ones, and Neutron's default quota is 100 security-group rules per project.
MAX_ALLOWED_CIDRS = 32
RESERVED_ADDRESSES_HA = RESERVED_ADDRESSES + 4
# Ranges no node, pod, service or resolver address may come from (IANA special-purpose
# registry, RFC 6890). Judged by overlap: 0.0.0.0/24 or 126.0.0.0/7 are refused too, which
# Python's is_unspecified / is_loopback (whole-range tests) would let through.
_SPECIAL = tuple((name, ipaddress.ip_network(cidr)) for name, cidr in (
    ("'this network' (0.0.0.0/8)", "0.0.0.0/8"), ("loopback", "127.0.0.0/8"), ("link-local", "169.254.0.0/16"),
    ("multicast", "224.0.0.0/4"), ("reserved", "240.0.0.0/4")))


def _special(net: ipaddress.IPv4Network | ipaddress.IPv4Address) -> str | None:
    if isinstance(net, ipaddress.IPv4Address):
        net = ipaddress.ip_network(net)
    return next((name for name, special in _SPECIAL if net.overlaps(special)), None)


def reserved_addresses(control_planes: int) -> int:
    return RESERVED_ADDRESSES_HA if control_planes > 1 else RESERVED_ADDRESSES


def _network(c: Any, key: str, value: Any, *, usable: bool = True) -> ipaddress.IPv4Network | None:
    try:
        net = ipaddress.ip_network(value, strict=True)
    except (TypeError, ValueError):
        c.fail(key, "must be an IPv4 CIDR with no host bits set, like 10.42.0.0/24", value)
        return None
    if not isinstance(net, ipaddress.IPv4Network):
        c.fail(key, "must be an IPv4 CIDR (IPv6 is not supported yet)", value)
        return None
    kind = _special(net) if usable else None
    if kind:
        c.fail(key, f"must not overlap the {kind} range", value)
        return None
    return net


def covers_everything(cidrs: Any) -> bool:
    """True when the union of `cidrs` is the whole IPv4 internet (e.g. 0.0.0.0/1 + 128.0.0.0/1)."""
    nets = [ipaddress.ip_network(x, strict=False) for x in cidrs]
    return ipaddress.ip_network("0.0.0.0/0") in ipaddress.collapse_addresses(
        n for n in nets if isinstance(n, ipaddress.IPv4Network))


def check_networks(c: Any, values: dict[str, Any], control_planes: int, node_count: int) -> None:
    nets = {k: _network(c, k, values[k]) for k in ("nodeCidr", "podCidr", "serviceCidr")}
    allowed = [(f"allowedCidrs[{i}]", _network(c, f"allowedCidrs[{i}]", x, usable=False))
               for i, x in enumerate(values["allowedCidrs"])]
    if not values["allowedCidrs"] and "allowedCidrs" in c.raw:
        c.fail("allowedCidrs", "must list at least one CIDR that may reach SSH and the API", [])
    if len(set(values["allowedCidrs"])) > MAX_ALLOWED_CIDRS:
        c.fail("allowedCidrs", f"must list at most {MAX_ALLOWED_CIDRS} CIDRs (each becomes security-group "
               "rules, and Neutron's default quota is 100 rules per project); summarize them",
               f"{len(values['allowedCidrs'])} entries")
    if len(values["dnsNameservers"]) > MAX_DNS_NAMESERVERS:
        c.fail("dnsNameservers", f"must list at most {MAX_DNS_NAMESERVERS} servers (Neutron's "
               "max_dns_nameservers default)", values["dnsNameservers"])
    dns = []
    for i, ip in enumerate(values["dnsNameservers"]):
        try:
            addr = ipaddress.IPv4Address(ip)
        except (TypeError, ValueError):
            c.fail(f"dnsNameservers[{i}]", "must be an IPv4 address", ip)
            continue
        kind = _special(addr)
        if kind:
            c.fail(f"dnsNameservers[{i}]", f"must not be a {kind} address", ip)
        else:
            dns.append((f"dnsNameservers[{i}]", ipaddress.ip_network(addr)))
    reach = [(f"podReachableCidrs[{i}]", _network(c, f"podReachableCidrs[{i}]", x, usable=False))
             for i, x in enumerate(values["podReachableCidrs"])]
    names = list(nets)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            na, nb = nets[a], nets[b]
            if na is not None and nb is not None and na.overlaps(nb):
                c.fail(a, f"must not overlap katak8s:{b} ({values[b]})", values[a])
    # Sources and resolvers inside the pod or service range are unreachable from outside
    # (and would be answered by pods or services, not by what the operator meant).
    for key, net in [*allowed, *dns]:
        for inner in ("podCidr", "serviceCidr"):
            if net is not None and nets[inner] is not None and net.subnet_of(nets[inner]):
                c.fail(key, f"must not fall inside katak8s:{inner} ({values[inner]}): replies to it would "
                       f"be routed to pods or services; list another source, or choose another {inner} "
                       "before the first `pulumi up`", str(net))
    # A network pods must reach that overlaps their own ranges would be answered inside the
    # cluster (Calico: an IP pool may overlap no network the pods talk to; tigera/docs
    # version-3.32 _system-requirements.mdx; review-k8s K13).
    for key, net in reach:
        for inner in ("podCidr", "serviceCidr"):
            if net is not None and nets[inner] is not None and net.overlaps(nets[inner]):
                c.fail(key, f"must not overlap katak8s:{inner} ({values[inner]}): pods would reach pods or "
                       f"services there instead; choose another {inner} before the first `pulumi up` (the "
                       "ranges are fixed once deployed)", str(net))
    pod, service, node = nets["podCidr"], nets["serviceCidr"], nets["nodeCidr"]
    if pod is not None and not NODE_MASK - POD_NODE_MASK_MAX_DIFF <= pod.prefixlen <= NODE_MASK:
        c.fail("podCidr", f"must be a /{NODE_MASK - POD_NODE_MASK_MAX_DIFF} to /{NODE_MASK}: it holds one /"
               f"{NODE_MASK} per node, at most {2 ** POD_NODE_MASK_MAX_DIFF} of them (kubeadm "
               "ValidatePodSubnetNodeMask)", values["podCidr"])
    if service is not None and not (32 - service.prefixlen <= SERVICE_MAX_HOST_BITS
                                    and service.num_addresses >= SERVICE_MIN_ADDRESSES):
        c.fail("serviceCidr", f"must be a /{32 - SERVICE_MAX_HOST_BITS} to /28: kubeadm allows at most "
               f"{SERVICE_MAX_HOST_BITS} host bits and needs {SERVICE_MIN_ADDRESSES} addresses "
               "(the DNS service is the tenth)", values["serviceCidr"])
    reserved = reserved_addresses(control_planes)
    if node is not None and node.num_addresses < node_count + RESERVED_ADDRESSES:
        c.fail("nodeCidr", f"must hold {node_count} nodes plus {reserved} reserved addresses; use a "
               f"prefix of /{_prefix_for(node_count + reserved)} or shorter", values["nodeCidr"])
    elif node is not None and node.num_addresses < node_count + reserved:
        # Only a warning: a subnet that fit the base reservation may already hold a live HA
        # cluster, and a new nodeCidr would move every node (components/deployed.py).
        c.warnings.append(f"katak8s:nodeCidr {values['nodeCidr']} holds {node_count} nodes but leaves fewer "
                          f"than the {reserved - RESERVED_ADDRESSES} addresses an HA load balancer may add; "
                          f"a /{_prefix_for(node_count + reserved)} would")


def _prefix_for(addresses: int) -> int:
    prefix = 30
    while 2 ** (32 - prefix) < addresses:
        prefix -= 1
    return prefix
