"""The one explicit Kubernetes provider, built from the cluster's secret kubeconfig."""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_kubernetes as k8s

from components.config import ClusterConfig


def checked_kubeconfig(text: str | None) -> str:
    """The kubeconfig text, or a clear error.

    An empty kubeconfig makes the provider plugin fall back to ambient loading
    ($KUBECONFIG, ~/.kube/config): objects would land in whatever cluster the operator's
    shell points at (pulumi-sdk.md §3.1). Refuse that instead.
    """
    if not text or not text.strip() or "clusters:" not in text:
        raise ValueError(
            "the cluster's kubeconfig output is empty or has no 'clusters:' section; "
            "check the kubeconfig step of KubeadmCluster (it reads /etc/kubernetes/admin.conf "
            "on the first control plane) before `pulumi up` again"
        )
    return text


def cluster_provider(
    name: str,
    cfg: ClusterConfig,
    *,
    kubeconfig: pulumi.Input[str],
    depends_on: Sequence[pulumi.Resource],
    parent: pulumi.Resource | None,
) -> k8s.Provider:
    """`pulumi_kubernetes.Provider` for this stack's cluster.

    - kubeconfig stays a secret end to end: the SDK does not mark it (pulumi-sdk.md §3.1),
      so it is wrapped in Output.secret here whatever the caller passed.
    - cluster_identifier: "the provider will only be replaced when clusterIdentifier
      changes; all other changes to provider configuration will be treated as updates"
      (provider.py docstring, pulumi-kubernetes 4.34.2). The cluster name is stable for
      the stack's life, so a re-issued kubeconfig (new endpoint, rotated client cert)
      updates the provider instead of replacing every object in the cluster.
    - delete_unreachable is left unset on purpose. A normal `pulumi destroy` deletes
      these objects before the cluster (they depend on it), so the cluster is reachable.
      Setting it true would drop objects from state on a transient partition during a
      refresh (the reason it is opt-in: pulumi-kubernetes #1379, #2489), and it would not
      help the Helm releases anyway (#2675; fix PR #4593 still open). For a cluster that
      is already gone, docs/kubernetes.md gives the procedure
      (PULUMI_K8S_DELETE_UNREACHABLE=true, then `pulumi state delete` for the releases).
    - enable_server_side_apply is set, not left to the SDK default, which
      PULUMI_K8S_ENABLE_SERVER_SIDE_APPLY=false in the operator's shell would turn off:
      the Calico CRDs must be applied server-side (calico.py: a client-side apply stores
      the whole object in an annotation capped at 256 KiB).
    """
    return k8s.Provider(
        name,
        kubeconfig=pulumi.Output.secret(pulumi.Output.from_input(kubeconfig).apply(checked_kubeconfig)),
        cluster_identifier=cfg.cluster_name,
        enable_server_side_apply=True,
        opts=pulumi.ResourceOptions(parent=parent, depends_on=list(depends_on)),
    )


def pinned_release(parent: pulumi.Resource, name: str, provider: k8s.Provider, *, release: str, chart: str,
                   version: str, repo: str, namespace: str, values: pulumi.Input[dict], timeout: int,
                   after: Sequence[pulumi.Resource]) -> k8s.helm.v3.Release:
    """A helm release of one pinned chart version through the cluster's provider, awaited up
    to `timeout` seconds, after `after` (the cloud controller, Cinder CSI, the CSR approver
    and metrics-server)."""
    return k8s.helm.v3.Release(
        name, name=release, chart=chart, version=version,
        repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=repo), namespace=namespace, values=values,
        timeout=timeout, opts=pulumi.ResourceOptions(parent=parent, provider=provider, depends_on=list(after)))
