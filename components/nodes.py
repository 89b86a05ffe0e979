"""Servers. INTERFACE SKELETON: owned by the OpenStack-layer work (issue #3).

class NodePool(pulumi.ComponentResource), token katak8s:nodes:NodePool
    NodePool(name, cfg, *, network, access, opts=None)
    .control_planes: list[phase.NodeTarget]   index order; [0] is the kubeadm init node
    .workers: list[phase.NodeTarget]
    .jump_host: Output[str]                   floating IP of the first control plane
"""
