"""components/cluster/kubeconfig.py: a compromised first control plane cannot put anything but a
CA, a client certificate and a key into the stack's kubeconfig (issue #12, section 2)."""

from __future__ import annotations

import base64
import copy

import pytest
import yaml
from harness import FAKE_KUBECONFIG

from components.cluster.kubeconfig import KubeconfigError, rebuild

SECRET_MARK = "S3CR3T-VALUE"


def _rebuild(doc: dict) -> str:
    return rebuild(yaml.safe_dump(doc), cluster_name="dev", public_host="203.0.113.10", port=6443)


def _admin() -> dict:
    return yaml.safe_load(FAKE_KUBECONFIG)


def test_the_output_is_rebuilt_from_the_three_pem_values_only():
    out = yaml.safe_load(_rebuild(_admin()))
    admin = _admin()
    assert out["clusters"] == [{"name": "dev", "cluster": {
        "certificate-authority-data": admin["clusters"][0]["cluster"]["certificate-authority-data"],
        "server": "https://203.0.113.10:6443"}}]
    assert out["users"] == [{"name": "kubernetes-admin", "user": admin["users"][0]["user"]}]
    assert out["current-context"] == "kubernetes-admin@dev"
    assert out["contexts"] == [{"name": "kubernetes-admin@dev",
                                "context": {"cluster": "dev", "user": "kubernetes-admin"}}]


def _user(**fields):
    doc = _admin()
    doc["users"][0]["user"].update(fields)
    return doc


def _cluster(**fields):
    doc = _admin()
    doc["clusters"][0]["cluster"].update(fields)
    return doc


def _context(**fields):
    doc = _admin()
    doc["contexts"][0]["context"].update(fields)
    return doc


HOSTILE = {
    "exec plugin": (_user(exec={"command": "/bin/sh", "args": ["-c", SECRET_MARK]}), "sets exec in its user"),
    "auth-provider": (_user(**{"auth-provider": {"name": "oidc", "config": {"x": SECRET_MARK}}}), "auth-provider"),
    "token": (_user(token=SECRET_MARK), "sets token in its user"),
    "basic auth": (_user(username="admin", password=SECRET_MARK), "password, username"),
    "cert from a file": (_user(**{"client-certificate": "/etc/" + SECRET_MARK}), "sets client-certificate in"),
    "proxy-url": (_cluster(**{"proxy-url": "socks5://" + SECRET_MARK}), "sets proxy-url in its cluster"),
    "insecure": (_cluster(**{"insecure-skip-tls-verify": True}), "insecure-skip-tls-verify"),
    "tls-server-name": (_cluster(**{"tls-server-name": SECRET_MARK}), "tls-server-name"),
    "context namespace": (_context(namespace=SECRET_MARK), "sets namespace in its current context"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_every_field_that_runs_or_redirects_is_refused_by_name(case):
    doc, message = HOSTILE[case]
    with pytest.raises(KubeconfigError, match=message) as err:
        _rebuild(doc)
    assert SECRET_MARK not in str(err.value) and "compromised" in str(err.value)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize("field,value,message", [
    ("client-key-data", _b64("not pem at all " + SECRET_MARK), "not one PEM block"),
    ("client-key-data", "!!" + SECRET_MARK, "not base64"),
    ("client-key-data", _b64("-----BEGIN CERTIFICATE-----\nMAMCAQE=\n-----END CERTIFICATE-----\n"),
     "not one of PRIVATE KEY"),
    ("client-key-data", _b64("-----BEGIN PRIVATE KEY-----\nQUJD\n-----END PRIVATE KEY-----\n"), "not DER"),
    ("client-certificate-data", _b64("-----BEGIN CERTIFICATE-----\nMAMCAQE=\n-----END CERTIFICATE-----\n"
                                     "exec: " + SECRET_MARK), "PEM blocks and nothing else"),
])
def test_pem_values_are_parsed_not_trusted(field, value, message):
    with pytest.raises(KubeconfigError, match=message) as err:
        _rebuild(_user(**{field: value}))
    assert SECRET_MARK not in str(err.value)


@pytest.mark.parametrize("mutate,message", [
    (lambda d: d.update({"current-context": "other"}), "no single context named"),
    (lambda d: d["clusters"].append(copy.deepcopy(d["clusters"][0])), "no single cluster"),
    (lambda d: d.update({"kind": "Pod"}), "empty or has no clusters"),
])
def test_the_current_context_must_name_exactly_one_cluster_and_user(mutate, message):
    doc = _admin()
    mutate(doc)
    with pytest.raises(KubeconfigError, match=message):
        _rebuild(doc)


@pytest.mark.parametrize("text", ["", "x" * (64 * 1024 + 1), "a: [b", "- not a mapping\n"])
def test_garbage_or_oversized_text_is_refused(text):
    with pytest.raises(KubeconfigError):
        rebuild(text, cluster_name="dev", public_host="203.0.113.10", port=6443)
