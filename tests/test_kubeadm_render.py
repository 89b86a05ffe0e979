"""kubeadm v1beta4 rendering: golden files, and every field checked against upstream's types.

tests/schemas/kubeadm-v1beta4-fields.json is the field set of InitConfiguration,
ClusterConfiguration, JoinConfiguration and KubeletConfiguration transcribed from the Go
types (the file cites each source and commit); a field kubeadm does not define, or a
value of the wrong type, fails here instead of on a node (kubeadm rejects unknown fields
in v1beta4 with "strict decoding error").
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from components import versions as v
from components.cluster import kubeadm

SCHEMA = json.loads((Path(__file__).parent / "schemas" / "kubeadm-v1beta4-fields.json").read_text())
_DURATION = re.compile(r"^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$")
_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
_SCALARS = {
    "string": lambda x: isinstance(x, str),
    "bool": lambda x: isinstance(x, bool),
    "int": lambda x: isinstance(x, int) and not isinstance(x, bool),
    "number": lambda x: isinstance(x, (int, float)) and not isinstance(x, bool),
    "duration": lambda x: isinstance(x, str) and bool(_DURATION.match(x)),
    "time": lambda x: isinstance(x, str) and bool(_TIME.match(x)),
    "object": lambda x: isinstance(x, dict),
}

TOKEN = "abcdef.0123456789abcdef"
CA_HASH = "sha256:" + "9c" * 32
CERT_KEY = "0f" * 32


def _check(value: Any, typ: str, path: str, errors: list[str]) -> None:
    if typ.startswith("[]"):
        if not isinstance(value, list):
            errors.append(f"{path}: expected a list ({typ})")
            return
        for i, item in enumerate(value):
            _check(item, typ[2:], f"{path}[{i}]", errors)
    elif typ.startswith("map[string]"):
        if not isinstance(value, dict):
            errors.append(f"{path}: expected a map ({typ})")
            return
        for key, item in value.items():
            _check(item, typ[len("map[string]"):], f"{path}.{key}", errors)
    elif typ in SCHEMA["types"]:
        if not isinstance(value, dict):
            errors.append(f"{path}: expected an object ({typ})")
            return
        fields = SCHEMA["types"][typ]
        for key, item in value.items():
            if key not in fields:
                errors.append(f"{path}.{key}: unknown field of {typ}")
            else:
                _check(item, fields[key], f"{path}.{key}", errors)
    elif not _SCALARS[typ](value):
        errors.append(f"{path}: {value!r} is not a {typ}")


def schema_errors(text: str) -> list[str]:
    errors: list[str] = []
    for i, doc in enumerate(yaml.safe_load_all(text)):
        kind = SCHEMA["kinds"].get(f"{doc.get('apiVersion')}/{doc.get('kind')}")
        if kind is None:
            errors.append(f"document {i}: unknown apiVersion/kind {doc.get('apiVersion')}/{doc.get('kind')}")
            continue
        _check(doc, kind, kind, errors)
    return errors


def _cluster(hosts: tuple[str, str] = ("10.42.0.11", "203.0.113.10")) -> kubeadm.ClusterSpec:
    return kubeadm.ClusterSpec(cluster_name="dev", kubernetes_patch="1.36.4",
                               control_plane_host=hosts[0], public_host=hosts[1],
                               pod_subnet="192.168.0.0/16", service_subnet="10.96.0.0/12")


def _node(name: str, runtime: str, ip: str, taints=None) -> kubeadm.NodeRegistration:
    return kubeadm.NodeRegistration(name=name, cri_socket=v.CRI_SOCKETS[runtime], node_ip=ip, taints=taints)


CASES = {
    # 1 control plane, containerd: the endpoint is cp-0's own address.
    "kubeadm-init-1cp-containerd.yaml": lambda: kubeadm.render_init_config(
        _cluster(), _node("dev-cp-0", "containerd", "10.42.0.11")),
    # 3 control planes, CRI-O: the endpoint is the load balancer's VIP.
    "kubeadm-init-3cp-crio.yaml": lambda: kubeadm.render_init_config(
        kubeadm.ClusterSpec(cluster_name="prod", kubernetes_patch="1.35.8", control_plane_host="10.42.0.250",
                            public_host="198.51.100.7", pod_subnet="172.16.0.0/16",
                            service_subnet="10.100.0.0/16"),
        _node("prod-cp-0", "crio", "10.42.0.21")),
    "kubeadm-join-worker.yaml": lambda: kubeadm.render_join_config(kubeadm.JoinSpec(
        api_server_endpoint="10.42.0.11:6443", node=_node("dev-worker-3", "containerd", "10.42.0.33", ()),
        credentials=kubeadm.JoinCredentials(token=TOKEN, ca_cert_hash=CA_HASH))),
    "kubeadm-join-worker-dedicated.yaml": lambda: kubeadm.render_join_config(kubeadm.JoinSpec(
        api_server_endpoint="10.42.0.250:6443",
        node=_node("prod-worker-0", "crio", "10.42.0.40", (v.KATA_TAINT,)),
        credentials=kubeadm.JoinCredentials(token=TOKEN, ca_cert_hash=CA_HASH))),
    "kubeadm-join-control-plane.yaml": lambda: kubeadm.render_join_config(kubeadm.JoinSpec(
        api_server_endpoint="10.42.0.250:6443", node=_node("prod-cp-1", "crio", "10.42.0.22"),
        credentials=kubeadm.JoinCredentials(token=TOKEN, ca_cert_hash=CA_HASH, certificate_key=CERT_KEY),
        control_plane=True)),
    # A new stack's defaults: the external cloud provider (cloudProvider: kubelet flags per
    # node, KCM flag, no apiserver flag) and kubelet serving certificates (metricsServer).
    "kubeadm-init-cloud-provider.yaml": lambda: kubeadm.render_init_config(
        kubeadm.ClusterSpec(cluster_name="dev", kubernetes_patch="1.37.1", control_plane_host="10.42.0.250",
                            public_host="203.0.113.10", pod_subnet="192.168.0.0/16",
                            service_subnet="10.96.0.0/12", external_cloud_provider=True,
                            serving_certificates=True),
        kubeadm.NodeRegistration(name="dev-cp-0", cri_socket=v.CRI_SOCKETS["containerd"], node_ip="10.42.0.11",
                                 provider_id=v.PROVIDER_ID_PREFIX + "6f0c1a52-9a4e-4c55-8a09-2f3b1d7e4c10")),
    "kubeadm-join-worker-cloud-provider.yaml": lambda: kubeadm.render_join_config(kubeadm.JoinSpec(
        api_server_endpoint="10.42.0.250:6443",
        node=kubeadm.NodeRegistration(name="dev-worker-0", cri_socket=v.CRI_SOCKETS["containerd"],
                                      node_ip="10.42.0.30", taints=(),
                                      provider_id=v.PROVIDER_ID_PREFIX + "0d9e8b7a-1c2d-4e3f-8a9b-0c1d2e3f4a5b"),
        credentials=kubeadm.JoinCredentials(token=TOKEN, ca_cert_hash=CA_HASH))),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden(name, golden):
    golden(name, CASES[name]())


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_field_is_defined_upstream(name):
    assert schema_errors(CASES[name]()) == []


def test_the_field_check_rejects_what_kubeadm_rejects():
    text = CASES["kubeadm-init-1cp-containerd.yaml"]()
    docs = list(yaml.safe_load_all(text))
    docs[1]["apiServer"]["timeoutForControlPlane"] = "4m"  # v1beta3, gone in v1beta4
    docs[0]["nodeRegistration"]["kubeletExtraArgs"] = {"node-ip": "10.0.0.1"}  # v1beta3 map form
    docs[2]["runtimeRequestTimeout"] = 600  # must be a duration string
    errors = schema_errors(yaml.safe_dump_all(docs))
    assert errors == [
        "InitConfiguration.nodeRegistration.kubeletExtraArgs: expected a list ([]Arg)",
        "ClusterConfiguration.apiServer.timeoutForControlPlane: unknown field of APIServer",
        "KubeletConfiguration.runtimeRequestTimeout: 600 is not a duration",
    ]
    assert schema_errors("apiVersion: kubeadm.k8s.io/v1beta3\nkind: InitConfiguration\n")


def _seconds(duration: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600}
    return sum(int(n) * units[u] for n, u in re.findall(r"(\d+)([smh])", duration))


def test_init_config_contents():
    docs = list(yaml.safe_load_all(CASES["kubeadm-init-3cp-crio.yaml"]()))
    init, cluster, kubelet = docs
    assert [d["kind"] for d in docs] == ["InitConfiguration", "ClusterConfiguration", "KubeletConfiguration"]
    assert init["nodeRegistration"]["criSocket"] == "unix:///var/run/crio/crio.sock"
    assert init["nodeRegistration"]["kubeletExtraArgs"] == [
        {"name": "node-ip", "value": "10.42.0.21"},
        {"name": "node-labels", "value": "katacontainers.io/kata-runtime=true"}]
    assert "taints" not in init["nodeRegistration"]  # kubeadm's control-plane taint stays
    assert init["localAPIEndpoint"] == {"advertiseAddress": "10.42.0.21", "bindPort": 6443}
    # kubeadm generates the init token itself; the config never carries a secret.
    assert "token" not in init["bootstrapTokens"][0] and "certificateKey" not in init
    assert cluster["kubernetesVersion"] == "v1.35.8"
    assert cluster["controlPlaneEndpoint"] == "10.42.0.250:6443"
    assert cluster["networking"] == {"podSubnet": "172.16.0.0/16", "serviceSubnet": "10.100.0.0/16"}
    assert set(cluster["apiServer"]["certSANs"]) == {"198.51.100.7", "10.42.0.250"}
    assert kubelet["cgroupDriver"] == "systemd"
    # kata-deploy warns below 600s; a nested-virt Kata sandbox boot needs the headroom.
    assert _seconds(kubelet["runtimeRequestTimeout"]) >= 600


def test_join_configs_pin_the_ca_and_carry_node_settings():
    worker = yaml.safe_load(CASES["kubeadm-join-worker-dedicated.yaml"]())
    disc = worker["discovery"]["bootstrapToken"]
    assert disc == {"apiServerEndpoint": "10.42.0.250:6443", "token": TOKEN, "caCertHashes": [CA_HASH]}
    assert "controlPlane" not in worker
    assert worker["nodeRegistration"]["taints"] == [
        {"key": "katacontainers.io/kata-runtime", "value": "true", "effect": "NoSchedule"}]
    plain = yaml.safe_load(CASES["kubeadm-join-worker.yaml"]())
    assert plain["nodeRegistration"]["taints"] == []
    cp = yaml.safe_load(CASES["kubeadm-join-control-plane.yaml"]())
    assert cp["controlPlane"] == {"localAPIEndpoint": {"advertiseAddress": "10.42.0.22", "bindPort": 6443},
                                  "certificateKey": CERT_KEY}
    assert "taints" not in cp["nodeRegistration"]
    for doc in (worker, plain, cp):
        assert "unsafeSkipCAVerification" not in json.dumps(doc)


def test_control_plane_join_without_certificate_key_is_refused():
    with pytest.raises(ValueError, match="needs a certificate key"):
        kubeadm.render_join_config(kubeadm.JoinSpec(
            api_server_endpoint="10.0.0.1:6443", node=_node("x-cp-1", "containerd", "10.0.0.2"),
            credentials=kubeadm.JoinCredentials(token=TOKEN, ca_cert_hash=CA_HASH), control_plane=True))


def test_values_that_look_like_numbers_stay_strings():
    digits = "123456.0123456789012345"  # a valid token that YAML 1.1 would read as a float
    text = kubeadm.render_join_config(kubeadm.JoinSpec(
        api_server_endpoint="10.0.0.1:6443", node=_node("x-worker-0", "containerd", "10.0.0.3", ()),
        credentials=kubeadm.JoinCredentials(token=digits, ca_cert_hash=CA_HASH)))
    assert yaml.safe_load(text)["discovery"]["bootstrapToken"]["token"] == digits


def test_parse_join_credentials():
    out = f"token={TOKEN}\nca_cert_hash={CA_HASH}\ncertificate_key={CERT_KEY}\n"
    worker = kubeadm.parse_join_credentials(out, node="w", control_plane=False)
    assert (worker.token, worker.ca_cert_hash, worker.certificate_key) == (TOKEN, CA_HASH, None)
    cp = kubeadm.parse_join_credentials(out, node="c", control_plane=True)
    assert cp.certificate_key == CERT_KEY
    assert TOKEN not in repr(cp) and CERT_KEY not in repr(cp)
    with pytest.raises(ValueError, match="'certificate_key'") as err:
        kubeadm.parse_join_credentials(f"token={TOKEN}\nca_cert_hash={CA_HASH}\n", node="c",
                                       control_plane=True)
    assert TOKEN not in str(err.value)
    with pytest.raises(ValueError, match="'token'"):
        kubeadm.parse_join_credentials(f"token=not-a-token\nca_cert_hash={CA_HASH}\n", node="w",
                                       control_plane=False)
    with pytest.raises(ValueError, match="'ca_cert_hash'"):
        kubeadm.parse_join_credentials(f"token={TOKEN}\n", node="w", control_plane=False)
