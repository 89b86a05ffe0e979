"""Calico: the CRD chart (helm.v3.Chart), the operator release and the operator.tigera.io/v1 Installation.

kubernetes-validate has no schema for custom resources, so the Installation is checked
with jsonschema against INSTALLATION_V1 below: the fields and enums that Calico 3.32
documents for Installation, transcribed from tigera/docs
calico_versioned_docs/version-3.32/reference/installation/_api.mdx (commit 4976674b33e9,
generated from tigera/operator api/v1). The objects we set are spelled out field by field
(additionalProperties false); the spec objects we never set are listed by name only.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml
from harness import run_program, unsecret
from test_kubernetes_program import (
    CHART,
    CRD,
    FAKE_CALICO_CRDS,
    HELM_TEMPLATE,
    INSTALLATION,
    PROVIDER,
    RELEASE,
    _ints,
    addons_program,
    graph,
    manifest,
    render_crd_chart,
)

from components import versions as v
from components.config import parse_config
from components.kubernetes import calico

OBJ = {"type": "object"}
ENABLED = {"enum": ["Enabled", "Disabled"]}
_API = "tigera/docs calico_versioned_docs/version-3.32/reference/installation/_api.mdx"

IP_POOL = {  # _API "### IPPool"
    "type": "object",
    "additionalProperties": False,
    "required": ["cidr"],
    "properties": {
        "name": {"type": "string"},
        "cidr": {"type": "string"},
        "encapsulation": {"enum": ["IPIPCrossSubnet", "IPIP", "VXLAN", "VXLANCrossSubnet", "None"]},
        "natOutgoing": ENABLED,
        "nodeSelector": {"type": "string"},
        "blockSize": {"type": "integer"},
        "disableBGPExport": {"type": "boolean"},
        "disableNewAllocations": {"type": "boolean"},
        "allowedUses": {"type": "array", "items": {"enum": ["Workload", "Tunnel", "LoadBalancer"]}},
        "assignmentMode": {"enum": ["Automatic", "Manual"]},
    },
}
NODE_ADDRESS_AUTODETECTION = {  # _API "### NodeAddressAutodetection": "At most one option can be used"
    "type": "object",
    "additionalProperties": False,
    "maxProperties": 1,
    "properties": {
        "firstFound": {"type": "boolean"},
        "kubernetes": {"enum": ["NodeInternalIP"]},
        "interface": {"type": "string"},
        "skipInterface": {"type": "string"},
        "canReach": {"type": "string"},
        "cidrs": {"type": "array", "items": {"type": "string"}},
    },
}
CALICO_NETWORK = {  # _API "### CalicoNetworkSpec"
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "linuxDataplane": {"enum": ["Iptables", "BPF", "VPP", "Nftables"]},
        "windowsDataplane": {"type": "string"},
        "bpfNetworkBootstrap": ENABLED,
        "kubeProxyManagement": ENABLED,
        "bgp": ENABLED,
        "clusterRoutingMode": {"enum": ["BIRD", "Felix"]},
        "ipPools": {"type": "array", "items": IP_POOL},
        "mtu": {"type": "integer"},
        "nodeAddressAutodetectionV4": NODE_ADDRESS_AUTODETECTION,
        "nodeAddressAutodetectionV6": NODE_ADDRESS_AUTODETECTION,
        "hostPorts": ENABLED,
        "multiInterfaceMode": {"enum": ["None", "Multus"]},
        "containerIPForwarding": ENABLED,
        "sysctl": {"type": "array"},
        "linuxPolicySetupTimeoutSeconds": {"type": "integer"},
    },
}
INSTALLATION_SPEC_FIELDS = (  # _API "### InstallationSpec", in the documented order
    "variant",
    "registry",
    "imagePath",
    "imagePrefix",
    "imagePullSecrets",
    "kubernetesProvider",
    "cni",
    "calicoNetwork",
    "typhaAffinity",
    "controlPlaneNodeSelector",
    "controlPlaneTolerations",
    "controlPlaneReplicas",
    "nodeMetricsPort",
    "typhaMetricsPort",
    "flexVolumePath",
    "kubeletVolumePluginPath",
    "nodeUpdateStrategy",
    "componentResources",
    "certificateManagement",
    "tlsCipherSuites",
    "nonPrivileged",
    "calicoNodeDaemonSet",
    "csiNodeDriverDaemonSet",
    "calicoKubeControllersDeployment",
    "typhaDeployment",
    "calicoWindowsUpgradeDaemonSet",
    "calicoNodeWindowsDaemonSet",
    "fipsMode",
    "logging",
    "windowsNodes",
    "serviceCIDRs",
    "azure",
    "proxy",
)
INSTALLATION_V1 = {  # _API "### Installation": "It must be named \"default\""
    "type": "object",
    "additionalProperties": False,
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "operator.tigera.io/v1"},
        "kind": {"const": "Installation"},
        "metadata": {"type": "object", "required": ["name"], "properties": {"name": {"const": "default"}}},
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "properties": {**{f: {} for f in INSTALLATION_SPEC_FIELDS}, "calicoNetwork": CALICO_NETWORK},
        },
        "status": OBJ,
    },
}


def validate_installation(doc: dict) -> None:
    jsonschema.Draft202012Validator(INSTALLATION_V1).validate(doc)


@pytest.mark.parametrize("config", [{}, {"podCidr": "10.244.0.0/16"}, {"kataDedicatedWorkers": True}])
def test_declared_installation_has_only_documented_fields(config):
    validate_installation(manifest(graph(**config), "Installation", "default"))


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d["spec"]["calicoNetwork"].update(
            vxlanMode="Always"
        ),  # a calico/v3 IPPool field, not operator's
        lambda d: d["spec"]["calicoNetwork"]["ipPools"][0].update(encapsulation="Vxlan"),
        lambda d: d["spec"]["calicoNetwork"]["nodeAddressAutodetectionV4"].update(firstFound=True),
        lambda d: d["metadata"].update(name="calico"),
        lambda d: d["spec"].update(calicoNetworks={}),
    ],
)
def test_documented_schema_catches_mistakes(mutate):
    doc = manifest(graph(), "Installation", "default")
    mutate(doc)
    with pytest.raises(jsonschema.ValidationError):
        validate_installation(doc)


def test_installation_spec_for_openstack():
    cfg = parse_config(
        {
            "controlPlaneFlavor": "f",
            "workerFlavor": "f",
            "externalNetwork": "public",
            "allowedCidrs": '["203.0.113.0/24"]',
            "podCidr": "10.200.0.0/16",
        },
        stack="t",
    )
    net = calico.installation_spec(cfg, 1400)["calicoNetwork"]
    assert net["bgp"] == "Disabled"
    assert net["ipPools"] == [
        {
            "name": "default-ipv4-ippool",
            "cidr": "10.200.0.0/16",
            "encapsulation": "VXLAN",
            "natOutgoing": "Enabled",
            "nodeSelector": "all()",
            "blockSize": 26,
            # the operator's own defaults (K1): without them its write-back owns the list
            "allowedUses": ["Workload", "Tunnel"],
            "disableNewAllocations": False,
            "assignmentMode": "Automatic",
        }
    ]
    assert net["mtu"] == 1400 and net["nodeAddressAutodetectionV4"] == {"kubernetes": "NodeInternalIP"}
    assert "mtu" not in calico.installation_spec(cfg, None)["calicoNetwork"]  # auto-detect


# 0: Neutron without the net-mtu extension omits `mtu`, and the provider reads it back as 0.
@pytest.mark.parametrize(("network", "pods"), [(1450, 1400), (1500, 1450), (9000, 8950), (None, None), (0, None)])
def test_pod_mtu_subtracts_the_vxlan_header(network, pods):
    assert calico.pod_mtu(network) == pods


def test_pod_mtu_refuses_a_network_too_small_for_vxlan():
    with pytest.raises(ValueError, match="at least 626"):
        calico.pod_mtu(600)


def test_operator_release_at_the_calico_version_with_one_installation_owner():
    g = graph(calicoVersion="3.32.2")
    (rel,) = [unsecret(r.inputs) for r in g.of_type(RELEASE) if r.plain("chart") == calico.OPERATOR_CHART]
    assert rel["chart"] == calico.OPERATOR_CHART == "tigera-operator"
    # Calico charts carry the tag with its "v" (3.32 docs: `--version v3.32.1`)
    assert rel["version"] == "v3.32.2" and re.fullmatch(r"v\d+\.\d+\.\d+", rel["version"])
    assert rel["repositoryOpts"] == {"repo": v.CALICO_CHART_REPO}
    assert rel["namespace"] == calico.OPERATOR_NAMESPACE and rel["name"] and rel["createNamespace"]
    assert not rel.get("skipAwait"), "the release must be awaited: it is an ordering point"
    assert rel["values"]["installation"] == {"enabled": False}
    assert rel["values"]["manageCRDs"] is False, "the CRD chart is the CRDs' one owner (K2)"
    assert rel["values"]["apiServer"] == {"enabled": False}  # K11, docs/kubernetes.md
    # the operator can escalate roles: never on a worker (docs/security.md)
    assert rel["values"]["nodeSelector"]["node-role.kubernetes.io/control-plane"] == ""
    assert len(g.of_type(INSTALLATION)) == 1
    annotations = g.of_type(INSTALLATION)[0].plain("metadata")["annotations"]
    assert annotations["pulumi.com/patchForce"] == "true"  # K1's safety net


def test_crds_are_rendered_and_applied_server_side_not_kept_in_a_helm_release():
    """The CRD chart's release record would exceed Helm's 1 MiB release Secret (tigera/docs
    PR #2636), so upstream runs `helm template ... | kubectl apply --server-side`: here a
    helm.v3.Chart (the provider's `helm template`) whose CRDs are typed objects, applied
    server-side through the explicit provider, each awaited before the operator release."""
    seen: list[dict] = []
    g = run_program({"calicoVersion": "3.32.2"}, fn=addons_program(),
                    overrides={HELM_TEMPLATE: render_crd_chart(seen)})
    assert not [r for r in g.of_type(RELEASE) if r.plain("chart") == calico.CRD_CHART]
    (opts,) = seen
    assert (opts["chart"], opts["version"], opts["fetch_opts"]["repo"]) == (
        calico.CRD_CHART, "v3.32.2", v.CALICO_CHART_REPO)
    (chart,) = g.of_type(CHART)
    (component,) = g.of_type("katak8s:kubernetes:Calico")
    assert chart.name == f"{component.name}-crds" and chart.parent == component.urn
    crds = g.of_type(CRD)
    assert sorted(r.plain("metadata")["name"] for r in crds) == sorted(
        c["metadata"]["name"] for c in FAKE_CALICO_CRDS)
    (provider,) = g.of_type(PROVIDER)
    (operator,) = [r for r in g.of_type(RELEASE) if r.plain("chart") == "tigera-operator"]
    for crd in crds:
        assert crd.parent == chart.urn and crd.provider.startswith(provider.urn + "::"), crd.name
        assert crd.name == crd.plain("metadata")["name"]  # <plural>.<group>: unique cluster-wide
        assert not crd.plain("metadata").get("annotations", {}).get("pulumi.com/skipAwait"), crd.name
        assert crd.urn in operator.dependencies, f"the operator release does not wait for {crd.name}"
        # A chart that drops a CRD never deletes it, with every IPPool in it (K2).
        assert crd.retain_on_delete, crd.name
        assert crd.plain("metadata")["annotations"]["pulumi.com/patchForce"] == "true"
    # Server-side apply, whatever PULUMI_K8S_ENABLE_SERVER_SIDE_APPLY says in the shell.
    assert provider.plain("enableServerSideApply") == "true"


def test_helm_releases_golden(golden):
    docs = sorted((_ints(unsecret(r.inputs)) for r in graph().of_type(RELEASE)), key=lambda d: d["name"])
    golden("k8s-helm-releases.yaml", yaml.safe_dump_all(docs, sort_keys=True, default_flow_style=False))


CRD_SCHEMA = Path(__file__).parent / "schemas" / "calico-v3.32.1-installation.operator.tigera.io.json"


@pytest.mark.parametrize("config", [{}, {"kataDedicatedWorkers": True}, {"controlPlaneCount": 3}])
def test_installation_passes_calicos_own_strict_crd_schema(config):
    """The CRD's openAPIV3Schema as v3.32.1 ships it, made strict (tests/schemas/README.md)."""
    schema = json.loads(CRD_SCHEMA.read_text())
    inst = manifest(graph(**config), "Installation", "default")
    jsonschema.Draft7Validator(schema).validate(inst)
    typo = copy.deepcopy(inst)
    typo["spec"]["controlPlaneNodeSelectors"] = typo["spec"].pop("controlPlaneNodeSelector")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft7Validator(schema).validate(typo)


def test_calico_kube_controllers_run_on_the_control_planes():
    spec = manifest(graph(), "Installation", "default")["spec"]
    assert spec["controlPlaneNodeSelector"] == {v.CONTROL_PLANE_ROLE: ""}
