"""OpenStack credentials of the in-cluster cloud components, and what they log in to.

class CloudCredentials(pulumi.ComponentResource), token katak8s:openstack:CloudCredentials
    CloudCredentials(name, cfg, *, ca_cert="", opts=None)
    .controller: openstack.identity.ApplicationCredential | None   the cloud controller's
    .csi: openstack.identity.ApplicationCredential | None          Cinder CSI's
    .auth: Output[CloudAuth]       Keystone URL, region and CA the components log in with

One application credential per component, so each can be revoked and rotated alone
(openstack-integration.md §5.2). Least privilege: only `cloudCredentialRoles` (Keystone
inherits *all* of the creator's roles when `roles` is omitted: terraform-provider-openstack
docs/resources/identity_application_credential_v3.md), never `unrestricted` (it could create
more credentials and trusts). Every argument of the resource forces a replacement
(resource_openstack_identity_application_credential_v3.go, all ForceNew), and Keystone
wants names unique per user, so the name carries the rotation tag and a digest of the
roles: Pulumi's create-before-delete then makes the new credential, the Secret and the
controller's restart follow (components/kubernetes/cloud_controller.py), and the old one
goes last.

What the stack's own login allows and passes on (a restricted application credential,
the CA) is read at preview by components/openstack/login.py.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_openstack as openstack

from components.config import NAMESPACE, ClusterConfig, ConfigError
from components.naming import type_token


@dataclass(frozen=True)
class CloudAuth:
    """Where the in-cluster components authenticate: the catalog's public Keystone v3 URL."""

    auth_url: str
    region: str
    ca_cert: str = ""  # PEM, when the login trusts its own CA (components/openstack/login.py)


def credential_name(cfg: ClusterConfig, component: str) -> str:
    roles = hashlib.sha256(",".join(sorted(cfg.cloud_credential_roles)).encode()).hexdigest()[:6]
    return f"{cfg.cloud_cluster_name}-{component}-{cfg.cloud_credential_rotation}-{roles}"


def keystone_v3(url: str) -> str:
    """The Keystone v3 endpoint of a catalog URL (devstack's `/identity`, `:5000`, `.../v3`
    or a legacy `.../v2.0`): cloud.conf's auth-url names v3, which gophercloud then uses
    without version discovery (openstack/utils/choose_version.go suffix match), and
    application credentials exist only in v3."""
    base = url.rstrip("/")
    for suffix in ("/v3", "/v2.0"):
        base = base.removesuffix(suffix)
    return f"{base}/v3"


def _field(item: Any, name: str, wire: str | None = None) -> Any:
    """A field of an invoke result's nested item: the SDK delivers @output_type dicts keyed
    by the Python name (rpc.translate_output_properties); a plain dict keyed by the wire
    name is read too."""
    if isinstance(item, Mapping):
        return item.get(name, item.get(wire or name))
    return getattr(item, name, None)


def cloud_auth(catalog: list[Any], region: str, ca_cert: str = "") -> CloudAuth:
    """The public identity endpoint of the login's region from a token's service catalog
    (openstack.identity.get_auth_scope `service_catalogs`). Without a region, a catalog
    with public identity endpoints in several regions is refused, not guessed."""
    urls = [_field(e, "url") for s in catalog or [] if _field(s, "type") == "identity"
            for e in _field(s, "endpoints") or []
            if _field(e, "interface") == "public" and _field(e, "url")
            and (not region or not _field(e, "region")
                 or region in (_field(e, "region"), _field(e, "region_id", "regionId")))]
    regions = {_field(e, "region") for s in catalog or [] if _field(s, "type") == "identity"
               for e in _field(s, "endpoints") or [] if _field(e, "interface") == "public"}
    if not region and len(regions - {"", None}) > 1:
        raise ConfigError([f"{NAMESPACE}:cloudProvider / cinderCsi: the Keystone catalog lists public identity "
                           f"endpoints in several regions ({', '.join(sorted(r for r in regions if r))}) and the "
                           "login names none: set openstack:region (or OS_REGION_NAME)"])
    if not urls:
        raise ConfigError([f"{NAMESPACE}:cloudProvider: the Keystone catalog of this login lists no public "
                           f"identity endpoint{' in region ' + region if region else ''}, which the cloud "
                           "controller must log in to; set cloudProvider false, or ask the cloud for one"])
    return CloudAuth(auth_url=keystone_v3(sorted(urls)[0]), region=region, ca_cert=ca_cert)


class CloudCredentials(pulumi.ComponentResource):
    def __init__(self, name: str, cfg: ClusterConfig, *, ca_cert: str = "",
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__(type_token("openstack", "CloudCredentials"), name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        def credential(suffix: str, component: str, what: str) -> openstack.identity.ApplicationCredential:
            return openstack.identity.ApplicationCredential(
                f"{name}-{suffix}",
                name=credential_name(cfg, component),
                description=f"katak8s: {what} of cluster {cfg.cloud_cluster_name}",
                roles=list(cfg.cloud_credential_roles),
                unrestricted=False,
                opts=child)

        self.controller = credential("controller", "occm", "the OpenStack cloud controller") \
            if cfg.cloud_provider else None
        self.csi = credential("csi", "csi", "Cinder CSI") if cfg.cinder_csi else None
        # An invoke (runs at preview): the login's region and its token's service catalog.
        scope = openstack.identity.get_auth_scope_output(
            name=cfg.cloud_cluster_name, opts=pulumi.InvokeOutputOptions(parent=self))
        self.auth: pulumi.Output[CloudAuth] = pulumi.Output.all(scope.service_catalogs, scope.region).apply(
            lambda a: cloud_auth(a[0], a[1] or "", ca_cert))
        self.register_outputs({"controller": self.controller.id if self.controller else None,
                               "csi": self.csi.id if self.csi else None})
