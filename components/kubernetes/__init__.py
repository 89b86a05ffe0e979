"""In-cluster objects. INTERFACE SKELETON: owned by the Kubernetes-layer work (issue #6).

class KubernetesAddons(pulumi.ComponentResource), token katak8s:kubernetes:KubernetesAddons
    KubernetesAddons(name, cfg, *, cluster, network, opts=None)
    .provider: pulumi_kubernetes.Provider
    .runtime_class_names: list[str]
"""
