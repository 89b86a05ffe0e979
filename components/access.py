"""SSH access to the nodes. INTERFACE SKELETON: owned by the OpenStack-layer work (issue #3).

class SshAccess(pulumi.ComponentResource), token katak8s:access:SshAccess
    SshAccess(name, cfg, opts=None)
    .private_key: Output[str]   secret, OpenSSH private key (cfg.ssh_private_key or generated ED25519)
    .public_key: Output[str]    authorized_keys line
    .keypair: openstack.compute.Keypair
"""
