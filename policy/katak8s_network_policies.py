"""Network exposure policies: nothing but SSH and the Kubernetes API open to the world,
judged per rule and per union of rules (imported by katak8s_policies.py)."""

from __future__ import annotations

import ipaddress
from typing import Any

from katak8s_props import ReportViolation, _get, _keys
from pulumi_policy import ResourceValidationArgs, StackValidationArgs

# Mirrors components/versions.py SSH_PORT / API_PORT: the pack runs in its own virtualenv
# from policy/, without the project on its import path. tests/test_policy_pack.py keeps
# the two equal.
SSH_PORT = 22
API_PORT = 6443
WORLD_OPEN_PORTS = {SSH_PORT: "SSH", API_PORT: "the Kubernetes API"}
SEC_GROUP_RULE = "openstack:networking/secGroupRule:SecGroupRule"
LB_LISTENER = "openstack:loadbalancer/listener:Listener"


def _is_world(prefix: str) -> bool:
    try:
        return ipaddress.ip_network(prefix, strict=False).prefixlen == 0
    except ValueError:
        return False


def _world_port_ok(protocol: Any, low: Any, high: Any) -> bool:
    if str(protocol).lower() not in ("tcp", "6") or low is None or high is None:
        return False
    return int(low) == int(high) and int(low) in WORLD_OPEN_PORTS


def validate_security_group_rule(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """An ingress rule open to 0.0.0.0/0 or ::/0 (or to no remote at all, which Neutron
    treats as anywhere) may only allow TCP 22 or TCP 6443: the ports katak8s:allowedCidrs
    exists for. Egress and rules scoped to a CIDR or a remote group pass."""
    if args.resource_type != SEC_GROUP_RULE:
        return
    props = args.props
    if str(_get(props, "direction") or "").lower() != "ingress":
        return
    keys = _keys(props)
    prefix = _get(props, "remoteIpPrefix")
    if prefix:
        if not _is_world(prefix):
            return
        source = prefix
    elif keys & {"remoteGroupId", "remoteAddressGroupId"}:
        return  # scoped to a group (its ID may be unknown in preview: presence is enough)
    else:
        source = "anywhere (no remoteIpPrefix or remoteGroupId)"
    protocol, low, high = _get(props, "protocol"), _get(props, "portRangeMin"), _get(props, "portRangeMax")
    if _world_port_ok(protocol, low, high):
        return
    low, high = (int(p) if p is not None else None for p in (low, high))  # the engine sends floats
    ports = "all ports" if not low and not high else f"ports {low}-{high}" if low != high else f"port {low}"
    report_violation(
        f"security-group rule {args.name!r} opens {protocol or 'every protocol'} {ports} to {source}; "
        f"only TCP {SSH_PORT} (SSH) and TCP {API_PORT} (Kubernetes API) may be opened beyond the "
        "cluster, and only for katak8s:allowedCidrs. Scope it with remoteGroupId or a narrower CIDR.")


def validate_lb_listener(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """An Octavia listener without allowedCidrs (or with 0.0.0.0/0) is open to the world;
    only the API port may be."""
    if args.resource_type != LB_LISTENER:
        return
    port = _get(args.props, "protocolPort")
    if port is not None and int(port) in WORLD_OPEN_PORTS:
        return
    cidrs = _get(args.props, "allowedCidrs") or []
    if not cidrs or any(_is_world(c) for c in cidrs):
        report_violation(
            f"load-balancer listener {args.name!r} on port {port} accepts any source; set allowedCidrs "
            f"(only ports {SSH_PORT} and {API_PORT} may be reachable through katak8s:allowedCidrs).")


def validate_world_union(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    """The same rule judged on the union of prefixes: two ingress rules of one group and
    port for 0.0.0.0/1 and 128.0.0.0/1 open it to the whole internet as surely as one
    0.0.0.0/0 does (issue #12). Rules whose values are unknown in preview are left out."""
    opened: dict[tuple[Any, ...], list[Any]] = {}
    for r in args.resources:
        if r.resource_type != SEC_GROUP_RULE or str(_get(r.props, "direction") or "").lower() != "ingress":
            continue
        key = tuple(_get(r.props, k) for k in ("securityGroupId", "protocol", "portRangeMin", "portRangeMax"))
        prefix = _get(r.props, "remoteIpPrefix")
        if isinstance(prefix, str) and all(isinstance(k, (str, int, float, type(None))) for k in key):
            opened.setdefault(key, []).append((prefix, r))
    for (_group, protocol, low, high), rules in sorted(opened.items(), key=lambda kv: str(kv[0])):
        nets = [n for n in (_v4(p) for p, _ in rules) if n is not None]
        if len(nets) < 2 or _world_port_ok(protocol, low, high):
            continue  # a single world-open rule is validate_security_group_rule's
        if ipaddress.ip_network("0.0.0.0/0") in ipaddress.collapse_addresses(nets):
            names = ", ".join(sorted(repr(r.name) for _, r in rules))
            report_violation(
                f"security-group rules {names} together open {protocol or 'every protocol'} ports "
                f"{low}-{high} to the whole internet; only TCP {SSH_PORT} and {API_PORT} may be.", rules[0][1].urn)


def _v4(prefix: str) -> ipaddress.IPv4Network | None:
    try:
        net = ipaddress.ip_network(prefix, strict=False)
    except ValueError:
        return None
    return net if isinstance(net, ipaddress.IPv4Network) else None
