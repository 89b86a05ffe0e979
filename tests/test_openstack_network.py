"""ClusterNetwork and the security-group design (components/openstack/firewall.py)."""

from __future__ import annotations

import inspect
from pathlib import Path

import pulumi_openstack
import pytest
from test_openstack_support import T_RULE, T_SG, openstack_layer

from components import naming
from components import versions as v
from components.openstack import firewall

ROOT = Path(__file__).resolve().parent.parent
CP, W = naming.CONTROL_PLANE, naming.WORKER
# Every port the design may open, each with the need the docs table states.
DOCUMENTED = {("tcp", v.SSH_PORT), ("tcp", v.API_PORT), ("tcp", v.ETCD_PORTS[0]), ("tcp", v.KUBELET_PORT),
              ("udp", v.VXLAN_PORT), ("tcp", v.TYPHA_PORT), ("icmp", None),
              ("tcp", v.NODE_PORTS[0]), ("udp", v.NODE_PORTS[0])}  # NodePort Services, TCP and UDP


def rules(graph):
    return graph.of_type(T_RULE)


def group_role(graph, group_id: str) -> str:
    """`<id of network-control-plane>` -> control-plane (the mock's IDs name the resource)."""
    for sg in graph.of_type(T_SG):
        if group_id == f"<id of {sg.name}>":
            return sg.name.removeprefix("network-")
    raise AssertionError(f"{group_id} is not one of our security groups")


def as_design_row(graph, cfg_node_cidr: str, reg) -> tuple:
    i = reg.inputs
    ports = (i["portRangeMin"], i["portRangeMax"]) if "portRangeMin" in i else None
    if "remoteGroupId" in i:
        source = group_role(graph, i["remoteGroupId"])
    elif i["remoteIpPrefix"] == cfg_node_cidr:
        source = firewall.NODE_CIDR
    else:
        source = firewall.ALLOWED_CIDRS
    return (group_role(graph, i["securityGroupId"]), i["protocol"], ports, source)


@pytest.mark.parametrize("config", [
    {"controlPlaneCount": 1},
    {"controlPlaneCount": 3},
    {"controlPlaneCount": 3, "floatingIpPerNode": True,
     "allowedCidrs": ["198.51.100.0/24", "203.0.113.7/32"]},
    {"cloudProvider": False},
])
def test_every_rule_is_a_design_row_and_every_applicable_row_is_a_rule(config):
    graph, built = openstack_layer(config)
    cfg = built["cfg"]
    registered = [as_design_row(graph, cfg.node_cidr, r) for r in rules(graph)]
    expected = []
    for row in firewall.rules_for(cfg):
        n = len(cfg.allowed_cidrs) if row.source == firewall.ALLOWED_CIDRS else 1
        expected += [(row.target, row.protocol, row.ports, row.source)] * n
    assert sorted(registered, key=repr) == sorted(expected, key=repr)
    assert len(registered) == 18 + 2 * len(cfg.allowed_cidrs) + (2 if cfg.ha else 0) + (
        2 * len(cfg.allowed_cidrs) if cfg.floating_ip_per_node else 0) + (
        2 if cfg.cloud_provider else 0)  # docs/openstack.md quota formula


def test_nothing_is_open_to_the_world_unless_allowed_cidrs_asks():
    graph, _ = openstack_layer({"controlPlaneCount": 3, "floatingIpPerNode": True})
    for r in rules(graph):
        i = r.inputs
        assert i["direction"] == "ingress" and i["ethertype"] == "IPv4"
        # exactly one source: a group, or a prefix (neither would mean "from anywhere")
        assert ("remoteGroupId" in i) != ("remoteIpPrefix" in i), r.name
        assert i.get("remoteIpPrefix") in (None, "203.0.113.0/24", "10.42.0.0/24"), r.name


def test_world_open_allowed_cidrs_opens_only_ssh_on_the_jump_host_and_the_api_on_the_control_plane():
    graph, _ = openstack_layer({"allowedCidrs": ["0.0.0.0/0"]})
    world = [r for r in rules(graph) if r.inputs.get("remoteIpPrefix") == "0.0.0.0/0"]
    opened = sorted((group_role(graph, r.inputs["securityGroupId"]), r.inputs["portRangeMin"]) for r in world)
    assert opened == [(CP, v.API_PORT), (firewall.JUMP_HOST, v.SSH_PORT)]
    assert any("0.0.0.0/0" in msg for level, msg in graph.logs if level == "warning")


def test_every_rule_port_is_a_documented_need_and_the_docs_show_the_design():
    for row in firewall.design():
        assert (row.protocol, row.ports[0] if row.ports else None) in DOCUMENTED, row
        assert row.reason and row.upstream, row
    graph, _ = openstack_layer({"controlPlaneCount": 3, "floatingIpPerNode": True})
    for r in rules(graph):
        assert (r.inputs["protocol"], r.inputs.get("portRangeMin")) in DOCUMENTED, r.name
        assert r.inputs["description"] in {row.reason for row in firewall.design()}
    assert firewall.markdown_table() in (ROOT / "docs" / "openstack.md").read_text(), (
        "docs/openstack.md must contain firewall.markdown_table() verbatim")


@pytest.mark.parametrize("cloud_provider", [True, False])
def test_least_privilege_between_roles(cloud_provider):
    graph, built = openstack_layer({"controlPlaneCount": 3, "cloudProvider": cloud_provider})
    rows = {as_design_row(graph, built["cfg"].node_cidr, r) for r in rules(graph)}
    to_workers = {(p, s) for t, _, p, s in rows if t == W}
    # workers serve nothing to the outside and no API/etcd to anyone; from the node subnet
    # (the Octavia amphorae) only the NodePorts, and only for the cloud controller's Services
    assert not any(s == firewall.ALLOWED_CIDRS for _, s in to_workers)
    assert {p for p, s in to_workers if s == firewall.NODE_CIDR} == ({v.NODE_PORTS} if cloud_provider else set())
    assert not any(p == v.NODE_PORTS for t, _, p, _ in rows if t != W), "control planes are no LB members"
    assert {p for p, s in to_workers if s != firewall.NODE_CIDR} == {
        (22, 22), (10250, 10250), (4789, 4789), (5473, 5473), None}
    # etcd only among control planes; kubelet only from control planes; SSH only from the
    # jump host (its own group, on cp-0's port alone: issue #12), never from any control plane
    assert {s for t, _, p, s in rows if p == (2379, 2380)} == {CP}
    assert {s for t, _, p, s in rows if p == (10250, 10250) and s != firewall.ALLOWED_CIDRS} == {CP}
    assert {s for t, _, p, s in rows if p == (22, 22) and s != firewall.ALLOWED_CIDRS} == {firewall.JUMP_HOST}
    # no BGP and no IP-in-IP (Calico VXLAN, BGP disabled)
    assert not any(p == (179, 179) or proto in ("4", "ipip") for _, proto, p, _ in rows)


def test_single_control_plane_has_no_etcd_or_load_balancer_rule():
    graph, built = openstack_layer({"controlPlaneCount": 1, "cloudProvider": False})
    rows = {as_design_row(graph, built["cfg"].node_cidr, r) for r in rules(graph)}
    assert not any(p == (2379, 2380) or s == firewall.NODE_CIDR for _, _, p, s in rows)


def test_rule_names_follow_cidrs_not_their_order():
    a, _ = openstack_layer({"allowedCidrs": ["198.51.100.0/24", "203.0.113.0/24"]})
    b, _ = openstack_layer({"allowedCidrs": ["203.0.113.0/24", "198.51.100.0/24"]})
    assert {r.urn: r.inputs for r in rules(a)} == {r.urn: r.inputs for r in rules(b)}


def test_network_subnet_router_and_groups():
    graph, _ = openstack_layer({"dnsNameservers": ["9.9.9.9", "1.1.1.1"], "clusterName": "k1"})
    subnet = graph.named("network-subnet").inputs
    assert subnet["cidr"] == "10.42.0.0/24" and subnet["dnsNameservers"] == ["9.9.9.9", "1.1.1.1"]
    assert subnet["networkId"] == "<id of network-net>" and subnet["ipVersion"] == 4
    assert graph.named("network-router").inputs["externalNetworkId"] == "<id of network public>"
    iface = graph.named("network-router-interface").inputs
    assert iface == {"routerId": "<id of network-router>", "subnetId": "<id of network-subnet>"}
    groups = graph.of_type(T_SG)
    assert sorted(g.inputs["name"] for g in groups) == ["k1-control-plane", "k1-jump-host", "k1-worker"]
    # egress stays Neutron's default allow-all: nodes download packages
    assert not any(g.inputs.get("deleteDefaultRules") for g in groups)
    assert not any(r.inputs["direction"] == "egress" for r in rules(graph))


def test_mtu_is_read_back_from_the_network():
    graph, _ = openstack_layer()
    assert graph.exports["mtu"].value == 1450  # the mock network's MTU, not a constant of ours


def openstack_class(token: str):
    """`openstack:networking/port:Port` -> pulumi_openstack.networking.Port."""
    module, cls = token.split(":")[1].split("/")[0], token.split(":")[2]
    return getattr(getattr(pulumi_openstack, module), cls)


@pytest.mark.parametrize("config", [{"controlPlaneCount": 3, "workerCount": 2, "floatingIpPerNode": True}])
def test_every_taggable_openstack_resource_carries_the_cluster_tag(config):
    graph, _ = openstack_layer({**config, "clusterName": "k1"})
    seen = set()
    for r in graph:
        if not r.type.startswith("openstack:"):
            continue
        params = inspect.signature(openstack_class(r.type)._internal_init).parameters
        if "tags" in params:
            seen.add(r.type)
            assert r.inputs.get("tags") == [naming.cluster_tag("k1")], r.name
        else:  # untaggable ones carry the cluster in their name
            named = "k1" in r.inputs.get("name", "")
            assert named or r.type.endswith(("SecGroupRule", "RouterInterface")), r.name
    assert len(seen) >= 10  # network, subnet, router, groups, ports, FIPs, servers, LB objects
