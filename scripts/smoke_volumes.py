"""The smoke test's volume probes: Cinder PersistentVolumes in Kata pods (issue #17 §3).

In a namespace of their own (katak8s-smoke-volumes), two PersistentVolumeClaims of the
default StorageClass (components/kubernetes/storage.py) and one Kata pod for each:
- filesystem (the default volumeMode): the volume is mounted on the node and shared into
  the pod's VM over virtio-fs; the pod writes a file and reads it back, and the check reports
  the filesystem type the guest sees;
- block (volumeMode Block): the device is hot-plugged into the pod's VM; the pod reads its
  first MiB.
Skipped, with the reason, when the cluster has no default StorageClass `cinder`
(cinderCsi false). Everything is deleted at the end (the namespace, and with it the
claims, whose volumes the Delete policy removes); leftovers of an interrupted run first.
Pure with respect to the cluster, like smoke_checks: everything goes through its Client.
"""

from __future__ import annotations

from typing import Any

from components import versions as v
from scripts.smoke_client import EXEC_TIMEOUT, Client, ClientError, Result, skip

FILESYSTEM = "filesystem PVC works in a Kata pod (virtio-fs)"
BLOCK = "block PVC works in a Kata pod (hot-plugged device)"
CHECKS = (FILESYSTEM, BLOCK)
NAMESPACE = "katak8s-smoke-volumes"
FS_POD, BLOCK_POD = "volume-fs", "volume-block"
MOUNT, DEVICE = "/data", "/dev/katak8s-block"
READY_SECONDS = 600  # a volume attach plus a Kata sandbox under nested virtualization
TOKEN = "katak8s-volume-probe"
LABEL = {"katak8s.io/smoke": "true"}


def namespace() -> dict[str, Any]:
    # privileged: the block probe reads a raw device as root
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": NAMESPACE, "labels": {**LABEL, "pod-security.kubernetes.io/enforce": "privileged"}}}


def claim(name: str, mode: str) -> dict[str, Any]:
    # no storageClassName: the cluster's default class, which is what the probe checks
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "namespace": NAMESPACE, "labels": LABEL},
            "spec": {"accessModes": ["ReadWriteOnce"], "volumeMode": mode,
                     "resources": {"requests": {"storage": "1Gi"}}}}


def pod(name: str, claim_name: str, *, block: bool) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "probe", "image": v.AGNHOST_IMAGE, "args": ["pause"]}
    if block:
        container["volumeDevices"] = [{"name": "volume", "devicePath": DEVICE}]
        container["securityContext"] = {"runAsUser": 0}
    else:
        container["volumeMounts"] = [{"name": "volume", "mountPath": MOUNT}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": NAMESPACE, "labels": LABEL},
            "spec": {"runtimeClassName": v.KATA_HANDLER, "automountServiceAccountToken": False,
                     "terminationGracePeriodSeconds": 1, "tolerations": [{"operator": "Exists"}],
                     "containers": [container],
                     "volumes": [{"name": "volume", "persistentVolumeClaim": {"claimName": claim_name}}]}}


FS_ARGV = ["sh", "-c", f"echo {TOKEN} > {MOUNT}/probe && cat {MOUNT}/probe && "
                       f"awk '$2 == \"{MOUNT}\" {{print $3}}' /proc/mounts"]
BLOCK_ARGV = ["sh", "-c", f"test -b {DEVICE} && dd if={DEVICE} of=/dev/null bs=65536 count=16 2>&1 | tail -n 1"]


def _default_class(client: Client) -> bool:
    try:
        sc = client.get("storageclass", v.DEFAULT_STORAGE_CLASS)
    except ClientError:
        return False
    return sc.get("metadata", {}).get("annotations", {}).get("storageclass.kubernetes.io/is-default-class") == "true"


def _probe(client: Client) -> list[Result]:
    client.create(namespace())
    for name, mode, block, pod_name in (("fs", "Filesystem", False, FS_POD), ("block", "Block", True, BLOCK_POD)):
        client.create(claim(name, mode))
        client.create(pod(pod_name, name, block=block))
    out = []
    if not client.wait_ready(NAMESPACE, FS_POD, READY_SECONDS):
        out.append(Result(FILESYSTEM, False, f"{FS_POD} not running after {READY_SECONDS}s (volume attach or Kata)"))
    else:
        res = client.exec(NAMESPACE, FS_POD, FS_ARGV, EXEC_TIMEOUT)
        lines = res.stdout.split()
        ok = res.rc == 0 and lines[:1] == [TOKEN]
        out.append(Result(FILESYSTEM, ok, f"wrote and read {MOUNT}/probe; the guest mounts it as "
                          f"{lines[1] if len(lines) > 1 else '?'}" if ok else f"exit {res.rc}: {res.stderr.strip()}"))
    if not client.wait_ready(NAMESPACE, BLOCK_POD, READY_SECONDS):
        out.append(Result(BLOCK, False, f"{BLOCK_POD} not running after {READY_SECONDS}s (volume attach or Kata)"))
    else:
        res = client.exec(NAMESPACE, BLOCK_POD, BLOCK_ARGV, EXEC_TIMEOUT)
        out.append(Result(BLOCK, res.rc == 0, f"{DEVICE}: {res.stdout.strip()}" if res.rc == 0
                          else f"exit {res.rc}: {res.stderr.strip() or res.stdout.strip()}"))
    return out


def check_volumes(client: Client) -> list[Result]:
    if not _default_class(client):
        return [skip(c, f"no default StorageClass {v.DEFAULT_STORAGE_CLASS} (cinderCsi false)") for c in CHECKS]
    client.delete("namespace", NAMESPACE, wait=True)  # an interrupted run's leftovers
    try:
        return _probe(client)
    except ClientError as exc:
        return [Result(c, False, str(exc)) for c in CHECKS]
    finally:
        client.delete("namespace", NAMESPACE, wait=False)
