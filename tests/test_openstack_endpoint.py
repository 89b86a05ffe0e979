"""ApiEndpoint: an Octavia load balancer in HA, the first control plane otherwise."""

from __future__ import annotations

from test_openstack_support import T_FIP, openstack_layer

from components import versions as v

LB = "openstack:loadbalancer/"


def test_single_control_plane_is_its_own_endpoint():
    graph, built = openstack_layer({"controlPlaneCount": 1, "workerCount": 2})
    assert not [r for r in graph if r.type.startswith(LB)]
    assert graph.exports["public_host"].value == "<floating IP of dev-cp-0-fip>"
    assert graph.exports["private_host"].value == "<fixed IP of dev-cp-0-port>"
    assert built["endpoint"].port == v.API_PORT == 6443


def test_ha_load_balancer_wiring():
    graph, built = openstack_layer({"controlPlaneCount": 3, "workerCount": 1, "clusterName": "k1",
                                    "allowedCidrs": ["198.51.100.0/24"]})
    lb = graph.named("endpoint-lb").inputs
    assert lb["vipSubnetId"] == "<id of network-subnet>" and lb["loadbalancerProvider"] == "amphora"
    listener = graph.named("endpoint-listener").inputs
    assert (listener["loadbalancerId"], listener["protocol"], listener["protocolPort"]) == (
        "<id of endpoint-lb>", "TCP", 6443)
    # clients: allowedCidrs, plus the nodes, which reach controlPlaneEndpoint (the VIP)
    assert listener["allowedCidrs"] == ["10.42.0.0/24", "198.51.100.0/24"]
    # quiet `kubectl logs -f` / exec sessions through the VIP outlive Octavia's 50 s default
    assert listener["timeoutClientData"] == listener["timeoutMemberData"] == 3_600_000
    pool = graph.named("endpoint-pool").inputs
    assert (pool["listenerId"], pool["protocol"], pool["lbMethod"]) == ("<id of endpoint-listener>", "TCP",
                                                                       "ROUND_ROBIN")
    monitor = graph.named("endpoint-monitor").inputs
    assert monitor["poolId"] == "<id of endpoint-pool>" and monitor["type"] == "TCP"
    assert monitor["timeout"] < monitor["delay"]
    members = sorted((r.inputs["address"], r.inputs["protocolPort"], r.inputs["subnetId"], r.inputs["poolId"])
                     for r in graph.of_type(LB + "member:Member"))
    assert members == [(f"<fixed IP of k1-cp-{i}-port>", 6443, "<id of network-subnet>",
                        "<id of endpoint-pool>") for i in range(3)]
    fip = graph.named("endpoint-fip")
    assert fip.inputs["portId"] == "<VIP port of endpoint-lb>" and fip.inputs["pool"] == "public"
    assert graph.named("network-router-interface").urn in fip.dependencies
    assert graph.exports["public_host"].value == "<floating IP of endpoint-fip>"
    assert graph.exports["private_host"].value == "<VIP of endpoint-lb>"
    # cp-0 keeps its own floating IP as the SSH jump host; the workers get none
    assert {r.name for r in graph.of_type(T_FIP)} == {"k1-cp-0-fip", "endpoint-fip"}
    assert built["endpoint"].members and len(built["endpoint"].members) == 3


def test_members_follow_the_control_planes_only():
    small, _ = openstack_layer({"controlPlaneCount": 3, "workerCount": 0})
    large, _ = openstack_layer({"controlPlaneCount": 3, "workerCount": 5})
    lb_inputs = {r.urn: r.inputs for r in small if r.type.startswith(LB)}
    assert lb_inputs == {r.urn: r.inputs for r in large if r.type.startswith(LB)}
