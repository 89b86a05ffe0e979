"""The outputs contract. INTERFACE SKELETON: owned by the cluster-formation work (issue #5).

def export_outputs(cfg, *, access, network, endpoint, nodes, cluster, addons) -> None
"""
