"""The checks scripts/check_charts.py runs on the OpenStack cloud controller's and Cinder
CSI's charts (components/kubernetes/cloud_controller.py, storage.py), rendered with the
program's values for every supported minor. Pure: each takes the rendered documents and
returns the problems found (moved from check_charts.py unchanged).
"""

from __future__ import annotations

from components import versions as v
from components.kubernetes import cloud_controller as cc
from components.kubernetes import storage

CLOUD_DIGEST = "0" * 64


def check_cloud_controller(docs: list[dict], version: str, cluster_name: str) -> list[str]:
    name = f"{v.CLOUD_PROVIDER_CHART} {version}"
    problems = [f"{name}: renders Secret/{d['metadata']['name']}; the program owns the cloud-config Secret"
                for d in docs if d.get("kind") == "Secret"]
    sets = [d for d in docs if d.get("kind") == "DaemonSet"]
    if len(sets) != 1:
        return [*problems, f"{name}: renders {len(sets)} DaemonSets, expected one"]
    pod = sets[0]["spec"]["template"]
    spec = pod["spec"]
    if pod["metadata"].get("annotations", {}).get(cc.CONFIG_DIGEST_ANNOTATION) != CLOUD_DIGEST:
        problems.append(f"{name}: the pods lack the {cc.CONFIG_DIGEST_ANNOTATION} annotation (no restart on a new "
                        "cloud.conf)")
    if spec.get("nodeSelector", {}).get(v.CONTROL_PLANE_ROLE) != "" or not spec.get("hostNetwork"):
        problems.append(f"{name}: not a hostNetwork pod on the control planes")
    if not [vol for vol in spec.get("volumes", []) if vol.get("secret", {}).get("secretName") == cc.SECRET_NAME]:
        problems.append(f"{name}: does not mount the Secret {cc.SECRET_NAME}")
    (container,) = spec["containers"][:1]
    env = {e["name"]: e.get("value") for e in container.get("env", [])}
    if env.get("CLOUD_CONFIG") != f"/etc/config/{cc.SECRET_KEY}":
        problems.append(f"{name}: reads {env.get('CLOUD_CONFIG')}, not the Secret's {cc.SECRET_KEY}")
    if env.get("CLUSTER_NAME") != cluster_name:
        problems.append(f"{name}: cluster name {env.get('CLUSTER_NAME')!r}, expected {cluster_name!r}")
    controllers = [a.split("=", 1)[1] for a in container.get("args", []) if a.startswith("--controllers=")]
    if not controllers or set(controllers[0].split(",")) != set(cc.CONTROLLERS):
        problems.append(f"{name}: runs controllers {controllers}, expected {','.join(cc.CONTROLLERS)}")
    return problems


def _pod(doc: dict) -> tuple[dict, dict]:
    template = doc["spec"]["template"]
    return template.get("metadata", {}), template["spec"]


def check_cinder_csi(docs: list[dict], version: str, cluster_id: str) -> list[str]:
    name = f"{v.CINDER_CSI_CHART} {version}"
    problems = [f"{name}: renders {d['kind']}/{d['metadata']['name']}; the program owns it"
                for d in docs if d.get("kind") in ("StorageClass", "Secret")]
    workloads = {d["kind"]: d for d in docs if d.get("kind") in ("Deployment", "DaemonSet")}
    for kind in ("Deployment", "DaemonSet"):
        if kind not in workloads:
            problems.append(f"{name}: no {kind} (controller / node plugin)")
            continue
        meta, spec = _pod(workloads[kind])
        if meta.get("annotations", {}).get(cc.CONFIG_DIGEST_ANNOTATION) != CLOUD_DIGEST:
            problems.append(f"{name}: the {kind}'s pods lack the {cc.CONFIG_DIGEST_ANNOTATION} annotation")
        mounted = [vol.get("secret", {}).get("secretName") for vol in spec.get("volumes", [])]
        if storage.SECRET_NAME not in mounted:
            problems.append(f"{name}: the {kind} does not mount the Secret {storage.SECRET_NAME}")
        env = {e["name"]: e.get("value") for c in spec["containers"] for e in c.get("env", [])}
        if env.get("CLOUD_CONFIG") != f"/etc/config/{storage.SECRET_KEY}":
            problems.append(f"{name}: the {kind} reads {env.get('CLOUD_CONFIG')}, not {storage.SECRET_KEY}")
        if kind == "Deployment":
            if env.get("CLUSTER_NAME") != cluster_id:
                problems.append(f"{name}: cluster ID {env.get('CLUSTER_NAME')!r}, expected {cluster_id!r}")
            if spec.get("nodeSelector", {}).get(v.CONTROL_PLANE_ROLE) != "":
                problems.append(f"{name}: the controller is not pinned to the control planes")
    return problems
