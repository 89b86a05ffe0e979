"""The destroy guard: what the cloud controller made goes before the cluster does.

class CloudCleanup(pulumi.ComponentResource), token katak8s:kubernetes:CloudCleanup
    CloudCleanup(name, cfg, *, cluster, after, opts=None)
    .guard: phase.Phase   a command on the first control plane

Services of type LoadBalancer make Octavia load balancers and floating IPs that Pulumi
does not know. Left alone at `pulumi destroy`, they leak, and their ports keep the node
subnet busy, so deleting the network fails (Neutron 409; CAPO #842, #2121). The guard is a
command whose delete (scripts/remote/cluster/cloud-cleanup.sh, MODE=release) deletes those
Services and waits until the cloud controller confirms each load balancer gone; with
Cinder CSI and deleteVolumesOnDestroy it then deletes every PersistentVolumeClaim and waits
until their volumes are gone (without it, the volumes stay and the log lists them).

Why it runs first: Pulumi deletes dependents before what they depend on (pulumi/pulumi
step_generator.go ScheduleDeletes, reverse dependency order). The guard depends on the
controller's release (so the controller still runs), on init and on the first control
plane's script copy (and through them on the server, its port and the node subnet), so
its delete comes before every one of them. It has no deleted_with: a delete whose
deleted_with target goes in the same operation runs nothing (step.go DeleteStep.Apply),
and this one must run at destroy (components/nodes/phase.py delete_on_destroy). Its
trigger is a constant, so an edit of the script or a new setting updates it in place; and
it exists on every stack, whatever cloudProvider and cinderCsi say, so no configuration
change ever removes it (which would run the release on a live cluster): without the cloud
controller it still deletes Services of type LoadBalancer at destroy, harmlessly.
Not a resource hook: `before_delete` hooks run at destroy only with `pulumi destroy
--run-program` (pulumi resource_hooks.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from components import versions as v
from components.config import ClusterConfig
from components.naming import type_token
from components.nodes.phase import Phase, run_phase

# Octavia deletes an amphora load balancer in about a minute, and the service controller
# works through Services one at a time (kube-controller-manager --concurrent-service-syncs
# defaults to 1): room for a dozen or more. Then the volumes' wait. Both, with the retries
# around them, inside the delete's own bound (phase.PHASE_TIMEOUT_SECONDS, 1800 s), so a
# slow release still ends with the message that names what is left.
LB_TIMEOUT = 900
VOLUME_TIMEOUT = 780
SCRIPT = "cluster/cloud-cleanup.sh"
# Constant: nothing but `pulumi destroy` may ever delete (and so run) it. A replacement would
# run the release on a live cluster first (run_phase: delete_before_replace).
TRIGGER = "katak8s-cloud-cleanup"


@dataclass(frozen=True, kw_only=True)
class CleanupParams:
    mode: str  # arm (create) | release (delete)
    cloud_cluster_name: str  # for the names of what is left, in the error
    lb_timeout: int
    volume_timeout: int
    resource: str  # its Pulumi name, for `pulumi state delete` when the cluster is lost
    cinder_csi: bool  # then the PersistentVolumeClaims are handled too
    delete_volumes: bool  # deleteVolumesOnDestroy: delete them (and their Cinder volumes)
    csi_driver: str


class CloudCleanup(pulumi.ComponentResource):
    def __init__(self, name: str, cfg: ClusterConfig, *, cluster: Any, after: list[pulumi.Resource],
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__(type_token("kubernetes", "CloudCleanup"), name, None, opts)
        target = cluster.first_control_plane
        phase = "cloud-cleanup"

        def params(mode: str) -> CleanupParams:
            return CleanupParams(mode=mode, cloud_cluster_name=cfg.cloud_cluster_name,
                                 lb_timeout=LB_TIMEOUT, volume_timeout=VOLUME_TIMEOUT,
                                 resource=f"{target.name}-{phase}",
                                 cinder_csi=cfg.cinder_csi, delete_volumes=cfg.delete_volumes_on_destroy,
                                 csi_driver=v.CINDER_CSI_DRIVER)

        self.guard: Phase = run_phase(
            self, target, cluster.first_scripts, phase=phase, script=SCRIPT, params=params("arm"),
            delete_script=SCRIPT, delete_params=params("release"),
            depends_on=[*cluster.api_ready, *after], triggers=[TRIGGER],
            delete_on_destroy=True)
        self.register_outputs({"guard": self.guard.command.urn})
