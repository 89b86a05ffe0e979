"""SSH access to the nodes: the login key pair.

class SshAccess(pulumi.ComponentResource), token katak8s:access:SshAccess
    SshAccess(name, cfg, *, deployed=None, opts=None)
    .private_key: Output[str]   secret, OpenSSH private key (cfg.ssh_private_key or generated ED25519)
    .public_key: Output[str]    authorized_keys line
    .keypair: openstack.compute.Keypair
    .keypair_name: str          the Nova key pair name (plain, so servers never see it unknown)
    .generated_key: tls.PrivateKey | None   set when no sshPrivateKey was configured

The private key is only ever a secret: wrapped here, in state (pulumi_tls marks its
private outputs secret) and in every connection that uses it.
"""

from __future__ import annotations

import pulumi
import pulumi_openstack as openstack
import pulumi_tls as tls

from components import naming
from components.config import ClusterConfig
from components.deployed import DeployedState

_OPENSSH_HEADER = "-----BEGIN OPENSSH PRIVATE KEY-----"


def keypair_name(cluster: str) -> str:
    """Nova key pair names are unique per user, so the cluster name is in it."""
    return f"{cluster}-ssh"


class SshAccess(pulumi.ComponentResource):
    def __init__(self, name: str, cfg: ClusterConfig, *, deployed: DeployedState | None = None,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__(naming.type_token("access", "SshAccess"), name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        self.generated_key: tls.PrivateKey | None = None
        if cfg.ssh_private_key:
            # Config strips the value; PEM needs its final newline back for some parsers.
            key_text = cfg.ssh_private_key.strip() + "\n"
            private_key = pulumi.Output.secret(key_text)
            # tls:getPublicKey reads either format; it is an invoke, so nothing is stored.
            fmt = ({"private_key_openssh": private_key} if key_text.startswith(_OPENSSH_HEADER)
                   else {"private_key_pem": private_key})
            derived = tls.get_public_key_output(**fmt, opts=pulumi.InvokeOutputOptions(parent=self))
            # The invoke result is secret because its input is; a public key is not.
            public_key = pulumi.Output.unsecret(derived.public_key_openssh)
        else:
            self.generated_key = tls.PrivateKey(f"{name}-key", algorithm="ED25519", opts=child)
            private_key = pulumi.Output.secret(self.generated_key.private_key_openssh)
            public_key = self.generated_key.public_key_openssh

        self.keypair_name = keypair_name(cfg.cluster_name)
        # Servers keep the key they booted with (cloud-init runs once), so a new key on a
        # deployed stack is refused here, before the key pair and anything after it is
        # declared (components/deployed.py).
        if deployed is not None:
            deployed.check(cfg, ssh_public_key=public_key)
        # The name is fixed, so a new key must delete the old key pair before creating its
        # replacement.
        self.keypair = openstack.compute.Keypair(
            f"{name}-keypair", name=self.keypair_name, public_key=public_key,
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(delete_before_replace=True)))

        self.private_key: pulumi.Output[str] = private_key
        self.public_key: pulumi.Output[str] = public_key
        self.register_outputs({"public_key": self.public_key, "keypair": self.keypair.name})
