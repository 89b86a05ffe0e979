"""scripts/check_charts.py against a fake helm: the charts are asked for at the pinned
version with the program's values, and each way a chart can disagree with the program
fails with a message naming chart, version and problem (review-pulumi F9)."""

from __future__ import annotations

import copy
import io
import json
import subprocess
from pathlib import Path

import pytest
import yaml

from components import versions as v
from components.kubernetes import calico
from components.kubernetes import cloud_controller as cc
from scripts import check_charts

SCHEMA = json.loads((Path(__file__).parent / "schemas" / "calico-v3.32.1-installation.operator.tigera.io.json")
                    .read_text())
VERSION = f"v{v.DEFAULT_CALICO_VERSION}"


def _crd(name: str, schema: dict | None = None) -> dict:
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": {"name": name},
            "spec": {"versions": [{"name": "v1", "served": True, "storage": True,
                                   "schema": {"openAPIV3Schema": schema or {"type": "object"}}}]}}


class FakeHelm:
    def __init__(self) -> None:
        schema = {k: val for k, val in SCHEMA.items() if k not in ("$schema", "title")}
        self.crds = [_crd(n) for n in check_charts.NEEDED_CRDS if not n.startswith("installations")]
        self.crds.append(_crd("installations.operator.tigera.io", schema))
        self.operator = [
            {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "tigera-operator"},
             "spec": {"template": {"spec": {
                 "nodeSelector": {"kubernetes.io/os": "linux", v.CONTROL_PLANE_ROLE: ""},
                 "containers": [{"name": "tigera-operator", "command": ["operator"],
                                 "args": ["-manage-crds=false"]}]}}}},
        ]
        self.occm_broken = None  # applied to every rendered cloud controller
        self.csi_broken = None  # and to every rendered Cinder CSI
        self.approver_broken = None  # and to kubelet-csr-approver's / metrics-server's documents
        self.metrics_broken = None
        self.calls: list[list[str]] = []
        self.values: list[dict] = []
        self.fail: str | None = None

    def __call__(self, argv, **kw):
        assert kw["timeout"] and kw["check"] is False
        self.calls.append(list(argv))
        if self.fail:
            return subprocess.CompletedProcess(argv, 1, "", self.fail)
        if "--values" in argv:
            self.values.append(yaml.safe_load(Path(argv[argv.index("--values") + 1]).read_text()))
        # each chart in miniature, then the breakage a test asked for
        charts = {v.CSR_APPROVER_CHART: (approver_chart, self.approver_broken),
                  v.METRICS_SERVER_CHART: (metrics_chart, self.metrics_broken),
                  v.CINDER_CSI_CHART: (csi_chart, self.csi_broken),
                  v.CLOUD_PROVIDER_CHART: (occm_chart, self.occm_broken)}
        if argv[3] in charts:
            render, broken = charts[argv[3]]
            docs = render(self.values[-1])
            if broken:
                broken(docs)
        else:
            docs = self.crds if argv[3] == calico.CRD_CHART else self.operator
        return subprocess.CompletedProcess(argv, 0, yaml.safe_dump_all(docs), "")


def csi_chart(values: dict) -> list[dict]:
    """templates/controllerplugin-deployment.yaml, nodeplugin-daemonset.yaml and storageclass.yaml
    of openstack-cinder-csi-2.36.0, in miniature (chart defaults beside)."""
    secret = values.get("secret", {"enabled": False, "hostMount": True, "filename": "cloud.conf"})
    plugin = values.get("csi", {}).get("plugin", {})

    def workload(kind: str, part: str, extra_env: list[dict]) -> dict:
        conf = plugin.get(part, {})
        volume = {"name": "cloud-config", "secret": {"secretName": secret.get("name")}} if secret["enabled"] \
            else {"name": "cloud-config", "hostPath": {"path": "/etc/kubernetes"}}
        return {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": f"csi-cinder-{part.lower()}"},
                "spec": {"template": {"metadata": {"annotations": conf.get("podAnnotations", {})},
                                      "spec": {"nodeSelector": conf.get("nodeSelector", {}),
                                               "containers": [{"name": "cinder-csi-plugin", "env": [
                                                   {"name": "CLOUD_CONFIG",
                                                    "value": f"/etc/config/{secret.get('filename')}"},
                                                   *extra_env]}],
                                               "volumes": [volume]}}}}

    docs = [workload("Deployment", "controllerPlugin",
                     [{"name": "CLUSTER_NAME", "value": values.get("clusterID", "kubernetes")}]),
            workload("DaemonSet", "nodePlugin", [])]
    if values.get("storageClass", {}).get("enabled", True):
        docs.append({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                     "metadata": {"name": "csi-cinder-sc-delete"}})
    return docs


def approver_chart(values: dict) -> list[dict]:
    """templates/deployment.yaml of kubelet-csr-approver v1.2.14, in miniature, rendered as
    text the way helm does: the regex unquoted, the prefixes joined and quoted."""
    def yaml_of(x):
        return yaml.safe_dump(x, default_flow_style=True).strip()

    env = []
    if values.get("providerRegex"):
        env.append(f"- name: PROVIDER_REGEX\n  value: {values['providerRegex']}")
    if values.get("providerIpPrefixes"):
        env.append(f"- name: PROVIDER_IP_PREFIXES\n  value: \"{','.join(values['providerIpPrefixes'])}\"")
    if values.get("bypassDnsResolution"):
        env.append(f"- name: BYPASS_DNS_RESOLUTION\n  value: {json.dumps(str(values['bypassDnsResolution']).lower())}")
    tolerations = values.get("tolerations", [{"effect": "NoSchedule", "key": v.CONTROL_PLANE_ROLE,
                                              "operator": "Equal"}])
    text = "\n".join([
        "apiVersion: apps/v1", "kind: Deployment", "metadata: {name: kubelet-csr-approver}", "spec:",
        f"  replicas: {values.get('replicas', 2)}", "  template:", "    spec:",
        f"      nodeSelector: {yaml_of(values.get('nodeSelector', {}))}",
        f"      tolerations: {yaml_of(tolerations)}",
        "      containers:", "      - name: kubelet-csr-approver", "        env:",
        *("\n".join("          " + line for line in e.split("\n")) for e in env)])
    return [yaml.safe_load(text)]


def metrics_chart(values: dict) -> list[dict]:
    """templates/deployment.yaml, apiservice.yaml and pdb.yaml of metrics-server 3.13.1, in
    miniature (chart defaults beside)."""
    default_args = ["--cert-dir=/tmp", "--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname",
                    "--kubelet-use-node-status-port", "--metric-resolution=15s"]
    args = [*values.get("defaultArgs", default_args), *values.get("args", [])]
    docs = [{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "metrics-server"},
             "spec": {"replicas": values.get("replicas", 1), "template": {"spec": {
                 "nodeSelector": values.get("nodeSelector", {}),
                 "containers": [{"name": "metrics-server", "args": args}]}}}},
            {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
             "metadata": {"name": "v1beta1.metrics.k8s.io"}}]
    pdb = values.get("podDisruptionBudget", {})
    if pdb.get("enabled"):
        spec = {k: pdb[k] for k in ("minAvailable", "maxUnavailable", "unhealthyPodEvictionPolicy") if pdb.get(k)}
        docs.append({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                     "metadata": {"name": "metrics-server"}, "spec": spec})
    return docs


def occm_chart(values: dict) -> list[dict]:
    """templates/daemonset.yaml and secret.yaml of openstack-cloud-controller-manager-2.36.0, in
    miniature: what they render from the values the checks look at (chart defaults beside)."""
    secret = values.get("secret", {"enabled": True, "create": True, "name": "cloud-config"})
    controllers = values.get("enabledControllers", ["cloud-node", "cloud-node-lifecycle", "route", "service"])
    pod = {"metadata": {"annotations": {"checksum/config": "x", **values.get("podAnnotations", {})}},
           "spec": {"nodeSelector": {v.CONTROL_PLANE_ROLE: ""}, "hostNetwork": True,
                    "containers": [{"name": "openstack-cloud-controller-manager",
                                    "args": ["/bin/openstack-cloud-controller-manager",
                                             "--cluster-name=$(CLUSTER_NAME)",
                                             "--controllers=" + ",".join(controllers)],
                                    "env": [{"name": "CLOUD_CONFIG", "value": "/etc/config/cloud.conf"},
                                            {"name": "CLUSTER_NAME",
                                             "value": values.get("cluster", {}).get("name", "kubernetes")}]}],
                    "volumes": [{"name": "cloud-config-volume", "secret": {"secretName": secret["name"]}}]
                    if secret["enabled"] else []}}
    docs = [{"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "openstack-cloud-controller-manager"},
             "spec": {"template": pod}}]
    if secret["enabled"] and secret["create"]:
        docs.append({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": secret["name"]}})
    return docs


def _main(helm: FakeHelm, *args: str) -> tuple[int, str]:
    out = io.StringIO()
    rc = check_charts.main(["--helm", "/opt/helm", *args], run=helm, out=out)
    return rc, out.getvalue()


def test_both_charts_render_at_the_pinned_version_with_the_programs_values():
    helm = FakeHelm()
    rc, out = _main(helm)
    assert rc == 0, out
    calico_calls, occm_calls = helm.calls[:2], helm.calls[2:]
    assert [c[:4] for c in calico_calls] == [["/opt/helm", "template", "calico-crds", calico.CRD_CHART],
                                             ["/opt/helm", "template", "calico", calico.OPERATOR_CHART]]
    for call in calico_calls:
        assert call[call.index("--version") + 1] == VERSION
        assert call[call.index("--repo") + 1] == v.CALICO_CHART_REPO
    assert helm.values[0] == calico.operator_values()
    # the cloud controller's chart of every supported minor, from its own repository
    occm_only = [c for c in occm_calls if c[3] == v.CLOUD_PROVIDER_CHART]
    assert sorted(c[c.index("--version") + 1] for c in occm_only) == sorted(v.CLOUD_PROVIDER_CHARTS.values())
    metrics_calls = [c for c in occm_calls if c[3] in (v.CSR_APPROVER_CHART, v.METRICS_SERVER_CHART)]
    occm_calls = [c for c in occm_calls if c not in metrics_calls]
    for call in occm_calls:
        assert call[3] in (v.CLOUD_PROVIDER_CHART, v.CINDER_CSI_CHART)
        assert call[call.index("--repo") + 1] == v.CLOUD_PROVIDER_CHART_REPO
        assert call[call.index("--namespace") + 1] == "kube-system"
    assert all(val["secret"]["create"] is False for val in helm.values[1:] if "secret" in val)
    # kubelet-csr-approver once, metrics-server with and without its budget, from their repositories
    assert [(c[3], c[c.index("--version") + 1], c[c.index("--repo") + 1]) for c in metrics_calls] == [
        (v.CSR_APPROVER_CHART, v.CSR_APPROVER_CHART_VERSION, v.CSR_APPROVER_CHART_REPO),
        *[(v.METRICS_SERVER_CHART, v.METRICS_SERVER_CHART_VERSION, v.METRICS_SERVER_CHART_REPO)] * 2]
    csi_calls = [c for c in occm_calls if c[3] == v.CINDER_CSI_CHART]
    assert sorted(c[c.index("--version") + 1] for c in csi_calls) == sorted(v.CINDER_CSI_CHARTS.values())


def test_the_installation_is_checked_against_the_charts_schema_made_strict():
    """An older chart whose schema lacks a field the program sets fails by path."""
    helm = FakeHelm()
    inst = helm.crds[-1]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    spec = inst["properties"]["spec"]
    spec["properties"].pop("controlPlaneNodeSelector")
    spec.pop("additionalProperties", None)  # as a real chart ships it: strict() adds it
    rc, out = _main(helm)
    assert rc == 1 and "the Installation does not fit its schema at spec" in out and "controlPlaneNodeSelector" in out


BROKEN = {
    "no installations CRD": (lambda h: h.crds.pop(), "no CRD installations.operator.tigera.io"),
    "operator renders an APIServer": (
        lambda h: h.operator.append({"kind": "APIServer", "metadata": {"name": "default"}}),
        "renders APIServer/default"),
    "operator renders an Installation": (
        lambda h: h.operator.append({"kind": "Installation", "metadata": {"name": "default"}}),
        "renders Installation/default"),
    "operator manages CRDs": (
        lambda h: h.operator[0]["spec"]["template"]["spec"]["containers"][0].update(args=["-manage-crds=true"]),
        "the operator manages CRDs"),
    "operator on any node": (
        lambda h: h.operator[0]["spec"]["template"]["spec"].update(nodeSelector={"kubernetes.io/os": "linux"}),
        "not pinned to the control planes"),
    "no operator": (lambda h: h.operator.clear(), "no tigera-operator Deployment"),
    "cloud controller renders its own Secret": (
        lambda h: setattr(h, "occm_broken",
                          lambda d: d.append({"kind": "Secret", "metadata": {"name": "cloud-config"}})),
        "renders Secret/cloud-config"),
    "cloud controller runs the route controller": (
        lambda h: setattr(h, "occm_broken", lambda d: d[0]["spec"]["template"]["spec"][
            "containers"][0].update(args=["--controllers=cloud-node,route,service"])),
        "runs controllers"),
    "cloud controller ignores the cluster name": (
        lambda h: setattr(h, "occm_broken", lambda d: d[0]["spec"]["template"]["spec"]["containers"][0][
            "env"][1].update(value="kubernetes")),
        "cluster name 'kubernetes'"),
    "cloud controller without the digest": (
        lambda h: setattr(h, "occm_broken", lambda d: d[0]["spec"]["template"]["metadata"].update(annotations={})),
        "no restart on a new cloud.conf"),
    "Cinder CSI renders its own StorageClass": (
        lambda h: setattr(h, "csi_broken", lambda d: d.append(
            {"kind": "StorageClass", "metadata": {"name": "csi-cinder-sc-delete"}})),
        "renders StorageClass/csi-cinder-sc-delete"),
    "Cinder CSI reads the node's cloud.conf": (
        lambda h: setattr(h, "csi_broken", lambda d: d[1]["spec"]["template"]["spec"].update(
            volumes=[{"name": "cloud-config", "hostPath": {"path": "/etc/kubernetes"}}])),
        "the DaemonSet does not mount the Secret cinder-csi-cloud-config"),
    "Cinder CSI without the cluster ID": (
        lambda h: setattr(h, "csi_broken", lambda d: d[0]["spec"]["template"]["spec"]["containers"][0][
            "env"][1].update(value="kubernetes")),
        "cluster ID 'kubernetes'"),
    "Cinder CSI controller on any node": (
        lambda h: setattr(h, "csi_broken", lambda d: d[0]["spec"]["template"]["spec"].update(nodeSelector={})),
        "the controller is not pinned to the control planes"),
    "approver regex mangled by YAML": (
        lambda h: setattr(h, "approver_broken", lambda d: d[0]["spec"]["template"]["spec"]["containers"][0][
            "env"][0].update(value="^ci-")),
        "PROVIDER_REGEX is '^ci-'"),
    "approver without DNS bypass": (
        lambda h: setattr(h, "approver_broken", lambda d: d[0]["spec"]["template"]["spec"]["containers"][0][
            "env"].pop()),
        "BYPASS_DNS_RESOLUTION is None"),
    "approver waits for initialized nodes": (
        lambda h: setattr(h, "approver_broken", lambda d: d[0]["spec"]["template"]["spec"].update(tolerations=[])),
        "does not tolerate node.cloudprovider.kubernetes.io/uninitialized"),
    "metrics-server skips kubelet TLS": (
        lambda h: setattr(h, "metrics_broken", lambda d: d[0]["spec"]["template"]["spec"]["containers"][0][
            "args"].append("--kubelet-insecure-tls")),
        "runs with --kubelet-insecure-tls"),
    "metrics-server without its budget": (
        lambda h: setattr(h, "metrics_broken", lambda d: d.pop() if d[-1]["kind"] == "PodDisruptionBudget" else None),
        "no policy/v1 PodDisruptionBudget"),
    "metrics-server on any node": (
        lambda h: setattr(h, "metrics_broken", lambda d: d[0]["spec"]["template"]["spec"].update(nodeSelector={})),
        "metrics-server 3.13.1: not pinned to the control planes"),
    "metrics-server budget blocks drains of unready pods": (
        lambda h: setattr(h, "metrics_broken", lambda d: d[-1]["spec"].pop("unhealthyPodEvictionPolicy", None)
                          if d[-1]["kind"] == "PodDisruptionBudget" else None),
        "unhealthyPodEvictionPolicy AlwaysAllow"),
    "metrics-server without its APIService": (
        lambda h: setattr(h, "metrics_broken", lambda d: d.pop(1)),
        "no APIService v1beta1.metrics.k8s.io"),
    "cloud controller mounts another Secret": (
        lambda h: setattr(h, "occm_broken", lambda d: d[0]["spec"]["template"]["spec"].update(volumes=[])),
        f"does not mount the Secret {cc.SECRET_NAME}"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_each_disagreement_fails_by_name(case):
    helm = FakeHelm()
    mutate, message = BROKEN[case]
    mutate(helm)
    rc, out = _main(helm)
    assert rc == 1 and message in out, out


def test_a_missing_chart_version_stops_with_helms_own_error(capsys):
    helm = FakeHelm()
    helm.fail = f'Error: chart "{calico.CRD_CHART}" version "v3.32.9" not found in {v.CALICO_CHART_REPO} repository'
    rc, _ = _main(helm, "--calico-version", "3.32.9")
    err = capsys.readouterr().err
    assert rc == 1 and "v3.32.9" in err and "not found" in err


def test_without_helm_it_says_how_to_get_it(capsys):
    def missing(argv, **kw):
        raise FileNotFoundError(argv[0])
    assert check_charts.main(["--helm", "/nope/helm"], run=missing) == 2
    assert "scripts/install-helm.sh" in capsys.readouterr().err


def test_strict_leaves_preserved_objects_open():
    s = check_charts.strict({"properties": {"a": {"properties": {}, "x-kubernetes-preserve-unknown-fields": True}}})
    assert s["additionalProperties"] is False and "additionalProperties" not in s["properties"]["a"]
    assert copy.deepcopy(s) == s


def test_install_helm_refuses_an_archive_that_does_not_match_the_pin(tmp_path):
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "curl").write_text('#!/bin/sh\nwhile [ "$1" != "-o" ]; do shift; done\necho tampered > "$2"\n')
    (fake / "curl").chmod(0o755)
    res = subprocess.run(["bash", "scripts/install-helm.sh", str(tmp_path / "out")], capture_output=True, text=True,
                         env={"PATH": f"{fake}:/usr/bin:/bin"}, cwd=Path(__file__).resolve().parent.parent)
    assert res.returncode == 1 and "does not match the pinned sha256" in res.stderr
    assert not (tmp_path / "out" / "helm").exists()


def test_install_helm_installs_a_matching_archive_exits_0_and_cleans_up(tmp_path):
    """End to end with a stand-in archive (the pin is swapped for its checksum in a copy of
    the script): the EXIT trap must not fail after main returned."""
    import hashlib
    import tarfile

    stage = tmp_path / "stage" / "linux-amd64"
    stage.mkdir(parents=True)
    (stage / "helm").write_text("#!/bin/sh\necho v3.19.0+gfake\n")
    (stage / "helm").chmod(0o755)
    archive = tmp_path / "helm.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(stage, arcname="linux-amd64")
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    root = Path(__file__).resolve().parent.parent
    script = (root / "scripts" / "install-helm.sh").read_text()
    assert "HELM_SHA256=a7f81ce0" in script
    copy_ = tmp_path / "install-helm.sh"
    copy_.write_text(script.replace(script.split("HELM_SHA256=")[1].split("\n")[0], digest))
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "curl").write_text(f'#!/bin/sh\nwhile [ "$1" != "-o" ]; do shift; done\ncp {archive} "$2"\n')
    (fake / "curl").chmod(0o755)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    res = subprocess.run(["bash", str(copy_), str(tmp_path / "out")], capture_output=True, text=True,
                         env={"PATH": f"{fake}:/usr/bin:/bin", "TMPDIR": str(scratch)})
    assert res.returncode == 0, res.stderr
    assert "v3.19.0" in res.stdout and (tmp_path / "out" / "helm").exists()
    assert list(scratch.iterdir()) == [], "the download directory outlived the script"
