"""The Kubernetes API endpoint. INTERFACE SKELETON: owned by the OpenStack-layer work (issue #3).

class ApiEndpoint(pulumi.ComponentResource), token katak8s:endpoint:ApiEndpoint
    ApiEndpoint(name, cfg, *, network, nodes, opts=None)
    .public_host: Output[str]    what kubectl reaches: the LB floating IP (HA) or cp-0's floating IP
    .private_host: Output[str]   kubeadm controlPlaneEndpoint host: the LB VIP (HA) or cp-0's private IP
    .port: int                   versions.API_PORT
"""
