"""KubernetesAddons under Pulumi mocks: every object it declares, as the engine would get it.

Each registered `kubernetes:*` resource becomes a manifest (the mock inputs are already
the engine's camelCase; apiVersion/kind come from the type token) and is validated with
kubernetes-validate in strict mode (unknown fields are errors) against every supported
Kubernetes minor. The Installation custom resource is checked against its documented
fields in test_kubernetes_calico.py. Until the whole program imports, the component runs
through `run_program(fn=...)` with a fake cluster (a secret kubeconfig Output, `ready`)
and a fake network (an `mtu` Output), both fed by a real mock resource so that
dependencies exist.
"""

from __future__ import annotations

import functools
import ipaddress
import json
from typing import Any

import kubernetes_validate
import pulumi
import pytest
import yaml
from harness import FAKE_KUBECONFIG, Graph, Registration, run_program, unsecret
from pulumi.runtime import rpc

from components import versions as v
from components.kubernetes import demo

PROVIDER = "pulumi:providers:kubernetes"
RELEASE = "kubernetes:helm.sh/v3:Release"
CHART = "kubernetes:helm.sh/v3:Chart"  # a local component: `helm template`, then typed objects
CRD = "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition"
HELM_TEMPLATE = "kubernetes:helm:template"  # the invoke behind helm.v3.Chart
INSTALLATION = "kubernetes:operator.tigera.io/v1:Installation"
CUSTOM_KINDS = {INSTALLATION}  # no upstream OpenAPI in kubernetes-validate: see test_kubernetes_calico.py
FAKE_MTU = 1450
UNKNOWN = (
    rpc.UNKNOWN
)  # what an unknown input looks like on the wire  # OpenStack's usual VXLAN tenant network MTU


class FakeCluster:
    """The KubeadmCluster interface: .kubeconfig (secret), .api_ready and .ready. Values hang off the
    fake init's stdout, which the mocks leave unknown in preview, like a fresh stack."""

    def __init__(self, init, *, kubeconfig: str = FAKE_KUBECONFIG):
        from pulumi_command import remote

        from components.openstack.target import NodeTarget

        self.api_ready = self.ready = [init]
        self.kubeconfig = pulumi.Output.secret(init.stdout.apply(lambda _: kubeconfig))
        self.first_control_plane = NodeTarget(
            name="dev-cp-0", role="control-plane", index=0, flavor="f", ssh_user="ubuntu", server=init,
            connection=remote.ConnectionArgs(host="10.42.0.10", user="ubuntu"),
            private_ip=pulumi.Output.from_input("10.42.0.10"))
        self.first_scripts = init
        self.api_path: list = []


FAKE_FLOATING_IP = "203.0.113.7"


class FakeNetwork:
    """The ClusterNetwork interface's .mtu (Output[int]) and the ids the cloud controller needs."""

    def __init__(self, source, mtu: int | None = FAKE_MTU):
        self.mtu = source.stdout.apply(lambda _: mtu)
        self.external_network_id = source.stdout.apply(lambda _: "ext-net-id")
        self.subnet_id = source.stdout.apply(lambda _: "node-subnet-id")
        self.rules: dict = {}


class FakeNodes:
    """The NodePool interface's .floating_ips: cp-0's, as a single control plane has."""

    def __init__(self, source):
        self.floating_ips = {"dev-cp-0": FakeFloatingIp(source.stdout.apply(lambda _: FAKE_FLOATING_IP))}


class FakeFloatingIp:
    def __init__(self, address):
        self.address = address


def _fake_crd(plural: str, group: str, kind: str) -> dict[str, Any]:
    """A minimal valid apiextensions.k8s.io/v1 CRD (kubernetes-validate accepts it)."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "names": {"kind": kind, "plural": plural},
            "scope": "Cluster",
            "versions": [{"name": "v1", "served": True, "storage": True,
                          "schema": {"openAPIV3Schema": {"type": "object"}}}],
        },
    }


# What `helm template` of crd.projectcalico.org.v1 renders, in miniature: one CRD of each group.
FAKE_CALICO_CRDS = [
    _fake_crd("installations", "operator.tigera.io", "Installation"),
    _fake_crd("ippools", "crd.projectcalico.org", "IPPool"),
]


def render_crd_chart(seen: list[dict[str, Any]]):
    """Mock of the helm template invoke: records the chart options, returns FAKE_CALICO_CRDS."""

    def call(args) -> dict[str, Any]:
        seen.append(json.loads(args.args["jsonOpts"]))
        return {"result": FAKE_CALICO_CRDS}

    return call


def addons_program(*, mtu: int | None = FAKE_MTU, kubeconfig: str = FAKE_KUBECONFIG):
    def program() -> None:
        from pulumi_command import local

        from components.config import load_config
        from components.deployed import DeployedState
        from components.kubernetes import KubernetesAddons
        from components.openstack.credentials import CloudCredentials

        init = local.Command("fake-kubeadm-init", create="true")
        cfg = DeployedState({}).settle(load_config(), stack="organization/katak8s/dev")
        KubernetesAddons(
            "kubernetes",
            cfg,
            cluster=FakeCluster(init, kubeconfig=kubeconfig),
            network=FakeNetwork(init, mtu),
            nodes=FakeNodes(init),
            credentials=CloudCredentials("cloud-credentials", cfg) if cfg.cloud_credentials else None,
        )

    return program


@functools.lru_cache(maxsize=None)
def _graph(config: tuple[tuple[str, Any], ...], preview: bool = False) -> Graph:
    return run_program(dict(config), preview=preview, fn=addons_program())


def graph(preview: bool = False, **config: Any) -> Graph:
    return _graph(tuple(sorted(config.items())), preview)


CONFIGS = {
    "default": {},
    "dedicated-clh": {"kataDedicatedWorkers": True, "kataHypervisor": "clh", "workerCount": 3},
    "control-planes-only": {"workerCount": 0},
}


def _ints(value: Any) -> Any:
    """Mock inputs carry every number as a float (pulumi-sdk.md §4.4); JSON has one number
    type, so an integral float is the integer the engine sends on."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _ints(x) for k, x in value.items()}
    if isinstance(value, list):
        return [_ints(x) for x in value]
    return value


def api_version_of(type_token: str) -> tuple[str, str]:
    _, group_version, kind = type_token.split(":")
    group, version = group_version.split("/")
    return (version if group == "core" else group_version), kind


def to_manifest(reg: Registration) -> dict[str, Any]:
    api_version, kind = api_version_of(reg.type)
    inputs = _ints(unsecret(reg.inputs))
    assert inputs.pop("apiVersion", api_version) == api_version, reg.name
    assert inputs.pop("kind", kind) == kind, reg.name
    return {"apiVersion": api_version, "kind": kind, **inputs}


def kube_objects(g: Graph) -> list[Registration]:
    """Every Kubernetes object (custom resources only: not the helm.v3.Chart component)."""
    return [r for r in g if r.type.startswith("kubernetes:") and r.custom and r.type != RELEASE]


def manifests(g: Graph) -> list[dict[str, Any]]:
    ms = [to_manifest(r) for r in kube_objects(g)]
    return sorted(ms, key=lambda m: (m["kind"], m["metadata"].get("namespace", ""), m["metadata"]["name"]))


def manifest(g: Graph, kind: str, name: str) -> dict[str, Any]:
    (m,) = [m for m in manifests(g) if m["kind"] == kind and m["metadata"]["name"] == name]
    return m


def by_name(g: Graph, kind: str, name: str) -> Registration:
    (r,) = [r for r in kube_objects(g) if r.type.endswith(f":{kind}") and r.plain("metadata")["name"] == name]
    return r


# --- upstream schema validation -----------------------------------------------------------


def _next_minor(minor: str) -> str:
    major, m = minor.split(".")
    return f"{major}.{int(m) + 1}"


# Every supported minor, plus the next one where kubernetes-validate has its schema: the
# objects must not need changing for the next upgrade (issue #14 asks for 1.37 while the
# supported minors are 1.35 and 1.36).
_SCHEMAS = {x.rsplit(".", 1)[0] for x in kubernetes_validate.utils.all_versions()}
_NEWEST = max(v.KUBERNETES_PATCHES, key=lambda x: tuple(map(int, x.split("."))))
VALIDATED_MINORS = sorted(set(v.KUBERNETES_PATCHES) | ({_next_minor(_NEWEST)} & _SCHEMAS))


def schema_version(minor: str) -> str:
    return v.KUBERNETES_PATCHES.get(minor, f"{minor}.0")


def test_the_next_minor_is_validated_too():
    assert "1.37" in VALIDATED_MINORS  # kubernetes-validate 1.37.0 ships its schema


@pytest.mark.parametrize("scenario", sorted(CONFIGS))
@pytest.mark.parametrize("minor", VALIDATED_MINORS)
def test_every_object_validates_strictly_against_each_supported_minor(scenario, minor):
    checked = []
    for r in kube_objects(graph(**CONFIGS[scenario])):
        if r.type in CUSTOM_KINDS:
            continue
        m = to_manifest(r)
        used = kubernetes_validate.validate(m, schema_version(minor), strict=True)
        assert used == minor, f"kubernetes-validate fell back to the {used} schema for {minor}"
        checked.append(m["kind"])
    budgets = [] if scenario == "control-planes-only" else ["PodDisruptionBudget"]  # one node: none
    assert sorted(set(checked)) == sorted(
        ["Deployment", "Namespace", "NetworkPolicy", "RuntimeClass", "Secret", "Service", "StorageClass", *budgets]
    )


def test_strict_validation_rejects_an_unknown_field():
    """The validator in the loop above really is strict (a typo would not slip through)."""
    m = manifest(graph(), "RuntimeClass", v.KATA_HANDLER)
    broken = {**m, "scheduling": {**m["scheduling"], "nodeSelectors": {"a": "b"}}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, v.KUBERNETES_PATCHES[v.DEFAULT_KUBERNETES_VERSION], strict=True)


@pytest.mark.parametrize("scenario", sorted(CONFIGS))
def test_manifests_golden(golden, scenario):
    docs = manifests(graph(**CONFIGS[scenario]))
    golden(
        f"k8s-manifests-{scenario}.yaml", yaml.safe_dump_all(docs, sort_keys=True, default_flow_style=False)
    )


# --- one explicit provider, secret kubeconfig ----------------------------------------------


def test_every_kubernetes_object_uses_the_explicit_provider():
    """Including the CRDs the Calico CRD chart renders (children of a helm.v3.Chart
    component, which passes its provider on): a real render is mocked here."""
    g = run_program(fn=addons_program(), overrides={HELM_TEMPLATE: render_crd_chart([])})
    (provider,) = g.of_type(PROVIDER)
    objects = [r for r in g if r.type.startswith("kubernetes:") and r.custom]
    # 12 + the two PodDisruptionBudgets (kata-app, CoreDNS) of the 1+2 default stack + the
    # cloud controller's release and Secret + Cinder CSI's release, Secret and StorageClass
    # + kubelet-csr-approver's and metrics-server's releases
    assert len(objects) == 21 + len(FAKE_CALICO_CRDS)
    assert len(g.of_type(CRD)) == len(FAKE_CALICO_CRDS)
    for r in objects:
        assert r.provider.startswith(provider.urn + "::"), (
            f"{r.name} uses {r.provider or 'the default provider'}"
        )
        assert any(a.type.startswith("katak8s:kubernetes:") for a in g.ancestors(r)), (
            f"{r.name} is not inside KubernetesAddons"
        )


def test_provider_keeps_the_kubeconfig_secret_and_a_stable_identity():
    g = graph()
    (provider,) = g.of_type(PROVIDER)
    assert provider.is_secret("kubeconfig")
    assert provider.plain("kubeconfig") == FAKE_KUBECONFIG
    assert provider.plain("clusterIdentifier") == "dev"  # cfg.cluster_name (the stack name here)
    assert "deleteUnreachable" not in provider.inputs  # opt-in only, see provider.py
    (init,) = g.of_type("command:local:Command")
    assert g.depends_on(provider, init)


def test_a_new_kubeconfig_changes_no_object_but_the_provider():
    """cluster_identifier pins the provider's identity; the objects' inputs don't see the
    kubeconfig, so a re-issued one is a provider update, not a cluster-wide replacement."""
    a = graph()
    b = run_program(fn=addons_program(kubeconfig=FAKE_KUBECONFIG.replace("10.42.0.10", "203.0.113.7")))
    assert a.of_type(PROVIDER)[0].inputs != b.of_type(PROVIDER)[0].inputs
    assert {r.urn: r.inputs for r in kube_objects(a)} == {r.urn: r.inputs for r in kube_objects(b)}


def test_an_empty_kubeconfig_is_refused():
    """(Only the provider is declared: a failing kubeconfig fails every object after it.)"""

    def program() -> None:
        from pulumi_command import local

        from components.config import load_config
        from components.kubernetes.provider import cluster_provider

        init = local.Command("fake-kubeadm-init", create="true")
        fake = FakeCluster(init, kubeconfig="")
        cluster_provider("p", load_config(), kubeconfig=fake.kubeconfig, depends_on=fake.ready, parent=None)

    with pytest.raises(Exception, match="kubeconfig output is empty"):
        run_program(fn=program)


# --- ordering --------------------------------------------------------------------------------


def test_crds_then_operator_then_installation_then_workloads():
    g = run_program(fn=addons_program(), overrides={HELM_TEMPLATE: render_crd_chart([])})
    (operator,) = [r for r in g.of_type(RELEASE) if r.plain("chart") == "tigera-operator"]
    (installation,) = g.of_type(INSTALLATION)
    crds = g.of_type(CRD)
    assert len(crds) == len(FAKE_CALICO_CRDS)
    # each CRD directly: they are declared late (after the render), not when the operator is
    assert all(c.urn in operator.dependencies for c in crds)
    assert g.depends_on(installation, operator)
    rc = by_name(g, "RuntimeClass", v.KATA_HANDLER)
    policies = [r for r in kube_objects(g) if r.type.endswith(":NetworkPolicy")]
    ns = by_name(g, "Namespace", demo.NAMESPACE)
    assert g.depends_on(ns, installation)
    assert all(g.depends_on(p, ns) for p in policies)
    for kind, name in (
        ("Deployment", demo.KATA_APP),
        ("Deployment", demo.RUNC_APP),
        ("Deployment", demo.CLIENT),
        ("Service", demo.KATA_APP),
    ):
        w = by_name(g, kind, name)
        assert g.depends_on(w, installation), f"{name} does not wait for Calico"
        assert g.depends_on(w, rc) and all(g.depends_on(w, p) for p in policies), name


def test_installation_waits_for_calico_ready():
    (installation,) = graph().of_type(INSTALLATION)
    annotations = installation.plain("metadata")["annotations"]
    assert annotations["pulumi.com/waitFor"] == "condition=Ready"
    assert int(annotations["pulumi.com/timeoutSeconds"]) >= 600


def test_preview_of_a_fresh_stack_declares_everything_with_an_unknown_kubeconfig():
    """pulumi-kubernetes #3027: Chart v4 fails preview while the kubeconfig is unknown.
    In preview the fake kubeconfig is unknown, as on a fresh stack."""
    g = graph(preview=True)
    (provider,) = g.of_type(PROVIDER)
    assert provider.is_secret("kubeconfig") and provider.plain("kubeconfig") == UNKNOWN
    assert not g.of_type("kubernetes:helm.sh/v4:Chart")
    # the Calico operator, the OpenStack cloud controller, Cinder CSI, kubelet-csr-approver
    # and metrics-server
    assert len(g.of_type(RELEASE)) == 5 and len(g.of_type(CHART)) == 1
    assert len([r for r in g if r.type.startswith("kubernetes:") and r.custom]) == 21


# --- the single handler ----------------------------------------------------------------------


@pytest.mark.parametrize("scenario", sorted(CONFIGS))
def test_one_handler_everywhere_except_the_runc_twin(scenario):
    g = graph(**CONFIGS[scenario])
    rc = manifest(g, "RuntimeClass", v.KATA_HANDLER)
    assert rc["handler"] == rc["metadata"]["name"] == v.KATA_HANDLER
    templates = {
        m["metadata"]["name"]: m["spec"]["template"]["spec"]
        for m in manifests(g)
        if m["kind"] == "Deployment"
    }
    assert set(templates) == {demo.KATA_APP, demo.RUNC_APP, demo.CLIENT}
    assert not [m for m in manifests(g) if m["kind"] == "Pod"], "a bare Pod blocks every drain (F4)"
    for name, spec in templates.items():
        want = None if name == demo.RUNC_APP else v.KATA_HANDLER
        assert spec.get("runtimeClassName") == want, name  # only the twin is on runc


def test_installation_pool_is_the_pod_cidr_and_mtu_follows_the_network():
    g = graph(podCidr="10.244.0.0/16")
    spec = manifest(g, "Installation", "default")["spec"]["calicoNetwork"]
    assert [p["cidr"] for p in spec["ipPools"]] == ["10.244.0.0/16"]
    assert spec["mtu"] == FAKE_MTU - v.VXLAN_OVERHEAD == 1400
    g2 = run_program(fn=addons_program(mtu=9000))
    assert manifest(g2, "Installation", "default")["spec"]["calicoNetwork"]["mtu"] == 8950


def test_without_sample_workloads_only_calico_the_runtime_class_and_system_budgets():
    kinds = sorted(m["kind"] for m in manifests(graph(sampleWorkloads=False)))
    assert kinds == ["Installation", "PodDisruptionBudget", "RuntimeClass", "Secret", "Secret", "StorageClass"]


def admits(policy: dict[str, Any], cidr: str) -> bool:
    """True when some ipBlock of the policy covers `cidr` without excepting it."""
    net = ipaddress.ip_network(cidr)
    for rule in policy["spec"].get("egress", []) + policy["spec"].get("ingress", []):
        for peer in rule.get("to", []) + rule.get("from", []):
            block = peer.get("ipBlock")
            if (
                block
                and net.subnet_of(ipaddress.ip_network(block["cidr"]))
                and not any(net.subnet_of(ipaddress.ip_network(e)) for e in block.get("except", []))
            ):
                return True
    return False


def test_no_policy_admits_the_metadata_service():
    """Every ipBlock that covers 169.254.169.254 must carry it in `except`. The demo has
    no ipBlock today; the check is exercised on rules that would break it."""
    policies = [m for m in manifests(graph()) if m["kind"] == "NetworkPolicy"]
    assert len(policies) == 4
    assert not [p["metadata"]["name"] for p in policies if admits(p, demo.METADATA_CIDR)]
    world = {"spec": {"egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}]}}
    assert admits(world, demo.METADATA_CIDR)
    world["spec"]["egress"][0]["to"][0]["ipBlock"]["except"] = ["169.254.0.0/16"]
    assert not admits(world, demo.METADATA_CIDR)


def test_whole_program_wires_the_addons_to_the_real_cluster_and_network():
    """Integration: the addons read the real KubeadmCluster/ClusterNetwork outputs."""
    g = run_program()
    (provider,) = g.of_type(PROVIDER)
    assert provider.is_secret("kubeconfig") and "clusters:" in provider.plain("kubeconfig")
    spec = manifest(g, "Installation", "default")["spec"]["calicoNetwork"]
    assert spec.get("mtu") in (None, *range(576, 9001))
    assert all(r.provider.startswith(provider.urn + "::") for r in kube_objects(g) + g.of_type(RELEASE))
    (cluster,) = [r for r in g if r.type == "katak8s:cluster:KubeadmCluster"]
    inside = {d.urn for d in g.descendants(cluster)}
    assert inside & set(provider.dependencies), "the provider does not wait for the API"
    # Calico installs while workers join; only the samples (kata pods) wait for the joins.
    join = g.named("dev-worker-1-kubeadm-join")
    assert not g.depends_on(provider, join)
    assert g.depends_on(by_name(g, "Deployment", demo.KATA_APP), join)
    installation = by_name(g, "Installation", "default")
    network = [r for r in g if r.type == "openstack:networking/network:Network"]
    assert network and g.depends_on(installation, network[0]), "the MTU is not read from the network"
