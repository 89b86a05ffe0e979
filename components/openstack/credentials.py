"""OpenStack credentials of the in-cluster cloud components, and what they log in to.

class CloudCredentials(pulumi.ComponentResource), token katak8s:openstack:CloudCredentials
    CloudCredentials(name, cfg, *, opts=None)
    .controller: openstack.identity.ApplicationCredential   the cloud controller's
    .auth: Output[CloudAuth]       Keystone URL and region the components log in to

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

`check_login` refuses at preview what Keystone would refuse half-way through an `up`: a
stack that logs in with a restricted application credential (the default of `openstack
application credential create`) cannot create credentials.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_openstack as openstack
import yaml

from components.config import NAMESPACE, ClusterConfig, ConfigError
from components.naming import type_token


@dataclass(frozen=True)
class CloudAuth:
    """Where the in-cluster components authenticate: the catalog's public Keystone v3 URL."""

    auth_url: str
    region: str


def credential_name(cfg: ClusterConfig, component: str) -> str:
    roles = hashlib.sha256(",".join(sorted(cfg.cloud_credential_roles)).encode()).hexdigest()[:6]
    return f"{cfg.cloud_cluster_name}-{component}-{cfg.cloud_credential_rotation}-{roles}"


def keystone_v3(url: str) -> str:
    """The Keystone v3 endpoint of a catalog URL (devstack's `/identity`, or `:5000`, or
    already `.../v3`); cloud.conf's auth-url names the version (CPO docs example `.../v3`)."""
    base = url.rstrip("/")
    return base if base.endswith("/v3") else f"{base}/v3"


def _field(item: Any, name: str, wire: str | None = None) -> Any:
    """A field of an invoke result's nested item: a typed result object, or (inside an
    Output) the plain dict, keyed by the wire name."""
    if isinstance(item, Mapping):
        return item.get(wire or name, item.get(name))
    return getattr(item, name, None)


def cloud_auth(catalog: list[Any], region: str) -> CloudAuth:
    """The public identity endpoint of the login's region from a token's service catalog
    (openstack.identity.get_auth_scope `service_catalogs`)."""
    urls = [_field(e, "url") for s in catalog or [] if _field(s, "type") == "identity"
            for e in _field(s, "endpoints") or []
            if _field(e, "interface") == "public" and _field(e, "url")
            and (not region or not _field(e, "region")
                 or region in (_field(e, "region"), _field(e, "region_id", "regionId")))]
    if not urls:
        raise ConfigError([f"{NAMESPACE}:cloudProvider: the Keystone catalog of this login lists no public "
                           f"identity endpoint{' in region ' + region if region else ''}, which the cloud "
                           "controller must log in to; set cloudProvider false, or ask the cloud for one"])
    return CloudAuth(auth_url=keystone_v3(sorted(urls)[0]), region=region)


# gophercloud/utils clientconfig FindAndReadCloudsYAML: $OS_CLIENT_CONFIG_FILE, then
# ./clouds.yaml, ~/.config/openstack/clouds.yaml, /etc/openstack/clouds.yaml.
def _clouds_files(env: Mapping[str, str]) -> list[Path]:
    files = [Path(env["OS_CLIENT_CONFIG_FILE"])] if env.get("OS_CLIENT_CONFIG_FILE") else []
    return files + [Path("clouds.yaml"), Path.home() / ".config/openstack/clouds.yaml",
                    Path("/etc/openstack/clouds.yaml")]


def application_credential_login(provider: Mapping[str, Any], env: Mapping[str, str],
                                 clouds: Mapping[str, Any] | None) -> str | None:
    """How the stack logs in with an application credential, or None: the provider's
    `openstack:` config, the OS_* environment, or its clouds.yaml entry (pure)."""
    for key in ("applicationCredentialId", "applicationCredentialName"):
        if provider.get(key):
            return f"openstack:{key}"
    for var in ("OS_APPLICATION_CREDENTIAL_ID", "OS_APPLICATION_CREDENTIAL_NAME"):
        if env.get(var):
            return var
    if "applicationcredential" in env.get("OS_AUTH_TYPE", "").lower():
        return "OS_AUTH_TYPE=" + env["OS_AUTH_TYPE"]
    cloud = provider.get("cloud") or env.get("OS_CLOUD")
    entry = ((clouds or {}).get("clouds") or {}).get(cloud) if cloud else None
    if isinstance(entry, Mapping):
        auth = entry.get("auth") if isinstance(entry.get("auth"), Mapping) else {}
        if "applicationcredential" in str(entry.get("auth_type", "")).lower() or any(
                k in auth for k in ("application_credential_id", "application_credential_name")):
            return f"clouds.yaml cloud {cloud!r}"
    return None


def login_refusal(cfg: ClusterConfig, login: str | None) -> str | None:
    if not cfg.cloud_provider or cfg.login_credential_unrestricted or login is None:
        return None
    return (f"{NAMESPACE}:cloudProvider: this stack logs in to OpenStack with an application credential "
            f"({login}), and Keystone lets a restricted one (what `openstack application credential create` "
            "makes by default) create no application credentials, so the cloud controller's could not be "
            "made. Log in as a user instead, or with a credential created with --unrestricted and set "
            f"{NAMESPACE}:loginCredentialUnrestricted true, or set {NAMESPACE}:cloudProvider false")


def check_login(cfg: ClusterConfig) -> None:
    """Raise ConfigError at preview, before any resource, for the refusal above."""
    env = dict(os.environ)
    provider = {k: pulumi.Config("openstack").get(k) for k in
                ("applicationCredentialId", "applicationCredentialName", "cloud")}
    clouds = None
    if provider.get("cloud") or env.get("OS_CLOUD"):
        found = next((f for f in _clouds_files(env) if f.is_file()), None)
        try:
            clouds = yaml.safe_load(found.read_text()) if found else None
        except (OSError, yaml.YAMLError):
            clouds = None  # the provider reports an unreadable clouds.yaml itself
    problem = login_refusal(cfg, application_credential_login(provider, env, clouds))
    if problem:
        raise ConfigError([problem])


class CloudCredentials(pulumi.ComponentResource):
    def __init__(self, name: str, cfg: ClusterConfig, *, opts: pulumi.ResourceOptions | None = None):
        super().__init__(type_token("openstack", "CloudCredentials"), name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.controller = openstack.identity.ApplicationCredential(
            f"{name}-controller",
            name=credential_name(cfg, "occm"),
            description=f"katak8s: the OpenStack cloud controller of cluster {cfg.cloud_cluster_name}",
            roles=list(cfg.cloud_credential_roles),
            unrestricted=False,
            opts=child)
        # An invoke (runs at preview): the login's region and its token's service catalog.
        scope = openstack.identity.get_auth_scope_output(
            name=cfg.cloud_cluster_name, opts=pulumi.InvokeOutputOptions(parent=self))
        self.auth: pulumi.Output[CloudAuth] = pulumi.Output.all(scope.service_catalogs, scope.region).apply(
            lambda a: cloud_auth(a[0], a[1] or ""))
        self.register_outputs({"controller": self.controller.id})
