"""How the stack itself logs in to OpenStack, read at preview: what the in-cluster components
inherit from it (the CA that signs Keystone's certificate), and what it forbids (creating
application credentials from a restricted one).

    login = check_login(cfg)      # raises ConfigError before any resource; login.ca_cert

The sources are the provider's: `openstack:` config, the OS_* environment, and the named
cloud of clouds.yaml merged with secure.yaml, found where gophercloud/utils clientconfig
looks (FindAndReadCloudsYAML / FindAndReadSecureCloudsYAML: $OS_CLIENT_CONFIG_FILE, then
clouds.yaml or clouds.yml in the working directory, ~/.config/openstack, /etc/openstack).
With a named cloud, terraform-provider-openstack takes the credentials from its entry and
the environment, not from the provider's own applicationCredential* keys (utils
auth/config.go LoadAndValidate).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import yaml

from components.config import NAMESPACE, ClusterConfig, ConfigError

CA_PATH = "/etc/config/ca.crt"
CA_KEYS = "openstack:cacertFile / OS_CACERT / clouds.yaml cacert"  # where both charts mount their Secret: /etc/config


@dataclass(frozen=True)
class Login:
    ca_cert: str = ""  # PEM of the CA the login trusts; "" for the system's


def _find(env: Mapping[str, str], names: tuple[str, ...], override: str | None) -> Path | None:
    if override and env.get(override):
        return Path(env[override])
    for folder in (Path.cwd(), Path.home() / ".config/openstack", Path("/etc/openstack")):
        for name in names:
            if (folder / name).is_file():
                return folder / name
    return None


def _merge(base: Any, over: Any) -> Any:
    if isinstance(base, Mapping) and isinstance(over, Mapping):
        return {**base, **{k: _merge(base.get(k), v) for k, v in over.items()}}
    return over if over is not None else base


def cloud_entry(cloud: str | None, clouds: Mapping[str, Any] | None, secure: Mapping[str, Any] | None) -> dict:
    """The named cloud's entry, secure.yaml's values over clouds.yaml's (pure)."""
    if not cloud:
        return {}
    entry = _merge(((clouds or {}).get("clouds") or {}).get(cloud), ((secure or {}).get("clouds") or {}).get(cloud))
    return dict(entry) if isinstance(entry, Mapping) else {}


def application_credential_login(provider: Mapping[str, Any], env: Mapping[str, str],
                                 entry: Mapping[str, Any]) -> str | None:
    """How the stack logs in with an application credential, or None (pure)."""
    cloud = provider.get("cloud") or env.get("OS_CLOUD")
    if not cloud:
        for key in ("applicationCredentialId", "applicationCredentialName"):
            if provider.get(key):
                return f"openstack:{key}"
    for var in ("OS_APPLICATION_CREDENTIAL_ID", "OS_APPLICATION_CREDENTIAL_NAME"):
        if env.get(var):
            return var
    auth = entry.get("auth") if isinstance(entry.get("auth"), Mapping) else {}
    if "applicationcredential" in str(entry.get("auth_type", "")).lower() or any(
            k in auth for k in ("application_credential_id", "application_credential_name")):
        return f"clouds.yaml cloud {cloud!r}"
    return None


def ca_file(provider: Mapping[str, Any], env: Mapping[str, str], entry: Mapping[str, Any]) -> str | None:
    """The CA bundle the login trusts: openstack:cacertFile, OS_CACERT, or the cloud's `cacert`."""
    return provider.get("cacertFile") or env.get("OS_CACERT") or entry.get("cacert") or None


def read_ca(path: str) -> str:
    """The PEM at `path`, or `path` itself when it is PEM text (the provider accepts both:
    terraform-provider-openstack utils auth/util.go pathOrContents)."""
    if "-----BEGIN CERTIFICATE-----" in path:
        return path
    try:
        text = Path(path).expanduser().read_text()
    except OSError as err:
        raise ConfigError([f"{CA_KEYS}: cannot read {path} ({err.strerror}); the cloud controller and "
                           "Cinder CSI need the CA that signs Keystone's certificate"]) from err
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise ConfigError([f"{CA_KEYS}: {path} holds no PEM certificate"])
    return text


def login_refusal(cfg: ClusterConfig, login: str | None) -> str | None:
    if not cfg.cloud_credentials or cfg.login_credential_unrestricted or login is None:
        return None
    return (f"{NAMESPACE}:cloudProvider / cinderCsi: this stack logs in to OpenStack with an application "
            f"credential ({login}), and Keystone lets a restricted one (what `openstack application credential "
            "create` makes by default) create no application credentials, so the cloud controller's and Cinder "
            "CSI's could not be made. Log in as a user instead, or with a credential created with --unrestricted "
            f"and set {NAMESPACE}:loginCredentialUnrestricted true, or set {NAMESPACE}:cloudProvider and "
            f"{NAMESPACE}:cinderCsi false")


def _load(path: Path | None) -> Mapping[str, Any] | None:
    try:
        data = yaml.safe_load(path.read_text()) if path else None
    except (OSError, yaml.YAMLError):
        return None  # the provider reports an unreadable clouds.yaml itself
    return data if isinstance(data, Mapping) else None


def check_login(cfg: ClusterConfig) -> Login:
    """Raise ConfigError at preview, before any resource; else what the components inherit."""
    if not cfg.cloud_credentials:
        return Login()
    env = dict(os.environ)
    provider = {k: pulumi.Config("openstack").get(k) for k in
                ("applicationCredentialId", "applicationCredentialName", "cloud", "cacertFile")}
    cloud = provider.get("cloud") or env.get("OS_CLOUD")
    entry = cloud_entry(cloud, _load(_find(env, ("clouds.yaml", "clouds.yml"), "OS_CLIENT_CONFIG_FILE")),
                        _load(_find(env, ("secure.yaml", "secure.yml"), None))) if cloud else {}
    problem = login_refusal(cfg, application_credential_login(provider, env, entry))
    if problem:
        raise ConfigError([problem])
    # strconv.ParseBool's true values, as the provider reads OS_INSECURE
    insecure = pulumi.Config("openstack").get_bool("insecure") or env.get("OS_INSECURE", "") in (
        "1", "t", "T", "TRUE", "true", "True") or entry.get("verify") is False
    if insecure:
        pulumi.log.warn("the stack logs in to OpenStack without verifying TLS (openstack:insecure, OS_INSECURE or "
                        "clouds.yaml verify: false); the cloud controller and Cinder CSI verify it and will fail "
                        "unless Keystone's CA is given (openstack:cacertFile, OS_CACERT or clouds.yaml cacert)")
    path = ca_file(provider, env, entry)
    return Login(ca_cert=read_ca(path) if path else "")
