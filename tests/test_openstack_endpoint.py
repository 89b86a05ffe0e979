"""ApiEndpoint: an Octavia load balancer in HA, the first control plane otherwise."""

from __future__ import annotations

import pytest
from harness import OCTAVIA_PROBE, ProviderError, run_program
from test_openstack_support import T_FIP, openstack_layer

from components import versions as v
from components.config import ConfigError

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
    assert {r.name for r in graph.of_type(T_FIP)} == {"k1-jump-host-fip", "endpoint-fip"}
    assert built["endpoint"].members and len(built["endpoint"].members) == 3


def test_members_follow_the_control_planes_only():
    small, _ = openstack_layer({"controlPlaneCount": 3, "workerCount": 0})
    large, _ = openstack_layer({"controlPlaneCount": 3, "workerCount": 5})
    lb_inputs = {r.urn: r.inputs for r in small if r.type.startswith(LB)}
    assert lb_inputs == {r.urn: r.inputs for r in large if r.type.startswith(LB)}


# --- Octavia is checked at preview, before any server (issue #12) --------------------------

def _probe(answer):
    calls = []

    def probe(args):
        calls.append(args.args)
        return answer()

    return calls, {OCTAVIA_PROBE: probe}


def _raise(message):
    def answer():
        raise ProviderError(message)
    return answer


def test_ha_without_octavia_is_refused_before_any_resource():
    calls, overrides = _probe(_raise("Error creating OpenStack loadbalancer client: No suitable endpoint "
                                     "could be found in the service catalog."))
    with pytest.raises(ConfigError, match="katak8s:controlPlaneCount: 3 control planes need the Octavia") as err:
        run_program({"controlPlaneCount": 3}, overrides=overrides)
    assert calls and not [r for r in err.value.graph if r.type.startswith(("openstack:", "command:"))]


@pytest.mark.parametrize("message", [
    "Policy doesn't allow os_load-balancer_api:flavor:get_all to be performed.",
    "Error creating OpenStack loadbalancer client: Authentication failed",  # wrapped like a missing service
])
def test_a_probe_that_cannot_decide_only_warns(message):
    _, overrides = _probe(_raise(message))
    graph = run_program({"controlPlaneCount": 3}, overrides=overrides)
    assert any("could not check for Octavia" in m for level, m in graph.logs if level == "warning")
    assert graph.of_type("openstack:loadbalancer/loadBalancer:LoadBalancer")


def test_one_control_plane_never_asks_for_octavia():
    calls, overrides = _probe(_raise("Error creating OpenStack loadbalancer client: No suitable endpoint "
                                     "could be found in the service catalog."))
    run_program({"controlPlaneCount": 1}, overrides=overrides)
    assert calls == []
