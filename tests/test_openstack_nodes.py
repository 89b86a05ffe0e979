"""NodePool and SshAccess: counts, servers, SSH reachability, secrets and stability."""

from __future__ import annotations

from collections import Counter

import grpc
import pytest
import yaml
from harness import unsecret
from pulumi.runtime.sync_await import _sync_await
from test_openstack_support import (
    T_FIP,
    T_FLAVOR,
    T_KEY,
    T_PORT,
    T_RULE,
    T_SERVER,
    assert_valid_cloud_config,
    openstack_layer,
    strings_inside_secrets,
    strings_outside_secrets,
)

from components import naming
from components.openstack import nodes

CP, W = naming.CONTROL_PLANE, naming.WORKER
NO_TRAITS = {T_FLAVOR: lambda args: {"extraSpecs": {}}}
SUPPLIED_KEY = ("-----BEGIN OPENSSH PRIVATE KEY-----\nkatak8s-test-supplied-key\n"
                "-----END OPENSSH PRIVATE KEY-----")
PRIVATE_MARKERS = ("private key of", "PRIVATE KEY", "katak8s-test-supplied-key")


@pytest.mark.parametrize("cps", [1, 3])
@pytest.mark.parametrize("workers", [0, 2, 50])
@pytest.mark.parametrize("jump", ["dedicated", "first-control-plane"])
def test_resource_counts(cps, workers, jump):
    graph, _ = openstack_layer({"controlPlaneCount": cps, "workerCount": workers, "jumpHost": jump})
    ha, n, own = cps > 1, cps + workers, int(jump == "dedicated")
    assert Counter(r.type for r in graph) == {k: c for k, c in {
        "katak8s:access:SshAccess": 1, "katak8s:network:ClusterNetwork": 1,
        "katak8s:nodes:NodePool": 1, "katak8s:endpoint:ApiEndpoint": 1, "katak8s:nodes:JumpHost": 1,
        T_KEY: 1 + n + own,  # the login key + one host key per node (and the jump host)
        "openstack:compute/keypair:Keypair": 1,
        "openstack:networking/network:Network": 1, "openstack:networking/subnet:Subnet": 1,
        "openstack:networking/router:Router": 1, "openstack:networking/routerInterface:RouterInterface": 1,
        "openstack:networking/secGroup:SecGroup": 3, T_RULE: 22 + (2 if ha else 0),  # NodePorts: 2
        "openstack:compute/serverGroup:ServerGroup": 2, T_PORT: n + own, T_SERVER: n + own,
        # At most two floating IPs: the jump host's and the API endpoint's.
        T_FIP: 2 if own else 1 + (1 if ha else 0),
        "openstack:loadbalancer/loadBalancer:LoadBalancer": int(ha),
        "openstack:loadbalancer/listener:Listener": int(ha), "openstack:loadbalancer/pool:Pool": int(ha),
        "openstack:loadbalancer/monitor:Monitor": int(ha),
        "openstack:loadbalancer/member:Member": cps if ha else 0,
    }.items() if c}


def test_servers_ports_and_server_groups():
    graph, _ = openstack_layer({"controlPlaneCount": 3, "workerCount": 2, "clusterName": "k1"})
    for role, flavor, count in ((CP, "m1.large", 3), (W, "m1.xlarge", 2)):
        group = graph.named(f"nodes-{role}").inputs
        assert group == {"name": f"k1-{role}", "policies": "soft-anti-affinity"}
        for i in range(count):
            name = naming.node_name("k1", role, i)
            server = graph.named(name)
            s = server.inputs
            assert s["name"] == name and s["flavorName"] == flavor
            assert s["imageId"] == "<id of image ubuntu-24.04>" and "blockDevices" not in s
            assert s["keyPair"] == "k1-ssh"
            assert s["networks"] == [{"port": f"<id of {name}-port>"}]
            assert s["schedulerHints"] == [{"group": f"<id of nodes-{role}>"}]
            assert s["metadata"] == naming.cluster_metadata("k1", role)
            # A refreshed or changed image never rebuilds or replaces a live node.
            assert set(server.ignore_changes) >= {"imageId", "blockDevices"}
            assert not {"imageId", "blockDevices"} & set(server.replace_on_changes)
            assert server.delete_before_replace  # its port can serve one server at a time
            deps = {graph.by_urn[u].name for u in server.dependencies}
            assert {"network-router-interface", "access-keypair"} <= deps
            port = graph.named(f"{name}-port").inputs
            # Only the jump host's port is in the jump-host group, the nodes' SSH source.
            assert port["securityGroupIds"] == [f"<id of network-{role}>"]
            assert port["fixedIps"] == [{"subnetId": "<id of network-subnet>"}]
            assert port["networkId"] == "<id of network-net>"


def test_boot_volume_replaces_the_image_disk():
    graph, _ = openstack_layer({"bootVolumeSize": 40, "workerCount": 1})
    s = graph.named("dev-worker-0").inputs
    assert "imageId" not in s
    assert s["blockDevices"] == [{"uuid": "<id of image ubuntu-24.04>", "sourceType": "image",
                                  "destinationType": "volume", "volumeSize": 40, "bootIndex": 0,
                                  "deleteOnTermination": True}]


def test_an_image_id_pins_the_image():
    image = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"
    graph, _ = openstack_layer({"image": image, "workerCount": 1})
    assert {graph.named(n).inputs["imageId"] for n in ("dev-cp-0", "dev-worker-0")} == {image}


LEGACY = {"jumpHost": "first-control-plane"}
JUMP = "dev-jump-host"


@pytest.mark.parametrize("cps,fips", [(3, {f"{JUMP}-fip", "endpoint-fip"}), (1, {f"{JUMP}-fip", "dev-cp-0-fip"})])
def test_only_the_jump_host_and_the_api_endpoint_have_floating_ips(cps, fips):
    graph, _ = openstack_layer({"controlPlaneCount": cps, "workerCount": 3})
    assert {r.name for r in graph.of_type(T_FIP)} == fips
    fip = graph.named(f"{JUMP}-fip").inputs
    assert fip["portId"] == f"<id of {JUMP}-port>" and fip["pool"] == "public"
    assert graph.exports["jump_host"].value == f"<floating IP of {JUMP}-fip>"
    assert graph.exports["public_host"].value == ("<floating IP of dev-cp-0-fip>" if cps == 1 else
                                                  "<floating IP of endpoint-fip>")


def test_the_jump_host_is_no_cluster_member_and_only_sshd_is_open_on_it(tmp_path):
    graph, _ = openstack_layer({"workerCount": 1, "jumpHostFlavor": "m1.tiny"})
    server = graph.named(JUMP)
    assert server.inputs["flavorName"] == "m1.tiny" and "schedulerHints" not in server.inputs
    assert server.inputs["metadata"] == naming.cluster_metadata("dev")  # no role: no cluster member
    assert graph.named(f"{JUMP}-port").inputs["securityGroupIds"] == ["<id of network-jump-host>"]
    jump_rules = [r for r in graph.of_type(T_RULE) if r.inputs["securityGroupId"] == "<id of network-jump-host>"]
    assert {(r.inputs["portRangeMin"], r.inputs["remoteIpPrefix"]) for r in jump_rules} == {(22, "203.0.113.0/24")}
    text = unsecret(server.inputs["userData"])
    assert "MaxStartups 128:30:256" in text and nodes.cloudinit.SSHD_DROPIN in text
    assert_valid_cloud_config(text, tmp_path)


def test_a_stack_that_keeps_its_first_control_plane_as_jump_host_is_unchanged():
    graph, _ = openstack_layer({"controlPlaneCount": 3, "workerCount": 3, **LEGACY})
    fips = {r.name: r.inputs for r in graph.of_type(T_FIP)}
    assert set(fips) == {"dev-cp-0-fip", "endpoint-fip"}
    assert graph.exports["jump_host"].value == "<floating IP of dev-cp-0-fip>"
    assert graph.named("dev-cp-0-port").inputs["securityGroupIds"] == [
        "<id of network-control-plane>", "<id of network-jump-host>"]
    conns = connections(graph)
    assert "proxy" not in conns.pop("dev-cp-0")
    assert {c["proxy"]["host"] for c in conns.values()} == {"<floating IP of dev-cp-0-fip>"}


def connections(graph):
    return graph.exports["connections"].value


def test_every_node_is_reached_through_the_jump_host():
    graph, _ = openstack_layer({"controlPlaneCount": 3, "workerCount": 2, "sshUser": "admin"})
    conns = connections(graph)
    assert graph.exports["connections"].secret  # they hold the private key
    dial = {"user": "admin", "dial_error_limit": nodes.DIAL_ERROR_LIMIT,
            "per_dial_timeout": nodes.PER_DIAL_TIMEOUT}
    host_key = {r.name.removesuffix("-host-key"): r.outputs["publicKeyOpenssh"]
                for r in graph.of_type(T_KEY) if r.name.endswith("-host-key")}
    assert set(conns) == {"dev-cp-0", "dev-cp-1", "dev-cp-2", "dev-worker-0", "dev-worker-1"}
    for name, conn in conns.items():
        assert conn["host"] == f"<fixed IP of {name}-port>" == graph.exports["private_ips"].value[name]
        assert conn["host_key"] == host_key[name] and dial.items() <= conn.items()
        proxy = conn["proxy"]
        assert proxy["host"] == f"<floating IP of {JUMP}-fip>" and proxy["host_key"] == host_key[JUMP]
        assert dial.items() <= proxy.items() and proxy["private_key"] == conn["private_key"]


def test_connections_wait_for_their_server():
    _, built = openstack_layer({"workerCount": 1})
    pool = built["nodes"]
    worker = pool.workers[0]
    waits_for = _sync_await(worker.connection.host.resources())
    assert worker.server in waits_for
    assert pool.jump.server in _sync_await(worker.connection.proxy.host.resources())


def test_floating_ip_per_node_connects_directly_only_without_a_dedicated_jump_host():
    graph, _ = openstack_layer({"floatingIpPerNode": True, "workerCount": 2, **LEGACY})
    assert {r.name for r in graph.of_type(T_FIP)} == {"dev-cp-0-fip", "dev-worker-0-fip", "dev-worker-1-fip"}
    for name, conn in connections(graph).items():
        assert conn["host"] == f"<floating IP of {name}-fip>" and "proxy" not in conn
    graph, _ = openstack_layer({"floatingIpPerNode": True, "workerCount": 2})
    assert {r.name for r in graph.of_type(T_FIP)} == {f"{JUMP}-fip", "dev-cp-0-fip", "dev-worker-0-fip",
                                                      "dev-worker-1-fip"}
    assert {c["proxy"]["host"] for c in connections(graph).values()} == {f"<floating IP of {JUMP}-fip>"}


def test_user_data_pins_the_host_key_and_passes_cloud_init_schema(tmp_path):
    graph, _ = openstack_layer({"workerCount": 1})
    server = graph.named("dev-worker-0")
    assert server.is_secret("userData")
    text = server.plain("userData")
    doc = yaml.safe_load(text)
    key = graph.named("dev-worker-0-host-key").outputs
    assert doc["hostname"] == "dev-worker-0"
    assert doc["ssh_keys"] == {"ed25519_private": key["privateKeyOpenssh"],
                               "ed25519_public": key["publicKeyOpenssh"].strip()}
    assert connections(graph)["dev-worker-0"]["host_key"] == key["publicKeyOpenssh"]
    assert_valid_cloud_config(text, tmp_path)


@pytest.mark.parametrize("config", [{}, {"sshPrivateKey": SUPPLIED_KEY}], ids=["generated", "supplied"])
def test_private_keys_appear_only_as_secrets(config):
    graph, built = openstack_layer({"controlPlaneCount": 3, "workerCount": 2, **config})
    leaks = [(r.name, path) for r in graph for path, s in strings_outside_secrets(r.inputs)
             if any(m in s for m in PRIVATE_MARKERS)]
    assert not leaks
    hidden = [s for r in graph for s in strings_inside_secrets(r.inputs)]
    assert sum("private key of" in s for s in hidden) == 6  # every host key (5 nodes, the jump host), in user data
    for key in graph.of_type(T_KEY):  # and pulumi_tls keeps them secret in state
        assert {"privateKeyOpenssh", "privateKeyPem"} <= set(key.additional_secret_outputs)
    assert _sync_await(built["access"].private_key.is_secret())
    assert graph.exports["connections"].secret


def test_supplied_key_is_used_and_its_public_half_registered():
    graph, built = openstack_layer({"sshPrivateKey": SUPPLIED_KEY})
    assert not graph.of_type(T_KEY) or all(r.name.endswith("-host-key") for r in graph.of_type(T_KEY))
    keypair = graph.named("access-keypair")
    assert keypair.inputs == {"name": "dev-ssh", "publicKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5supplied "
                                                              "katak8s-supplied-key\n"}
    assert keypair.delete_before_replace
    assert connections(graph)["dev-cp-0"]["private_key"] == SUPPLIED_KEY + "\n"
    assert not _sync_await(built["access"].public_key.is_secret())


def test_generated_key_is_ed25519():
    graph, _ = openstack_layer()
    assert graph.named("access-key").inputs == {"algorithm": "ED25519"}
    public = graph.named("access-key").outputs["publicKeyOpenssh"]
    assert graph.named("access-keypair").inputs["publicKey"] == public


def test_flavor_without_nested_virt_hint_warns_once_per_flavor():
    graph, _ = openstack_layer({"workerFlavor": "m1.large"}, overrides=NO_TRAITS)
    warnings = [m for level, m in graph.logs if level == "warning" and "nested virtualization" in m]
    assert len(warnings) == 1 and "'m1.large' (control-plane, worker)" in warnings[0]
    assert "trait:HW_CPU_X86_VMX" in warnings[0]
    ok, _ = openstack_layer()  # the default mock flavor requires HW_CPU_X86_VMX
    assert not [m for level, m in ok.logs if level == "warning"]


@pytest.mark.parametrize("specs, hinted", [
    ({"trait:HW_CPU_X86_VMX": "required"}, True),
    ({"trait:HW_CPU_X86_AMD_SVM": "required"}, True),
    ({"trait:HW_CPU_X86_VMX": "forbidden"}, False),
    ({"hw:cpu_mode": "host-passthrough"}, True),
    ({"aggregate_instance_extra_specs:nested": "true"}, True),
    ({"hw:cpu_policy": "dedicated", "hw:mem_page_size": "large"}, False),
    ({}, False),
    (None, False),
])
def test_nested_virt_hints(specs, hinted):
    assert bool(nodes.nested_virt_hints(specs)) is hinted


def snapshot(graph):
    return {r.urn: (r.inputs, sorted(r.dependencies), r.replace_on_changes, r.delete_before_replace)
            for r in graph}


def test_evaluating_twice_gives_identical_inputs():
    config = {"controlPlaneCount": 3, "workerCount": 2}
    assert snapshot(openstack_layer(config)[0]) == snapshot(openstack_layer(config)[0])


@pytest.mark.parametrize("cps", [1, 3])
def test_adding_a_worker_changes_no_existing_resource(cps):
    before = snapshot(openstack_layer({"controlPlaneCount": cps, "workerCount": 2})[0])
    after = snapshot(openstack_layer({"controlPlaneCount": cps, "workerCount": 3})[0])
    assert {u: after[u] for u in before} == before
    new = {u.rsplit("::", 1)[1] for u in set(after) - set(before)}
    assert new == {"dev-worker-2", "dev-worker-2-port", "dev-worker-2-host-key"}


def test_versions_and_runtime_never_touch_the_openstack_layer():
    base = snapshot(openstack_layer({"workerCount": 1})[0])
    for change in ({"kubernetesVersion": "1.35"}, {"containerRuntime": "crio"}, {"kataHypervisor": "clh"}):
        assert snapshot(openstack_layer({"workerCount": 1, **change})[0]) == base, change


def test_private_ips_come_from_the_ports():
    graph, _ = openstack_layer({"workerCount": 1})
    assert graph.exports["private_ips"].value == {"dev-cp-0": "<fixed IP of dev-cp-0-port>",
                                                  "dev-worker-0": "<fixed IP of dev-worker-0-port>"}
    assert unsecret(graph.named("dev-cp-0-fip").inputs)["portId"] == "<id of dev-cp-0-port>"


def test_a_pem_key_is_read_as_pem():
    seen: list[dict] = []

    def record(args):
        seen.append(dict(args.args))
        return {}

    pem = "-----BEGIN RSA PRIVATE KEY-----\nkatak8s-test-supplied-key\n-----END RSA PRIVATE KEY-----"
    graph, _ = openstack_layer({"sshPrivateKey": pem},
                               overrides={"tls:index/getPublicKey:getPublicKey": record})
    assert [set(a) for a in seen] == [{"privateKeyPem"}] and seen[0]["privateKeyPem"] == pem + "\n"
    assert graph.named("access-keypair").inputs["publicKey"].startswith("ssh-ed25519 ")


def test_a_forbidden_flavor_lookup_only_warns():
    """review-pulumi F10: clouds that forbid listing extra specs make the lookup fail; the
    hint must never fail a preview."""
    class Forbidden(grpc.RpcError):  # what the engine answers when the provider's Invoke fails
        def code(self):
            return grpc.StatusCode.UNKNOWN

        def details(self):
            return "Policy doesn't allow os_compute_api:os-flavor-extra-specs:index to be performed."

    def forbidden(args):
        raise Forbidden()

    graph, _ = openstack_layer(overrides={T_FLAVOR: forbidden})
    warnings = [m for level, m in graph.logs if level == "warning"]
    assert len(warnings) == 2 and "could not look up flavor 'm1.large' (control-plane)" in warnings[0]
    assert all("os-flavor-extra-specs" in w for w in warnings)
    assert graph.of_type("openstack:compute/instance:Instance"), "the servers are still declared"


def test_the_jump_host_boots_from_a_volume_where_the_nodes_do():
    graph, _ = openstack_layer({"bootVolumeSize": 40})
    s = graph.named(JUMP).inputs
    assert "imageId" not in s and s["blockDevices"][0]["volumeSize"] == 40
