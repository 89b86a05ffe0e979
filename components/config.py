"""The stack's configuration contract: typed, frozen, validated once before any resource.

`parse_config` is pure: it takes the raw values of the `katak8s:` namespace (exactly as
`pulumi config` stores them: strings, or JSON for lists) and returns a `ClusterConfig`,
or raises one `ConfigError` that lists every problem, each naming its key, the value
given and what is allowed. Pulumi.yaml declares the same keys; a test keeps them equal.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from components import versions as v

NAMESPACE = "katak8s"
MAX_WORKERS = 500
CONTROL_PLANE_COUNTS = (1, 3, 5)
RUNTIMES = ("containerd", "crio")
# Every remote phase runs under `timeout` (components/phase.py PHASE_TIMEOUT_SECONDS); a
# drain must fit inside its phase with time left for cordon, node deletion and API calls.
PHASE_TIMEOUT_SECONDS = 1800
MAX_DRAIN_SECONDS = PHASE_TIMEOUT_SECONDS - 120
# Neutron keeps the network, broadcast, gateway and the DHCP/router ports; the API
# load balancer VIP needs one more.
RESERVED_ADDRESSES = 6
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_K8S_VERSION = re.compile(r"^1\.(\d+)(\.\d+)?$")
_SEMVER = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class ConfigError(Exception):
    """Every problem of a stack's configuration, reported at once."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid katak8s stack configuration ({len(problems)} problems):\n{lines}")


@dataclass(frozen=True, kw_only=True)
class ClusterConfig:
    """One stack's validated configuration. Field docs live in Pulumi.yaml and the README."""

    cluster_name: str
    image: str
    ssh_user: str
    control_plane_count: int
    control_plane_flavor: str
    worker_count: int
    worker_flavor: str
    external_network: str
    allowed_cidrs: tuple[str, ...]
    node_cidr: str
    pod_cidr: str
    service_cidr: str
    dns_nameservers: tuple[str, ...]
    container_runtime: str
    kubernetes_version: str
    kata_version: str
    kata_hypervisor: str
    calico_version: str
    ssh_private_key: str | None
    boot_volume_size: int
    sample_workloads: bool
    floating_ip_per_node: bool
    kata_dedicated_workers: bool
    kata_sha256: str | None
    allow_runtime_restart: bool
    drain_timeout_seconds: int

    @property
    def kubernetes_patch(self) -> str:
        return v.kubernetes_patch(self.kubernetes_version)

    @property
    def kubernetes_minor(self) -> str:
        return v.kubernetes_minor(self.kubernetes_version)

    @property
    def hypervisor(self) -> v.Hypervisor:
        return v.HYPERVISORS[self.kata_hypervisor]

    @property
    def cri_socket(self) -> str:
        return v.CRI_SOCKETS[self.container_runtime]

    @property
    def ha(self) -> bool:
        return self.control_plane_count > 1

    @property
    def opens_world(self) -> bool:
        """True when allowedCidrs lets the whole IPv4 internet reach SSH and the API."""
        return any(ipaddress.ip_network(c).prefixlen == 0 for c in self.allowed_cidrs)


@dataclass(frozen=True)
class _Key:
    name: str
    kind: str  # string | integer | boolean | array | secret
    default: Any = None
    required: bool = False


# Declaration order is the README's and Pulumi.yaml's order.
KEYS: tuple[_Key, ...] = (
    _Key("clusterName", "string", ""),
    _Key("image", "string", "ubuntu-24.04"),
    _Key("sshUser", "string", "ubuntu"),
    _Key("controlPlaneCount", "integer", 1),
    _Key("controlPlaneFlavor", "string", "", required=True),
    _Key("workerCount", "integer", 2),
    _Key("workerFlavor", "string", "", required=True),
    _Key("externalNetwork", "string", "", required=True),
    _Key("allowedCidrs", "array", [], required=True),
    _Key("nodeCidr", "string", "10.42.0.0/24"),
    _Key("podCidr", "string", "192.168.0.0/16"),
    _Key("serviceCidr", "string", "10.96.0.0/12"),
    _Key("dnsNameservers", "array", []),
    _Key("containerRuntime", "string", "containerd"),
    _Key("kubernetesVersion", "string", v.DEFAULT_KUBERNETES_VERSION),
    _Key("kataVersion", "string", v.DEFAULT_KATA_VERSION),
    _Key("kataHypervisor", "string", v.DEFAULT_HYPERVISOR),
    _Key("calicoVersion", "string", v.DEFAULT_CALICO_VERSION),
    _Key("sshPrivateKey", "secret", ""),
    _Key("bootVolumeSize", "integer", 0),
    _Key("sampleWorkloads", "boolean", True),
    _Key("floatingIpPerNode", "boolean", False),
    _Key("kataDedicatedWorkers", "boolean", False),
    _Key("kataSha256", "string", ""),
    _Key("allowRuntimeRestart", "boolean", False),
    _Key("drainTimeoutSeconds", "integer", 300),
)
KEY_NAMES = frozenset(k.name for k in KEYS)
SECRET_KEYS = frozenset(k.name for k in KEYS if k.kind == "secret")


class _Collector:
    """Typed access to raw values that records a problem instead of raising."""

    def __init__(self, raw: Mapping[str, Any]):
        self.raw = raw
        self.problems: list[str] = []

    def fail(self, key: str, rule: str, value: Any) -> None:
        shown = "[secret]" if key in SECRET_KEYS else repr(value)
        self.problems.append(f"{NAMESPACE}:{key}: {rule}, got {shown}")

    def get(self, key: _Key) -> Any:
        if key.name not in self.raw or self.raw[key.name] in (None, ""):
            if key.required:
                self.problems.append(f"{NAMESPACE}:{key.name}: is required and not set "
                                     f"(pulumi config set {NAMESPACE}:{key.name} ...)")
            return key.default
        value = self.raw[key.name]
        return _coerce(self, key, value)


def _coerce(c: _Collector, key: _Key, value: Any) -> Any:
    if key.kind in ("string", "secret"):
        if not isinstance(value, str):
            c.fail(key.name, "must be a string", value)
            return key.default
        return value.strip()
    if key.kind == "integer":
        if isinstance(value, bool):
            c.fail(key.name, "must be an integer", value)
            return key.default
        if isinstance(value, int):
            return value
        if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
            return int(value)
        c.fail(key.name, "must be an integer", value)
        return key.default
    if key.kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        c.fail(key.name, "must be a boolean (true or false)", value)
        return key.default
    # array: a JSON list of strings, as `pulumi config set --path` or YAML lists store it
    parsed = value
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = None
    if not isinstance(parsed, list) or not all(isinstance(x, str) for x in parsed):
        c.fail(key.name, "must be a list of strings", value)
        return key.default
    return [x.strip() for x in parsed]


def _network(c: _Collector, key: str, value: str) -> ipaddress.IPv4Network | None:
    try:
        net = ipaddress.ip_network(value, strict=True)
    except ValueError:
        c.fail(key, "must be an IPv4 CIDR with no host bits set, like 10.42.0.0/24", value)
        return None
    if not isinstance(net, ipaddress.IPv4Network):
        c.fail(key, "must be an IPv4 CIDR (IPv6 is not supported yet)", value)
        return None
    return net


def _check_one_of(c: _Collector, key: str, value: Any, allowed: tuple[Any, ...]) -> None:
    if value not in allowed:
        c.fail(key, "must be one of " + ", ".join(str(a) for a in allowed), value)


def _check_range(c: _Collector, key: str, value: int, lo: int, hi: int) -> None:
    if not lo <= value <= hi:
        c.fail(key, f"must be an integer from {lo} to {hi}", value)


def _check_versions(c: _Collector, k8s: str, kata: str, calico: str, kata_sha: str) -> None:
    m = _K8S_VERSION.match(k8s)
    supported = ", ".join(sorted(v.KUBERNETES_PATCHES))
    if not m:
        c.fail("kubernetesVersion", f"must be 1.M or 1.M.P for a supported minor ({supported})", k8s)
    elif v.kubernetes_minor(k8s) not in v.KUBERNETES_PATCHES:
        c.fail("kubernetesVersion", f"minor is not supported; supported minors: {supported}", k8s)
    km = _SEMVER.match(kata)
    if not km:
        c.fail("kataVersion", "must be a release tag X.Y.Z, like " + v.DEFAULT_KATA_VERSION, kata)
    elif tuple(int(x) for x in km.groups()) < v.KATA_MIN_VERSION or km.group(1) != "4":
        c.fail("kataVersion", "must be a 4.x release from 4.1.0 on (the split-tarball layout "
               f"this project installs); tested: {', '.join(v.KATA_STATIC_SHA256)}", kata)
    cm = _SEMVER.match(calico)
    if not cm:
        c.fail("calicoVersion", "must be 3.M.P, like " + v.DEFAULT_CALICO_VERSION, calico)
    elif ".".join(calico.split(".")[:2]) not in v.SUPPORTED_CALICO_MINORS:
        c.fail("calicoVersion", "minor is not supported; supported: "
               + ", ".join(f"{m}.x" for m in v.SUPPORTED_CALICO_MINORS), calico)
    if kata_sha and not _SHA256.match(kata_sha):
        c.fail("kataSha256", "must be 64 lowercase hex digits (sha256 of kata-static)", kata_sha)
    elif km and not kata_sha and not v.KATA_STATIC_SHA256.get(kata):
        # Kata publishes no checksum file, and nothing unverified is ever installed.
        c.fail("kataSha256", f"is required for kataVersion {kata}, which has no pinned checksum "
               f"(pinned: {', '.join(k for k, s in v.KATA_STATIC_SHA256.items() if s)}); set it to the "
               f"sha256 of kata-static-{kata}-amd64.tar.zst", kata_sha)


def _check_networks(c: _Collector, values: dict[str, Any], node_count: int) -> None:
    nets = {k: _network(c, k, values[k]) for k in ("nodeCidr", "podCidr", "serviceCidr")}
    for i, cidr in enumerate(values["allowedCidrs"]):
        _network(c, f"allowedCidrs[{i}]", cidr)
    if not values["allowedCidrs"] and "allowedCidrs" in c.raw:
        c.fail("allowedCidrs", "must list at least one CIDR that may reach SSH and the API", [])
    for i, ip in enumerate(values["dnsNameservers"]):
        try:
            ipaddress.IPv4Address(ip)
        except ValueError:
            c.fail(f"dnsNameservers[{i}]", "must be an IPv4 address", ip)
    names = list(nets)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            na, nb = nets[a], nets[b]
            if na is not None and nb is not None and na.overlaps(nb):
                c.fail(a, f"must not overlap {NAMESPACE}:{b} ({values[b]})", values[a])
    node = nets["nodeCidr"]
    if node is not None and node.num_addresses < node_count + RESERVED_ADDRESSES:
        c.fail("nodeCidr", f"must hold {node_count} nodes plus {RESERVED_ADDRESSES} reserved "
               f"addresses; use a prefix of /{_prefix_for(node_count)} or shorter", values["nodeCidr"])


def _prefix_for(node_count: int) -> int:
    prefix = 30
    while 2 ** (32 - prefix) < node_count + RESERVED_ADDRESSES:
        prefix -= 1
    return prefix


def parse_config(raw: Mapping[str, Any], *, stack: str) -> ClusterConfig:
    """Validate raw `katak8s:` values; raise ConfigError listing every problem."""
    c = _Collector(raw)
    for unknown in sorted(set(raw) - KEY_NAMES):
        c.problems.append(f"{NAMESPACE}:{unknown}: unknown key; known keys: {', '.join(sorted(KEY_NAMES))}")
    values = {k.name: c.get(k) for k in KEYS}
    name = values["clusterName"] or stack.lower()
    if not _DNS_LABEL.match(name) or len(name) > 40:
        key = "clusterName" if values["clusterName"] else "clusterName (defaulted from the stack name)"
        c.fail(key, "must be a DNS-1123 label of at most 40 characters: lowercase letters, "
               "digits and '-', starting and ending with a letter or digit", name)
    _check_one_of(c, "controlPlaneCount", values["controlPlaneCount"], CONTROL_PLANE_COUNTS)
    _check_range(c, "workerCount", values["workerCount"], 0, MAX_WORKERS)
    _check_range(c, "bootVolumeSize", values["bootVolumeSize"], 0, 16384)
    _check_range(c, "drainTimeoutSeconds", values["drainTimeoutSeconds"], 30, MAX_DRAIN_SECONDS)
    if values["bootVolumeSize"] and 0 < values["bootVolumeSize"] < 20:
        c.fail("bootVolumeSize", "must be 0 (boot from the image disk) or at least 20 GiB", values["bootVolumeSize"])
    _check_one_of(c, "containerRuntime", values["containerRuntime"], RUNTIMES)
    _check_one_of(c, "kataHypervisor", values["kataHypervisor"], tuple(v.HYPERVISORS))
    _check_versions(c, values["kubernetesVersion"], values["kataVersion"],
                    values["calicoVersion"], values["kataSha256"])
    node_count = _int_or_zero(values["controlPlaneCount"]) + _int_or_zero(values["workerCount"])
    _check_networks(c, values, node_count)
    if values["kataDedicatedWorkers"] and values["workerCount"] == 0:
        c.fail("kataDedicatedWorkers", "needs workerCount >= 1 (the tainted kata pool is the workers)", True)
    for key in ("image", "sshUser", "controlPlaneFlavor", "workerFlavor", "externalNetwork"):
        if key in raw and isinstance(raw[key], str) and raw[key] and not raw[key].strip():
            c.fail(key, "must not be blank", raw[key])
    if c.problems:
        raise ConfigError(c.problems)
    return ClusterConfig(
        cluster_name=name,
        image=values["image"],
        ssh_user=values["sshUser"],
        control_plane_count=values["controlPlaneCount"],
        control_plane_flavor=values["controlPlaneFlavor"],
        worker_count=values["workerCount"],
        worker_flavor=values["workerFlavor"],
        external_network=values["externalNetwork"],
        allowed_cidrs=tuple(values["allowedCidrs"]),
        node_cidr=values["nodeCidr"],
        pod_cidr=values["podCidr"],
        service_cidr=values["serviceCidr"],
        dns_nameservers=tuple(values["dnsNameservers"]),
        container_runtime=values["containerRuntime"],
        kubernetes_version=values["kubernetesVersion"],
        kata_version=values["kataVersion"],
        kata_hypervisor=values["kataHypervisor"],
        calico_version=values["calicoVersion"],
        ssh_private_key=values["sshPrivateKey"] or None,
        boot_volume_size=values["bootVolumeSize"],
        sample_workloads=values["sampleWorkloads"],
        floating_ip_per_node=values["floatingIpPerNode"],
        kata_dedicated_workers=values["kataDedicatedWorkers"],
        kata_sha256=values["kataSha256"] or None,
        allow_runtime_restart=values["allowRuntimeRestart"],
        drain_timeout_seconds=values["drainTimeoutSeconds"],
    )


def _int_or_zero(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def load_config(read: Callable[[], Mapping[str, Any]] | None = None) -> ClusterConfig:
    """Read the `katak8s:` namespace from the running Pulumi program and validate it.

    Warnings that do not stop a deployment (a world-open allowedCidrs) are logged here,
    once, before any resource is declared.
    """
    import pulumi

    raw = read() if read else _raw_from_pulumi()
    cfg = parse_config(raw, stack=pulumi.get_stack())
    if cfg.opens_world:
        pulumi.log.warn(f"{NAMESPACE}:allowedCidrs holds 0.0.0.0/0: SSH (22) and the Kubernetes API "
                        "(6443) are reachable from the whole internet; list your own CIDRs instead")
    return cfg


def _raw_from_pulumi() -> dict[str, Any]:
    """All keys set in the namespace, including unknown ones, so typos are reported.

    pulumi.Config only answers for keys it is asked about; the runtime's config map holds
    every key the CLI passed in (explicitly set, or through PULUMI_CONFIG).
    """
    from pulumi.runtime import config as runtime_config

    prefix = f"{NAMESPACE}:"
    merged = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    return {key[len(prefix):]: value for key, value in merged.items() if key.startswith(prefix)}
