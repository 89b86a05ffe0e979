"""Cinder CSI and the default StorageClass: PersistentVolumes from Cinder.

class CinderCsi(pulumi.ComponentResource), token katak8s:kubernetes:CinderCsi
    CinderCsi(name, cfg, *, cloud, provider, after, opts=None)
    .secret: Secret kube-system/cinder-csi-cloud-config (cloud.conf: secret)
    .release: helm.v3.Release        .storage_class: StorageClass (the default)
    .ready: [release, storage_class]

Its own application credential and Secret, apart from the cloud controller's, so each can
be revoked and rotated alone (openstack-integration.md §5.2). The chart's own classes are
off (they bind Immediately and none is default: templates/storageclass.yaml); one typed
class is the cluster's default instead: WaitForFirstConsumer, so a volume is made in the
zone of the node its pod lands on; Delete, so a PVC's volume goes with it; expansion on.

Kata pods: a filesystem PVC is attached to the node VM, formatted and mounted there, and
shared into the pod's VM over virtio-fs; a block PVC (volumeMode Block) is hot-plugged into
the pod's VM as a device (kata-containers src/runtime-rs/crates/resource/src/volume).
`subPath` mounts are not supported by Kata (docs/Limitations.md), and Cinder CSI does not
implement Kata's direct-assigned volumes (docs/openstack.md "Volumes").
The CSI pods themselves run on runc (privileged, Bidirectional mount propagation).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import versions as v
from components.config import ClusterConfig
from components.kubernetes.cloud_controller import (
    CONFIG_DIGEST_ANNOTATION,
    METADATA,
    cloud_config_secret,
    global_section,
    render_ini,
)
from components.kubernetes.provider import pinned_release
from components.naming import type_token

NAMESPACE = "kube-system"
SECRET_NAME = "cinder-csi-cloud-config"
SECRET_KEY = "cloud.conf"  # the chart's secret.filename; the plugin reads /etc/config/<filename>
RELEASE_NAME = "cinder-csi"
# The controller plugin schedules once the cloud controller initialized a control plane,
# which may take as long as the controller's own wait (cloud_controller.INIT_TIMEOUT, which
# reports first and says why); the node plugin DaemonSet runs on every node.
RELEASE_TIMEOUT_SECONDS = 1500
DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"


@dataclass(frozen=True, kw_only=True)
class CsiConf:
    auth_url: str
    region: str
    credential_id: str
    credential_secret: str = ""
    ca_cert: str = ""

    def __repr__(self) -> str:
        return f"CsiConf(auth_url={self.auth_url!r}, region={self.region!r})"


def render_csi_conf(conf: CsiConf) -> str:
    """cloud.conf of the plugin (CPO docs/cinder-csi-plugin/using-cinder-csi-plugin.md: [Global]
    like the controller's, [Metadata] for the node plugin's instance lookup; [BlockStorage]
    keeps its defaults)."""
    return render_ini({"Global": global_section(conf.auth_url, conf.region, conf.credential_id,
                                                conf.credential_secret, bool(conf.ca_cert)),
                       "Metadata": METADATA}, "components/kubernetes/storage.py")


def csi_values(cfg: ClusterConfig, digest: str) -> dict[str, Any]:
    """openstack-cinder-csi chart values (charts/cinder-csi-plugin/values.yaml at
    openstack-cinder-csi-2.36.0)."""
    annotations = {CONFIG_DIGEST_ANNOTATION: digest}  # restart on a new cloud.conf, as the controller
    return {
        # The chart defaults to the node's /etc/kubernetes/cloud.conf (hostMount): use the
        # Secret Pulumi owns instead.
        "secret": {"enabled": True, "create": False, "hostMount": False, "name": SECRET_NAME,
                   "filename": SECRET_KEY},
        "storageClass": {"enabled": False},
        # Written on every volume and snapshot as cinder.csi.openstack.org/cluster: what a
        # sweep of a lost cluster's volumes looks for.
        "clusterID": cfg.cloud_cluster_name,
        "csi": {"plugin": {
            "nodePlugin": {"podAnnotations": annotations},
            # The controller can attach any volume of the project to any server: on the control
            # planes. (The node plugin mounts the same Secret on every node, as the chart has one
            # secret.name for both: docs/openstack.md "Volumes" says what that exposes.)
            "controllerPlugin": {
                "podAnnotations": annotations,
                "nodeSelector": {v.CONTROL_PLANE_ROLE: ""},
                "tolerations": [{"key": v.CONTROL_PLANE_ROLE, "operator": "Exists", "effect": "NoSchedule"}],
            },
        }},
    }


def storage_class_args() -> dict[str, Any]:
    return {
        "metadata": {"name": v.DEFAULT_STORAGE_CLASS, "annotations": {DEFAULT_CLASS_ANNOTATION: "true"}},
        "provisioner": v.CINDER_CSI_DRIVER,
        "reclaim_policy": "Delete",
        "volume_binding_mode": "WaitForFirstConsumer",
        "allow_volume_expansion": True,
    }


class CinderCsi(pulumi.ComponentResource):
    def __init__(self, name: str, cfg: ClusterConfig, *, cloud: pulumi.Input[CsiConf], provider: k8s.Provider,
                 after: list[pulumi.Resource], opts: pulumi.ResourceOptions | None = None):
        super().__init__(type_token("kubernetes", "CinderCsi"), name, None, opts)
        conf = pulumi.Output.from_input(cloud)
        text = pulumi.Output.secret(conf.apply(render_csi_conf))
        self.secret, digest = cloud_config_secret(self, f"{name}-config", SECRET_NAME, text,
                                                  conf.apply(lambda c: c.ca_cert), provider, after)
        self.release = pinned_release(
            self, f"{name}-release", provider, release=RELEASE_NAME, chart=v.CINDER_CSI_CHART,
            version=v.CINDER_CSI_CHARTS[cfg.kubernetes_minor], repo=v.CLOUD_PROVIDER_CHART_REPO,
            namespace=NAMESPACE, values=digest.apply(lambda d: csi_values(cfg, d)), timeout=RELEASE_TIMEOUT_SECONDS,
            after=[self.secret, *after])
        self.storage_class = k8s.storage.v1.StorageClass(
            f"{name}-default-class", **storage_class_args(),
            opts=pulumi.ResourceOptions(parent=self, provider=provider, depends_on=[self.release]))
        self.ready: list[pulumi.Resource] = [self.release, self.storage_class]
        self.register_outputs({"storageClass": self.storage_class.metadata.name})
