"""Shared helpers for the OpenStack-layer tests (no tests here).

`openstack_layer(config)` evaluates SshAccess -> ClusterNetwork -> NodePool -> ApiEndpoint
under the harness mocks, the way __main__.py wires them, and returns the graph plus the
component objects. Each node's connection and the endpoint hosts are exported, resolved.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pulumi
import pytest
from harness import SECRET_SIG, SECRET_VALUE, Graph, run_program

from components.config import load_config
from components.openstack.access import SshAccess
from components.openstack.endpoint import ApiEndpoint
from components.openstack.network import ClusterNetwork
from components.openstack.nodes import NodePool

T_RULE = "openstack:networking/secGroupRule:SecGroupRule"
T_SG = "openstack:networking/secGroup:SecGroup"
T_PORT = "openstack:networking/port:Port"
T_FIP = "openstack:networking/floatingIp:FloatingIp"
T_SERVER = "openstack:compute/instance:Instance"
T_KEY = "tls:index/privateKey:PrivateKey"
T_FLAVOR = "openstack:compute/getFlavor:getFlavor"
_CONN_FIELDS = ("host", "user", "private_key", "host_key", "dial_error_limit", "per_dial_timeout", "port")


def _connection(conn: Any) -> pulumi.Output:
    fields = {f: getattr(conn, f) for f in _CONN_FIELDS}
    proxy = getattr(conn, "proxy", None)
    if proxy is not None:
        fields["proxy"] = _connection(proxy)
    return pulumi.Output.all(**fields)


def openstack_layer(config: dict | None = None, **kwargs) -> tuple[Graph, dict[str, Any]]:
    built: dict[str, Any] = {}

    def program() -> None:
        cfg = load_config()
        access = SshAccess("access", cfg)
        network = ClusterNetwork("network", cfg)
        nodes = NodePool("nodes", cfg, network=network, access=access, jump_host=cfg.jump_host or "dedicated")
        endpoint = ApiEndpoint("endpoint", cfg, network=network, nodes=nodes)
        built.update(cfg=cfg, access=access, network=network, nodes=nodes, endpoint=endpoint)
        targets = nodes.control_planes + nodes.workers
        pulumi.export("connections", {t.name: _connection(t.connection) for t in targets})
        pulumi.export("private_ips", {t.name: t.private_ip for t in targets})
        pulumi.export("public_host", endpoint.public_host)
        pulumi.export("private_host", endpoint.private_host)
        pulumi.export("jump_host", nodes.jump_host)
        pulumi.export("mtu", network.mtu)

    return run_program(config or {}, fn=program, **kwargs), built


def strings_outside_secrets(value: Any, path: str = "") -> list[tuple[str, str]]:
    """(path, string) of every string that is not inside a secret marker."""
    if isinstance(value, dict):
        if value.get(SECRET_SIG) == SECRET_VALUE:
            return []
        return [hit for k, v in value.items() for hit in strings_outside_secrets(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [hit for i, v in enumerate(value) for hit in strings_outside_secrets(v, f"{path}[{i}]")]
    return [(path, value)] if isinstance(value, str) else []


def strings_inside_secrets(value: Any) -> list[str]:
    if isinstance(value, dict):
        if value.get(SECRET_SIG) == SECRET_VALUE:
            inner = value.get("value")
            return [s for _, s in strings_outside_secrets(inner)] if not isinstance(inner, str) else [inner]
        return [s for v in value.values() for s in strings_inside_secrets(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings_inside_secrets(v)]
    return []


def cloud_init_schema(text: str, tmp_path: Path, name: str = "user-data.yaml") -> subprocess.CompletedProcess:
    """Run the real `cloud-init schema --config-file` on `text`."""
    if shutil.which("cloud-init") is None:
        pytest.skip("cloud-init is not installed (./scripts/test.sh installs it); user data unvalidated")
    path = tmp_path / name
    path.write_text(text)
    return subprocess.run(["cloud-init", "schema", "--config-file", str(path)],
                          capture_output=True, text=True, timeout=120, check=False)


def assert_valid_cloud_config(text: str, tmp_path: Path, name: str = "user-data.yaml") -> None:
    """cloud-init 22.4+ exits 0 and prints `Valid cloud-config: F` on success; errors and
    deprecations go to stderr/stdout as `Cloud config schema ...` lines."""
    result = cloud_init_schema(text, tmp_path, name)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "Valid cloud-config" in result.stdout, out
    for line in out.splitlines():
        if "deprecations:" in line:
            assert not line.split("deprecations:", 1)[1].strip(), out
