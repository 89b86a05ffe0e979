"""Node bootstrap phases 1-5. INTERFACE SKELETON: owned by the node-bootstrap work (issue #4).

class NodeBootstrap(pulumi.ComponentResource), token katak8s:bootstrap:NodeBootstrap
    NodeBootstrap(name, cfg, *, nodes, opts=None)
    .phases: dict[str, list[phase.Phase]]   node name -> its phases in order
    .ready: dict[str, pulumi.Resource]      node name -> its last phase's command
"""
