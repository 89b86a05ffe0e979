"""The OpenStack cloud controller (openstack-cloud-controller-manager, "OCCM").

class CloudController(pulumi.ComponentResource), token katak8s:kubernetes:CloudController
    CloudController(name, cfg, *, cloud, provider, cluster, after, opts=None)
    .secret: Secret kube-system/cloud-config (cloud.conf: secret)
    .release: helm.v3.Release
    .initialized: phase.Phase      on cp-0: no registered node is left uninitialized
    .ready: [release, initialized.command]

What it does here: initializes each Node (its addresses, zone and instance-type labels)
and clears the `node.cloudprovider.kubernetes.io/uninitialized` taint every kubelet
registers with under cloud-provider external (components/cluster/kubeadm.py); deletes the
Node of a deleted server; serves Services of type LoadBalancer with Octavia. Not the route
controller (Calico VXLAN needs no Neutron routes; without `[Route] router-id` it is idle
anyway: CPO pkg/openstack/openstack.go Routes) and not `manage-security-groups`: it adds
groups to node ports that Pulumi owns, and the next port update would drop them
(terraform-provider-openstack #552); the static NodePort rule in
components/openstack/firewall.py admits the load balancers instead.

Order (openstack-integration.md §1.4): the release waits for the Calico operator only, not
for the Installation: calico-kube-controllers (part of the Installation's Ready) does not
tolerate the uninitialized taint, so it starts only after this controller, while the
controller (hostNetwork, on control planes) needs nothing but calico-node, which tolerates
every taint. Waiting for the Installation first would deadlock.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import versions as v
from components.config import ClusterConfig
from components.kubernetes.provider import pinned_release
from components.naming import type_token
from components.nodes.phase import Phase, run_phase
from components.openstack.login import CA_PATH

NAMESPACE = "kube-system"
SECRET_NAME = "cloud-config"  # the chart's default secret.name; its key is cloud.conf
SECRET_KEY = "cloud.conf"
CA_KEY = "ca.crt"  # mounted beside cloud.conf at /etc/config (components/openstack/login.py CA_PATH)
RELEASE_NAME = "openstack-cloud-controller-manager"
# Helm's wait covers the chart's objects only: while the nodes are NotReady the DaemonSet
# desires no pod and passes (helm pkg/kube/ready.go daemonSetReady). The proof that the
# controller runs is `initialized` (scripts/remote/cluster/cloud-ready.sh), bounded by
# INIT_TIMEOUT: calico-node must make the nodes Ready first (image pulls).
RELEASE_TIMEOUT_SECONDS = 600
INIT_TIMEOUT = 1200
UNINITIALIZED_TAINT = "node.cloudprovider.kubernetes.io/uninitialized"
# Its pods restart when this annotation changes: the chart's checksum/config hashes only the
# chart's own cloudConfig values, never an external Secret (daemonset.yaml), and the
# controller reads cloud.conf once, at start.
CONFIG_DIGEST_ANNOTATION = "katak8s.io/cloud-config-sha256"
CONTROLLERS = ("cloud-node", "cloud-node-lifecycle", "service")
# Octavia health monitors: needed for externalTrafficPolicy Local, off by default in OCCM.
# Durations need a unit: they are parsed by time.ParseDuration (CPO pkg/util/util.go MyDuration).
MONITOR = {"create-monitor": "true", "monitor-delay": "5s", "monitor-timeout": "3s", "monitor-max-retries": "1"}


@dataclass(frozen=True, kw_only=True)
class CloudConf:
    """The values of cloud.conf (CPO docs/openstack-cloud-controller-manager/
    using-openstack-cloud-controller-manager.md: Global, LoadBalancer, Metadata)."""

    auth_url: str
    region: str
    credential_id: str
    credential_secret: str = ""  # never in repr
    floating_network_id: str
    subnet_id: str
    ca_cert: str = ""

    def __repr__(self) -> str:
        return f"CloudConf(auth_url={self.auth_url!r}, region={self.region!r})"


def _quote(value: str) -> str:
    """A gcfg string value (the format OCCM reads): quoted, with \\ and " escaped."""
    if "\n" in value or "\r" in value:
        raise ValueError("a cloud.conf value must be one line")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def global_section(auth_url: str, region: str, credential_id: str, credential_secret: str,
                   ca: bool = False) -> dict[str, str]:
    """[Global] of the cloud.conf of the controller and of Cinder CSI (the same gcfg reader,
    CPO pkg/client AuthOpts): an application credential needs no user, project or domain
    (using-openstack-cloud-controller-manager.md :112-124). `ca`: the login's own CA, in the
    same Secret as ca.crt (OCCM builds its TLS pool from ca-file only: pkg/client/client.go)."""
    return {"auth-url": auth_url, **({"region": region} if region else {}),
            "application-credential-id": credential_id, "application-credential-secret": credential_secret,
            **({"ca-file": CA_PATH} if ca else {})}


def secret_data(conf_text: pulumi.Output[str], ca_cert: pulumi.Input[str]) -> pulumi.Output[dict[str, str]]:
    """The Secret's stringData: cloud.conf, and ca.crt when the login has its own CA."""
    return pulumi.Output.all(conf_text, ca_cert).apply(
        lambda a: {SECRET_KEY: a[0], **({CA_KEY: a[1]} if a[1] else {})})


def render_ini(sections: dict[str, dict[str, str]], source: str) -> str:
    lines = [f"# Generated by katak8s ({source})."]
    for section, values in sections.items():
        lines.append(f"[{section}]")
        lines += [f"{key}={_quote(value)}" for key, value in values.items()]
    return "\n".join(lines) + "\n"


# The metadata service first: Nova's config drive is optional per cloud.
METADATA = {"search-order": "metadataService,configDrive"}


def render_cloud_conf(conf: CloudConf) -> str:
    sections: dict[str, dict[str, str]] = {
        "Global": global_section(conf.auth_url, conf.region, conf.credential_id, conf.credential_secret,
                                 bool(conf.ca_cert)),
        "LoadBalancer": {
            # Explicit: with several external networks OCCM cannot guess (docs :193-194).
            "floating-network-id": conf.floating_network_id,
            "subnet-id": conf.subnet_id,  # VIPs and members on the node subnet
            "lb-provider": "amphora",
            **MONITOR,
            "manage-security-groups": "false",
        },
        "Metadata": METADATA,
    }
    return render_ini(sections, "components/kubernetes/cloud_controller.py")


def config_digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def controller_values(cfg: ClusterConfig, digest: str) -> dict[str, Any]:
    """openstack-cloud-controller-manager chart values (charts/openstack-cloud-controller-manager/
    values.yaml at openstack-cloud-controller-manager-2.36.0). The chart's own nodeSelector
    (control planes), tolerations (uninitialized, control-plane) and dnsPolicy ClusterFirst
    stay: with hostNetwork that is the node's resolver, not CoreDNS, which waits for this
    controller (kubespray #10914's deadlock came from ClusterFirstWithHostNet)."""
    return {
        # Pulumi owns the Secret (built from secret outputs); the chart only mounts it.
        "secret": {"enabled": True, "create": False, "name": SECRET_NAME},
        "cluster": {"name": cfg.cloud_cluster_name},
        "enabledControllers": list(CONTROLLERS),
        "podAnnotations": {CONFIG_DIGEST_ANNOTATION: digest},
    }


@dataclass(frozen=True, kw_only=True)
class InitializedParams:
    uninitialized_taint: str
    init_timeout: int
    controller: str  # its DaemonSet in kube-system, whose logs a timeout shows


def cloud_config_secret(parent: pulumi.Resource, name: str, secret_name: str, text: pulumi.Output[str],
                        ca_cert: pulumi.Input[str], provider: k8s.Provider,
                        after: list[pulumi.Resource]) -> tuple[k8s.core.v1.Secret, pulumi.Output[str]]:
    """A kube-system Secret holding a cloud.conf (and the login's CA), and the digest of the
    text that restarts the pods reading it. Shared by the controller and Cinder CSI."""
    secret = k8s.core.v1.Secret(
        name,
        metadata={"name": secret_name, "namespace": NAMESPACE, "labels": {"app.kubernetes.io/managed-by": "katak8s"}},
        type="Opaque",
        # pulumi-kubernetes keeps Secret data secret in state (provider.go, PR #803/#1577);
        # the text is a secret Output besides.
        string_data=pulumi.Output.secret(secret_data(text, ca_cert)),
        opts=pulumi.ResourceOptions(parent=parent, provider=provider, depends_on=after))
    # The digest of a text holding a random secret reveals nothing of it: shown in plain,
    # so a preview of the release still shows its values.
    return secret, pulumi.Output.unsecret(text.apply(config_digest))


class CloudController(pulumi.ComponentResource):
    def __init__(self, name: str, cfg: ClusterConfig, *, cloud: pulumi.Input[CloudConf],
                 provider: k8s.Provider, cluster: Any, after: list[pulumi.Resource],
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__(type_token("kubernetes", "CloudController"), name, None, opts)
        conf = pulumi.Output.from_input(cloud)
        text = pulumi.Output.secret(conf.apply(render_cloud_conf))
        self.secret, digest = cloud_config_secret(self, f"{name}-config", SECRET_NAME, text,
                                                  conf.apply(lambda c: c.ca_cert), provider, after)
        values = digest.apply(lambda d: controller_values(cfg, d))
        self.release = pinned_release(
            self, f"{name}-release", provider, release=RELEASE_NAME, chart=v.CLOUD_PROVIDER_CHART,
            version=v.CLOUD_PROVIDER_CHARTS[cfg.kubernetes_minor], repo=v.CLOUD_PROVIDER_CHART_REPO,
            namespace=NAMESPACE, values=values, timeout=RELEASE_TIMEOUT_SECONDS, after=[self.secret, *after])
        # The proof that the controller runs: every node registered by then is initialized.
        # Not after every join: that would put the control planes' joins, one after another,
        # on the path of everything else; a node joining later is initialized in seconds,
        # and the samples' own await covers it.
        self.initialized: Phase = run_phase(
            self, cluster.first_control_plane, cluster.first_scripts, phase="cloud-initialized",
            script="cluster/cloud-ready.sh",
            params=InitializedParams(uninitialized_taint=UNINITIALIZED_TAINT, init_timeout=INIT_TIMEOUT,
                                     controller=v.CLOUD_PROVIDER_CHART),  # occm.name: the chart name
            depends_on=[self.release, *cluster.api_ready])
        self.ready: list[pulumi.Resource] = [self.release, self.initialized.command]
        self.register_outputs({"release": self.release.status})
