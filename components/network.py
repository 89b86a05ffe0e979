"""Network layer. INTERFACE SKELETON: owned by the OpenStack-layer work (issue #3).

class ClusterNetwork(pulumi.ComponentResource), token katak8s:network:ClusterNetwork
    ClusterNetwork(name, cfg, opts=None)
    .network_id: Output[str]; .subnet_id: Output[str]
    .mtu: Output[int]                      the network's MTU read back (Calico derives its own)
    .security_group_ids: dict[str, Output[str]]   keyed by naming.CONTROL_PLANE / naming.WORKER
"""
