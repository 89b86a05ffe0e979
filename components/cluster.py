"""Cluster formation. INTERFACE SKELETON: owned by the cluster-formation work (issue #5).

class KubeadmCluster(pulumi.ComponentResource), token katak8s:cluster:KubeadmCluster
    KubeadmCluster(name, cfg, *, nodes, bootstrap, endpoint, opts=None)
    .kubeconfig: Output[str]        secret, server rewritten to the public endpoint
    .ready: list[pulumi.Resource]   init + every join: the cluster exists once they are done
"""
