#!/usr/bin/env python3
"""Render the Calico charts and the OpenStack cloud controller's with helm, and check what comes out.

The first preview of a stack cannot render them: its provider config is unknown, so the
engine skips the Release's Check (where the chart is downloaded) and the Chart v3 invoke
returns nothing (review-pulumi F9: pulumi/pulumi provider_plugin.go Check and Invoke). A
wrong chart name or version would surface only in `up`, after the servers are built. The
plan-review workflow runs this instead, with helm from scripts/install-helm.sh:

    venv/bin/python scripts/check_charts.py --helm "$RUNNER_TEMP/bin/helm"

It checks, at the default Calico version (or at each --calico-version):
- the CRD chart renders the CRDs the operator and the pool need, and the Installation the
  program declares fits that chart's own Installation schema, made strict (unknown fields
  fail, as the apiserver's strict field validation would make them fail);
- the operator chart, with operator_values(), renders the operator on the control planes,
  `-manage-crds=false`, and neither an Installation nor an APIServer (the program owns
  the first; the second is off, K11);
- the openstack-cloud-controller-manager chart of every supported minor, with
  controller_values(), renders a DaemonSet on the control planes that mounts the
  cloud-config Secret the program creates (and no Secret of its own), runs the service,
  node and node-lifecycle controllers (not route) with the stack's cluster name, and
  carries the cloud.conf digest that restarts it on a new configuration;
- the openstack-cinder-csi chart of every supported minor, with csi_values(), renders no
  StorageClass and no Secret, and both plugins read cloud.conf from the program's Secret,
  with the cluster ID, the digest, and the controller on the control planes;
- kubelet-csr-approver and metrics-server, with approver_values() and metrics_values()
  (scripts/check_charts_metrics.py says what holds).
Exit 0 when all hold, 1 with every problem listed, 2 when helm cannot run.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jsonschema
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from components import versions as v  # noqa: E402
from components.config import parse_config  # noqa: E402
from components.kubernetes import (
    calico,  # noqa: E402
    metrics,  # noqa: E402
    storage,  # noqa: E402
)
from components.kubernetes import cloud_controller as cc  # noqa: E402
from scripts import check_charts_metrics as cm  # noqa: E402
from scripts.check_charts_cloud import CLOUD_DIGEST, check_cinder_csi, check_cloud_controller  # noqa: E402

Runner = Callable[..., subprocess.CompletedProcess]
HELM_TIMEOUT = 300
NEEDED_CRDS = ("installations.operator.tigera.io", "ippools.crd.projectcalico.org",
               "felixconfigurations.crd.projectcalico.org", "tigerastatuses.operator.tigera.io")
SAMPLE = {"controlPlaneFlavor": "ci", "workerFlavor": "ci", "externalNetwork": "public",
          "allowedCidrs": ["203.0.113.0/24"]}


class HelmError(Exception):
    pass


def strict(schema: Any) -> Any:
    """additionalProperties: false wherever the schema lists properties and keeps no unknown
    fields (the way tests/schemas/README.md made the vendored copy strict)."""
    if isinstance(schema, dict):
        out = {k: strict(val) for k, val in schema.items()}
        if "properties" in out and "additionalProperties" not in out \
                and not out.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [strict(x) for x in schema]
    return schema


def render(helm: str, release: str, chart: str, version: str, values: Path | None, run: Runner, *,
           repo: str = v.CALICO_CHART_REPO, namespace: str = calico.OPERATOR_NAMESPACE) -> list[dict]:
    argv = [helm, "template", release, chart, "--repo", repo, "--version", version,
            "--namespace", namespace] + (["--values", str(values)] if values else [])
    try:
        proc = run(argv, capture_output=True, text=True, timeout=HELM_TIMEOUT, check=False)
    except FileNotFoundError as exc:
        raise HelmError(f"{helm} not found; install it with scripts/install-helm.sh") from exc
    except subprocess.TimeoutExpired as exc:
        raise HelmError(f"helm template {chart} {version} took more than {HELM_TIMEOUT}s") from exc
    if proc.returncode != 0:
        raise HelmError(f"helm template {chart} --version {version} from {repo} failed: "
                        f"{proc.stderr.strip() or 'exit ' + str(proc.returncode)}")
    return [d for d in yaml.safe_load_all(proc.stdout) if isinstance(d, dict)]


def check_crds(docs: list[dict], installation: dict, version: str) -> list[str]:
    crds = {d["metadata"]["name"]: d for d in docs if d.get("kind") == "CustomResourceDefinition"}
    problems = [f"{calico.CRD_CHART} {version}: no CRD {n}" for n in NEEDED_CRDS if n not in crds]
    inst = crds.get("installations.operator.tigera.io")
    if inst:
        served = next((x for x in inst["spec"]["versions"] if x["name"] == "v1"), None)
        if served is None:
            return [*problems, f"{calico.CRD_CHART} {version}: installations has no v1"]
        schema = strict(copy.deepcopy(served["schema"]["openAPIV3Schema"]))
        for err in jsonschema.Draft7Validator(schema).iter_errors(installation):
            path = ".".join(str(p) for p in err.absolute_path)
            problems.append(f"{calico.CRD_CHART} {version}: the Installation does not fit its schema at "
                            f"{path or '(root)'}: {err.message}")
    return problems


def check_operator(docs: list[dict], version: str) -> list[str]:
    problems = [f"{calico.OPERATOR_CHART} {version}: renders {d['kind']}/{d['metadata']['name']}, "
                "which must stay off" for d in docs if d.get("kind") in ("Installation", "APIServer")]
    deployments = [d for d in docs if d.get("kind") == "Deployment" and d["metadata"]["name"] == "tigera-operator"]
    if not deployments:
        return [*problems, f"{calico.OPERATOR_CHART} {version}: no tigera-operator Deployment"]
    pod = deployments[0]["spec"]["template"]["spec"]
    if pod.get("nodeSelector", {}).get(v.CONTROL_PLANE_ROLE) != "":
        problems.append(f"{calico.OPERATOR_CHART} {version}: the operator is not pinned to the control planes "
                        f"(nodeSelector {pod.get('nodeSelector')})")
    args = [a for c in pod.get("containers", []) for a in [*c.get("args", []), *c.get("command", [])]]
    if "-manage-crds=false" not in args:
        problems.append(f"{calico.OPERATOR_CHART} {version}: the operator manages CRDs (args {args})")
    return problems


def check_version(helm: str, calico_version: str, run: Runner, tmp: Path) -> list[str]:
    cfg = parse_config({**SAMPLE, "calicoVersion": calico_version}, stack="ci")
    version = calico.chart_version(cfg)
    installation = {"apiVersion": "operator.tigera.io/v1", "kind": "Installation",
                    "metadata": {"name": "default"}, "spec": calico.installation_spec(cfg, 1400)}
    values = tmp / f"values-{version}.yaml"
    values.write_text(yaml.safe_dump(calico.operator_values()))
    problems = check_crds(render(helm, "calico-crds", calico.CRD_CHART, version, None, run), installation, version)
    problems += check_operator(render(helm, "calico", calico.OPERATOR_CHART, version, values, run), version)
    return problems


def check_cloud_controllers(helm: str, run: Runner, tmp: Path) -> list[str]:
    problems: list[str] = []
    for minor, version in sorted(v.CLOUD_PROVIDER_CHARTS.items()):
        cfg = parse_config({**SAMPLE, "kubernetesVersion": minor}, stack="ci")
        cluster_name = f"ci-{minor.replace('.', '')}"
        values = tmp / f"values-occm-{minor}.yaml"
        values.write_text(yaml.safe_dump(cc.controller_values(
            dataclasses.replace(cfg, cloud_cluster_name=cluster_name), CLOUD_DIGEST)))
        docs = render(helm, cc.RELEASE_NAME, v.CLOUD_PROVIDER_CHART, version, values, run,
                      repo=v.CLOUD_PROVIDER_CHART_REPO, namespace=cc.NAMESPACE)
        problems += check_cloud_controller(docs, version, cluster_name)
        values = tmp / f"values-csi-{minor}.yaml"
        values.write_text(yaml.safe_dump(storage.csi_values(
            dataclasses.replace(cfg, cloud_cluster_name=cluster_name), CLOUD_DIGEST)))
        docs = render(helm, storage.RELEASE_NAME, v.CINDER_CSI_CHART, v.CINDER_CSI_CHARTS[minor], values, run,
                      repo=v.CLOUD_PROVIDER_CHART_REPO, namespace=storage.NAMESPACE)
        problems += check_cinder_csi(docs, v.CINDER_CSI_CHARTS[minor], cluster_name)
    return problems


def check_metrics(helm: str, run: Runner, tmp: Path) -> list[str]:
    cfg = parse_config({**SAMPLE, "clusterName": "ci", "workerCount": 2}, stack="ci")
    values = tmp / "values-approver.yaml"
    values.write_text(yaml.safe_dump(metrics.approver_values(cfg, cm.SAMPLE_PREFIXES)))
    docs = render(helm, metrics.APPROVER_RELEASE, v.CSR_APPROVER_CHART, v.CSR_APPROVER_CHART_VERSION, values, run,
                  repo=v.CSR_APPROVER_CHART_REPO, namespace=metrics.NAMESPACE)
    problems = cm.check_approver(docs, cfg.cluster_name, cm.SAMPLE_PREFIXES)
    for control_planes in (1, 3):  # without and with a disruption budget
        cfg = parse_config({**SAMPLE, "controlPlaneCount": control_planes}, stack="ci")
        chart_values = metrics.metrics_values(cfg)
        values = tmp / f"values-metrics-{control_planes}.yaml"
        values.write_text(yaml.safe_dump(chart_values))
        docs = render(helm, metrics.METRICS_RELEASE, v.METRICS_SERVER_CHART, v.METRICS_SERVER_CHART_VERSION, values,
                      run, repo=v.METRICS_SERVER_CHART_REPO, namespace=metrics.NAMESPACE)
        problems += cm.check_metrics_server(docs, chart_values["podDisruptionBudget"]["enabled"])
    return problems


def main(argv: Sequence[str] | None = None, *, run: Runner = subprocess.run, out=sys.stdout) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--helm", default="helm", help="the helm binary (default: helm on PATH)")
    parser.add_argument("--calico-version", action="append",
                        help=f"a Calico version to check (default: {v.DEFAULT_CALICO_VERSION})")
    args = parser.parse_args(argv)
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="katak8s-charts-") as tmp:
        for version in args.calico_version or [v.DEFAULT_CALICO_VERSION]:
            try:
                problems += check_version(args.helm, version, run, Path(tmp))
            except HelmError as exc:
                print(f"check_charts: {exc}", file=sys.stderr)
                return 2 if "not found; install" in str(exc) else 1
            print(f"calico {version}: both charts rendered", file=out)
        try:
            problems += check_cloud_controllers(args.helm, run, Path(tmp))
            problems += check_metrics(args.helm, run, Path(tmp))
        except HelmError as exc:
            print(f"check_charts: {exc}", file=sys.stderr)
            return 1
        print(f"{v.CLOUD_PROVIDER_CHART} {', '.join(sorted(set(v.CLOUD_PROVIDER_CHARTS.values())))}, "
              f"{v.CINDER_CSI_CHART} {', '.join(sorted(set(v.CINDER_CSI_CHARTS.values())))}, "
              f"{v.CSR_APPROVER_CHART} {v.CSR_APPROVER_CHART_VERSION}, "
              f"{v.METRICS_SERVER_CHART} {v.METRICS_SERVER_CHART_VERSION}: rendered", file=out)
    for p in problems:
        print(f"FAIL {p}", file=out)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
