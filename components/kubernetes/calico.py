"""Calico through the tigera-operator: CRD chart, operator chart, one Installation.

Why helm.v3.Release and not helm.v4.Chart for the operator: on a fresh stack the kubeconfig
is unknown at preview, and Chart v4 then fails preview with "failed to parse kubeconfig
data" (pulumi-kubernetes #3027, open); Release previews without a reachable cluster since
pulumi-kubernetes PR #1886 (fixing #1794). Release also waits for its objects to be ready
(unless skip_await), which gives a real ordering point for the operator.

Why the CRDs are NOT a Helm release: Helm keeps every release (chart templates plus
rendered manifest) in one Secret, capped at 1 MiB, and the crd.projectcalico.org.v1 chart
outgrew it ("The CRD Helm charts have grown large enough to exceed the 1MB Kubernetes
Secret size limit that Helm uses for release tracking", tigera/docs PR #2636); the 3.32
install docs therefore run `helm template calico-crds projectcalico/crd.projectcalico.org.v1
--version v3.32.1 | kubectl apply --server-side -f -` (tigera/docs
calico_versioned_docs/version-3.32/getting-started/kubernetes/helm.mdx). helm.v3.Chart is
exactly that: the provider renders the chart (`helm template`, client side, so preview
works with an unreachable cluster: pulumi-kubernetes #2985, fixed by #2992) and each CRD
becomes a typed CustomResourceDefinition applied server-side (the provider sets
enable_server_side_apply; installations.operator.tigera.io alone is ~1.4 MB, far over the
256 KiB client-side-apply annotation limit, projectcalico/calico #8159). Each CRD is
awaited until Established before the operator release starts.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import versions as v
from components.config import ClusterConfig
from components.naming import type_token

OPERATOR_NAMESPACE = "tigera-operator"
CRD_CHART = "crd.projectcalico.org.v1"  # Calico 3.32: CRDs left the tigera-operator chart
OPERATOR_CHART = "tigera-operator"
# Image pulls of the operator under nested virtualization are slow; Helm's default is 300 s.
RELEASE_TIMEOUT_SECONDS = 900
# The Installation turns Ready once calico-node runs on every node (pulls + CNI install).
INSTALLATION_TIMEOUT_SECONDS = 1200
MIN_IPV4_MTU = 576  # RFC 791: the datagram size every IPv4 host must accept


def chart_version(cfg: ClusterConfig) -> str:
    """Calico's charts are versioned like the release tag, with the "v": the 3.32 docs
    install `--version $[releaseTitle]` = v3.32.1 (tigera/docs getting-started/kubernetes/helm.mdx)."""
    return f"v{cfg.calico_version}"


def operator_values() -> dict[str, Any]:
    """tigera-operator chart values (charts/tigera-operator/values.yaml).

    installation.enabled=false: the chart would otherwise render Installation/default
    itself (templates/crs/custom-resources.yaml) and fight the CustomResource below.
    goldmane/whisker are Calico's optional flow observability; not deployed here.
    manageCRDs=false: the CRD chart below is the CRDs' one owner. With the default true the
    operator creates and re-updates every CRD itself (tigera/operator cmd/main.go
    -manage-crds, pkg/imports/crds Ensure), so during an upgrade the old operator puts old
    CRDs back and later Pulumi updates conflict (review-k8s K2; upstream's words: manage
    them "out-of-band").
    apiServer.enabled=false: the aggregated projectcalico.org/v3 API server is not used here
    (the Installation and the crd.projectcalico.org objects are), and while it is unhealthy
    every kubectl discovery prints errors for it (review-k8s K11; docs/kubernetes.md).
    """
    return {
        "installation": {"enabled": False},
        # The operator's ClusterRole can bind and escalate roles (cluster-admin in effect):
        # it runs on a control plane, never on a worker that runs untrusted pods. It
        # tolerates every taint by default (values.yaml tolerations).
        "nodeSelector": {"kubernetes.io/os": "linux", v.CONTROL_PLANE_ROLE: ""},
        "apiServer": {"enabled": False},
        "manageCRDs": False,
        "goldmane": {"enabled": False},
        "whisker": {"enabled": False},
    }


# The operator writes its defaults for each pool back into the Installation (tigera/operator
# v1.42.3 pkg/controller/ippool/pool_controller.go "Write default IP pool configuration back",
# defaults.go L165-166 allowedUses, L205-206 disableNewAllocations, L239-240 assignmentMode).
# ipPools is an atomic list (no x-kubernetes-list-type), so once the operator changes it the
# operator owns it and Pulumi's next server-side apply conflicts (review-k8s K1). Declaring
# the same values makes the two managers agree: shared ownership, no conflict.
POOL_DEFAULTS: dict[str, Any] = {
    "allowedUses": ["Workload", "Tunnel"],
    "disableNewAllocations": False,
    "assignmentMode": "Automatic",
}


def retain_crd(obj: Any, opts: pulumi.ResourceOptions) -> None:
    """Chart transformation: a CRD that a new chart version drops or renames is left in the
    cluster, never deleted, because deleting a CRD deletes every object of it (every
    IPPool, IPAM block and FelixConfiguration: the pod network). Its updates force
    ownership, as upstream's `kubectl apply --server-side --force-conflicts` does."""
    if isinstance(obj, dict) and obj.get("kind") == "CustomResourceDefinition":
        opts.retain_on_delete = True
        obj.setdefault("metadata", {}).setdefault("annotations", {})["pulumi.com/patchForce"] = "true"


def pod_mtu(network_mtu: int | None) -> int | None:
    """Pod MTU = the OpenStack network's MTU minus the VXLAN header, as in Calico's MTU table
    (calico docs v3.32 networking/configuring/mtu.mdx: 1450 OpenStack VXLAN -> 1400 with VXLAN).
    No MTU leaves it to Calico's auto-detection: Neutron without the net-mtu extension
    omits the field, which the OpenStack provider reads back as 0 (Go's zero value), not null."""
    if not network_mtu:
        return None
    mtu = int(network_mtu) - v.VXLAN_OVERHEAD
    if mtu < MIN_IPV4_MTU:
        raise ValueError(
            f"the OpenStack network MTU {network_mtu} leaves {mtu} bytes for pods after "
            f"{v.VXLAN_OVERHEAD} bytes of VXLAN; use a network with an MTU of at least "
            f"{MIN_IPV4_MTU + v.VXLAN_OVERHEAD}"
        )
    return mtu


def installation_spec(cfg: ClusterConfig, mtu: int | None) -> dict[str, Any]:
    """operator.tigera.io/v1 Installation spec (fields: tigera/docs version-3.32
    reference/installation/_api.mdx). VXLAN (not IPIP, not CrossSubnet) and BGP off: pod
    traffic leaves the VM with node IPs only, which Neutron port security lets through;
    only UDP 4789 is needed between nodes (upstream-bootstrap.md §8.3)."""
    network: dict[str, Any] = {
        "bgp": "Disabled",
        "ipPools": [
            {
                "name": "default-ipv4-ippool",
                "cidr": cfg.pod_cidr,  # equal to kubeadm's podSubnet, or the operator refuses it
                "encapsulation": "VXLAN",
                "natOutgoing": "Enabled",
                "nodeSelector": "all()",
                "blockSize": 26,
                **POOL_DEFAULTS,
            }
        ],
        "nodeAddressAutodetectionV4": {"kubernetes": "NodeInternalIP"},  # = kubelet --node-ip
    }
    if mtu is not None:
        network["mtu"] = mtu
    return {
        "calicoNetwork": network,
        # calico-kube-controllers (and any other operator Deployment; not the calico-node or
        # typha pods) on the control planes: it can write nodes, IPAM and policy, so it stays
        # off the workers that run untrusted pods. It tolerates the control-plane taint
        # (tigera/operator v1.42.3 pkg/render/kubecontrollers kube-controllers.go:646,
        # rmeta.TolerateCriticalAddonsAndControlPlane; the selector: api/v1
        # installation_types.go ControlPlaneNodeSelector, "all resources ... excluding daemonsets").
        "controlPlaneNodeSelector": {v.CONTROL_PLANE_ROLE: ""},
    }


class Calico(pulumi.ComponentResource):
    """CRDs -> operator -> Installation/default; `.ready` is Calico serving pod networks."""

    def __init__(
        self,
        name: str,
        cfg: ClusterConfig,
        *,
        network_mtu: pulumi.Input[int],
        provider: k8s.Provider,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__(type_token("kubernetes", "Calico"), name, None, opts)
        repo = k8s.helm.v3.RepositoryOptsArgs(repo=v.CALICO_CHART_REPO)

        def child(after: pulumi.Input[list[pulumi.Resource]]) -> pulumi.ResourceOptions:
            return pulumi.ResourceOptions(parent=self, provider=provider, depends_on=after)

        # `helm template` + server-side apply (module docstring); the CRDs inherit the
        # explicit provider from this component and are named by their own (cluster-wide
        # unique) names: Chart v3 in Python does not apply resource_prefix to children.
        self.crds = k8s.helm.v3.Chart(
            f"{name}-crds",
            k8s.helm.v3.ChartOpts(
                chart=CRD_CHART,
                version=chart_version(cfg),
                fetch_opts=k8s.helm.v3.FetchOpts(repo=v.CALICO_CHART_REPO),
                transformations=[retain_crd],
            ),
            opts=pulumi.ResourceOptions(parent=self, provider=provider),
        )
        self.operator = k8s.helm.v3.Release(
            f"{name}-operator",
            name="calico",
            chart=OPERATOR_CHART,
            version=chart_version(cfg),
            repository_opts=repo,
            namespace=OPERATOR_NAMESPACE,
            create_namespace=True,
            values=operator_values(),
            timeout=RELEASE_TIMEOUT_SECONDS,
            # `.ready`, not the component: its CRDs are declared only once the chart is
            # rendered, and a component in depends_on stands for the children it has *then*.
            # The operator chart renders operator.tigera.io objects (APIServer/default), so
            # it needs every CRD Established.
            opts=child(self.crds.ready),
        )
        spec = pulumi.Output.from_input(network_mtu).apply(lambda m: installation_spec(cfg, pod_mtu(m)))
        self.installation = k8s.apiextensions.CustomResource(
            f"{name}-installation",
            api_version="operator.tigera.io/v1",
            kind="Installation",
            metadata={
                "name": "default",  # the operator only reconciles Installation/default
                # pulumi-kubernetes >= 4.18 waits for a custom condition (pulumi-kubernetes #1260,
                # "Improved Kubernetes await logic"); the operator mirrors its TigeraStatus
                # into Installation status.conditions as Ready/Progressing/Degraded
                # (_api.mdx InstallationStatus). So "created" means "Calico is up".
                "annotations": {
                    "pulumi.com/waitFor": "condition=Ready",
                    "pulumi.com/timeoutSeconds": str(INSTALLATION_TIMEOUT_SECONDS),
                    # A safety net for defaults a future operator writes back (K1): Pulumi
                    # takes the fields it declares instead of failing on a conflict
                    # (pulumi-kubernetes provider/pkg/await/await.go patchForce).
                    "pulumi.com/patchForce": "true",
                },
            },
            spec=spec,
            opts=child([self.operator]),
        )
        self.ready: list[pulumi.Resource] = [self.installation]
        self.register_outputs(
            {"installation": self.installation.metadata, "operatorStatus": self.operator.status}
        )
