"""The stack's kubeconfig, rebuilt from the validated fields of the admin.conf read back
from the first control plane, and nothing else.

A root user on cp-0 controls that file. Anything it carried beyond the CA and the client
certificate would reach every machine that uses the `kubeconfig` output: an `exec:`
plugin or an `auth-provider` runs a program there (in the Kubernetes provider, the smoke
test, every StackReference consumer), a `proxy-url` or `tls-server-name` redirects the
connection, `insecure-skip-tls-verify` drops the server check (issue #12, section 2).
So the output is written from scratch: three PEM values parsed and checked here, names
and the server address set by the program. Any other field in the cluster, user or
context that is used is refused by name, never echoed with its value.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

import pulumi
import yaml

# admin.conf is ~6 KiB; a cap keeps a hostile file (YAML alias bombs included) cheap.
MAX_BYTES = 64 * 1024
ADMIN_USER = "kubernetes-admin"  # the user name kubeadm writes into admin.conf, kept for familiarity
CLUSTER_FIELDS = frozenset({"server", "certificate-authority-data"})
USER_FIELDS = frozenset({"client-certificate-data", "client-key-data"})
CONTEXT_FIELDS = frozenset({"cluster", "user"})
_PEM = re.compile(r"-----BEGIN ([A-Z ]+)-----\r?\n([A-Za-z0-9+/=\r\n]+)-----END \1-----\r?\n?")
KEY_TYPES = ("PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY")


class KubeconfigError(pulumi.RunError, ValueError):
    """The read-back admin.conf is not a plain kubeadm admin kubeconfig (a RunError: the CLI
    shows the message, not a traceback)."""


def _fail(problem: str) -> KubeconfigError:
    return KubeconfigError(
        f"the admin.conf read back from the first control plane {problem}; katak8s trusts only its CA, "
        "client certificate and key. Check /etc/kubernetes/admin.conf on that node (a changed file may "
        "mean the node is compromised), or regenerate it: sudo kubeadm init phase kubeconfig admin")


def _pem(data: Any, field: str, types: tuple[str, ...], *, many: bool = False) -> str:
    """`data` (base64 of PEM, as kubeconfig `*-data` fields hold) as checked PEM text."""
    if not isinstance(data, str):
        raise _fail(f"has no {field}")
    try:
        text = base64.b64decode(data, validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError):
        raise _fail(f"has a {field} that is not base64 of PEM text") from None
    blocks = list(_PEM.finditer(text))
    if not blocks or "".join(m.group(0) for m in blocks).strip() != text.strip() or (len(blocks) > 1 and not many):
        raise _fail(f"has a {field} that is not {'PEM blocks' if many else 'one PEM block'} and nothing else")
    for m in blocks:
        if m.group(1) not in types:
            raise _fail(f"has a {field} holding a PEM {m.group(1)!r}, not one of {', '.join(types)}")
        try:
            der = base64.b64decode(re.sub(r"\s", "", m.group(2)), validate=True)
        except binascii.Error:
            raise _fail(f"has a {field} whose PEM body is not base64") from None
        if len(der) < 2 or der[0] != 0x30:  # every certificate and key is a DER SEQUENCE
            raise _fail(f"has a {field} whose PEM body is not DER")
    return text


def _only(entry: Any, allowed: frozenset[str], what: str) -> dict[str, Any]:
    if not isinstance(entry, dict):
        raise _fail(f"has no {what}")
    extra = sorted(set(entry) - allowed)
    if extra:
        raise _fail(f"sets {', '.join(extra)} in its {what}, which katak8s refuses")
    return entry


def _named(items: Any, name: Any, key: str, what: str) -> dict[str, Any]:
    found = [i for i in items or [] if isinstance(i, dict) and i.get("name") == name]
    if len(found) != 1 or not isinstance(found[0].get(key), dict):
        raise _fail(f"has no single {what} named by its current context")
    return found[0][key]


def rebuild(admin_conf: str, *, cluster_name: str, public_host: str, port: int) -> str:
    """A new kubeconfig: the current context's CA and client credentials, checked; the
    server `https://public_host:port`; names set here. Raises KubeconfigError otherwise."""
    if not admin_conf or len(admin_conf.encode()) > MAX_BYTES:
        raise _fail("is empty or larger than 64 KiB")
    try:
        doc = yaml.safe_load(admin_conf)
    except yaml.YAMLError:
        raise _fail("is not YAML") from None
    if not isinstance(doc, dict) or doc.get("kind") != "Config" or not doc.get("clusters"):
        raise _fail("is empty or has no clusters")
    context = _only(_named(doc.get("contexts"), doc.get("current-context"), "context", "context"),
                    CONTEXT_FIELDS, "current context")
    cluster = _only(_named(doc.get("clusters"), context.get("cluster"), "cluster", "cluster"),
                    CLUSTER_FIELDS, "cluster")
    user = _only(_named(doc.get("users"), context.get("user"), "user", "user"), USER_FIELDS, "user")
    ca = _pem(cluster.get("certificate-authority-data"), "certificate-authority-data", ("CERTIFICATE",), many=True)
    cert = _pem(user.get("client-certificate-data"), "client-certificate-data", ("CERTIFICATE",), many=True)
    key = _pem(user.get("client-key-data"), "client-key-data", KEY_TYPES)

    def b64(text: str) -> str:
        return base64.b64encode(text.encode("ascii")).decode("ascii")

    context_name = f"{ADMIN_USER}@{cluster_name}"
    return yaml.safe_dump({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster_name, "cluster": {
            "certificate-authority-data": b64(ca), "server": f"https://{public_host}:{port}"}}],
        "contexts": [{"name": context_name, "context": {"cluster": cluster_name, "user": ADMIN_USER}}],
        "current-context": context_name,
        "users": [{"name": ADMIN_USER, "user": {
            "client-certificate-data": b64(cert), "client-key-data": b64(key)}}],
        "preferences": {},
    }, sort_keys=False, default_flow_style=False)
