"""The rules behind katak8s's configuration: every key's type and default, and the checks
that turn raw `pulumi config` values into typed ones while collecting every problem.

components/config.py applies them in `parse_config`; this module holds no Pulumi code.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from components import versions as v

NAMESPACE = "katak8s"
MAX_WORKERS = 500
CONTROL_PLANE_COUNTS = (1, 3, 5)
RUNTIMES = ("containerd", "crio")
# Where SSH enters the cluster (components/openstack/jumphost.py): its own small VM, or the
# first control plane (what stacks deployed before the dedicated jump host keep). "" = the
# dedicated one on a new stack, what the stack has on a deployed one (components/deployed.py).
JUMP_HOSTS = ("dedicated", "first-control-plane")
# Every remote phase runs under `timeout` (components/nodes/phase.py PHASE_TIMEOUT_SECONDS); a
# drain must fit inside its phase with time left for the volumes to detach (at least
# DETACH_RESERVE_SECONDS: scripts/remote/cluster/drain.sh), cordon and API calls.
PHASE_TIMEOUT_SECONDS = 1800
DETACH_RESERVE_SECONDS = 90
MAX_DRAIN_SECONDS = PHASE_TIMEOUT_SECONDS - DETACH_RESERVE_SECONDS - 30
# Workers drained at once in an upgrade: each holds its pods elsewhere meanwhile, so a large
# batch is a capacity question the operator answers; 20 bounds a typo (kubespray: 20%).
MAX_UPGRADE_BATCH = 20
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# ASCII digits without leading zeros (\d would admit other scripts' digits, and "1.036"
# is not the 1.36 that package repositories know).
_NUM = r"(0|[1-9][0-9]{0,3})"
_K8S_VERSION = re.compile(rf"^1\.{_NUM}(\.{_NUM})?$")
_SEMVER = re.compile(rf"^{_NUM}\.{_NUM}\.{_NUM}$")
# A POSIX portable login name as Debian/Ubuntu create them (adduser NAME_REGEX, at most 32).
SSH_USER = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
# A Keystone role name as the stack asks for it (no blanks, no commas: kept simple and safe).
ROLE_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
# Part of each application credential's name: a new value makes new credentials.
ROTATION = re.compile(r"^[a-z0-9]([-a-z0-9]{0,14}[a-z0-9])?$")
SSH_PUBLIC_KEY = re.compile(r"^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/]+={0,3}( .*)?$")



@dataclass(frozen=True)
class Key:
    name: str
    kind: str  # string | integer | boolean | array | secret
    default: Any = None
    required: bool = False


# Declaration order is the README's and Pulumi.yaml's order.
KEYS: tuple[Key, ...] = (
    Key("clusterName", "string", ""),
    Key("image", "string", "ubuntu-24.04"),
    Key("sshUser", "string", "ubuntu"),
    Key("controlPlaneCount", "integer", 1),
    Key("controlPlaneFlavor", "string", "", required=True),
    Key("workerCount", "integer", 2),
    Key("workerFlavor", "string", "", required=True),
    Key("externalNetwork", "string", "", required=True),
    Key("allowedCidrs", "array", [], required=True),
    Key("nodeCidr", "string", "10.42.0.0/24"),
    Key("podCidr", "string", "192.168.0.0/16"),
    Key("serviceCidr", "string", "10.96.0.0/12"),
    Key("dnsNameservers", "array", []),
    Key("podReachableCidrs", "array", []),
    Key("containerRuntime", "string", "containerd"),
    Key("kubernetesVersion", "string", v.DEFAULT_KUBERNETES_VERSION),
    Key("kataVersion", "string", v.DEFAULT_KATA_VERSION),
    Key("kataHypervisor", "string", v.DEFAULT_HYPERVISOR),
    Key("calicoVersion", "string", ""),
    Key("sshPrivateKey", "secret", ""),
    Key("bootVolumeSize", "integer", 0),
    Key("sampleWorkloads", "boolean", True),
    Key("floatingIpPerNode", "boolean", False),
    Key("jumpHost", "string", ""),
    Key("jumpHostFlavor", "string", "m1.small"),
    Key("kataDedicatedWorkers", "boolean", False),
    Key("kataSha256", "string", ""),
    Key("allowRuntimeRestart", "boolean", False),
    Key("drainTimeoutSeconds", "integer", 300),
    Key("upgradeBatchSize", "integer", 1),
    Key("acceptSshPublicKey", "string", ""),
    Key("allowUntestedKubernetesPatch", "boolean", False),
    # The OpenStack cloud integration (components/openstack/credentials.py,
    # components/kubernetes/cloud_controller.py).
    Key("cloudProvider", "boolean", True),
    Key("cloudCredentialRoles", "array", ["member"]),
    Key("cloudCredentialRotation", "string", "1"),
    Key("loginCredentialUnrestricted", "boolean", False),
    Key("cinderCsi", "boolean", True),
    Key("deleteVolumesOnDestroy", "boolean", False),
    Key("sampleLoadBalancer", "boolean", False),
    # metrics-server with kubelet serving certificates (components/kubernetes/metrics.py).
    Key("metricsServer", "boolean", True),
)
KEY_NAMES = frozenset(k.name for k in KEYS)
SECRET_KEYS = frozenset(k.name for k in KEYS if k.kind == "secret")


class Collector:
    """Typed access to raw values that records a problem instead of raising."""

    def __init__(self, raw: Mapping[str, Any]):
        self.raw = raw
        self.problems: list[str] = []
        self.warnings: list[str] = []  # logged by load_config, never fatal
        self.failed: set[str] = set()

    def fail(self, key: str, rule: str, value: Any) -> None:
        shown = "[secret]" if key in SECRET_KEYS else repr(value)
        self.problems.append(f"{NAMESPACE}:{key}: {rule}, got {shown}")
        self.failed.add(key.split("[", 1)[0])

    def ok(self, *keys: str) -> bool:
        """No problem was reported for any of `keys`: checks derived from a key that
        already failed would only add misleading messages."""
        return not self.failed.intersection(keys)

    def get(self, key: Key) -> Any:
        if key.name not in self.raw or self.raw[key.name] in (None, ""):
            if key.required:
                self.problems.append(f"{NAMESPACE}:{key.name}: is required and not set "
                                     f"(pulumi config set {NAMESPACE}:{key.name} ...)")
            return key.default
        value = self.raw[key.name]
        return _coerce(self, key, value)


def _coerce(c: Collector, key: Key, value: Any) -> Any:
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
        # ASCII digits only and a bounded length: int() would accept other scripts' digits.
        if isinstance(value, str) and re.fullmatch(r"[+-]?[0-9]{1,9}", value.strip()):
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


def check_one_of(c: Collector, key: str, value: Any, allowed: tuple[Any, ...]) -> None:
    if value not in allowed:
        c.fail(key, "must be one of " + ", ".join(str(a) for a in allowed), value)


def check_range(c: Collector, key: str, value: int, lo: int, hi: int) -> None:
    if not lo <= value <= hi:
        c.fail(key, f"must be an integer from {lo} to {hi}", value)


def check_versions(c: Collector, k8s: str, kata: str, calico: str, kata_sha: str,
                   allow_untested_patch: bool = False) -> None:
    m = _K8S_VERSION.match(k8s)
    supported = ", ".join(sorted(v.KUBERNETES_PATCHES))
    if not m:
        c.fail("kubernetesVersion", f"must be 1.M or 1.M.P for a supported minor ({supported})", k8s)
    elif v.kubernetes_minor(k8s) not in v.KUBERNETES_PATCHES:
        c.fail("kubernetesVersion", f"minor is not supported; supported minors: {supported}", k8s)
    elif m.group(3) and not allow_untested_patch:
        pinned = v.KUBERNETES_PATCHES[v.kubernetes_minor(k8s)]
        if int(m.group(3)) > int(pinned.rsplit(".", 1)[1]):
            c.fail("kubernetesVersion", f"is newer than the tested patch {pinned} (components/versions.py); use "
                   f"{pinned} or an older patch, or set {NAMESPACE}:allowUntestedKubernetesPatch to true to "
                   "install it untested", k8s)
    km = _SEMVER.match(kata)
    if not km:
        c.fail("kataVersion", "must be a release tag X.Y.Z, like " + v.DEFAULT_KATA_VERSION, kata)
    elif tuple(int(x) for x in km.groups()) < v.KATA_MIN_VERSION or km.group(1) != "4":
        c.fail("kataVersion", "must be a 4.x release from 4.1.0 on (the split-tarball layout "
               f"this project installs); tested: {', '.join(v.KATA_STATIC_SHA256)}", kata)
    cm = _SEMVER.match(calico)
    minor = v.kubernetes_minor(k8s) if m and v.kubernetes_minor(k8s) in v.KUBERNETES_MINORS else None
    if calico and not cm:
        c.fail("calicoVersion", "must be 3.M.P, like " + v.DEFAULT_CALICO_VERSION + ", or empty for the "
               "release tested with the Kubernetes minor", calico)
    elif calico and ".".join(calico.split(".")[:2]) not in v.SUPPORTED_CALICO_MINORS:
        c.fail("calicoVersion", "minor is not supported; supported: "
               + ", ".join(f"{m}.x" for m in v.SUPPORTED_CALICO_MINORS), calico)
    elif calico and minor and minor not in v.CALICO_COVERS[".".join(calico.split(".")[:2])]:
        covers = v.CALICO_COVERS[".".join(calico.split(".")[:2])]
        c.fail("calicoVersion", f"Calico {'.'.join(calico.split('.')[:2])} is not tested with Kubernetes {minor} "
               f"(it covers {', '.join(covers)}); use {v.KUBERNETES_MINORS[minor].calico}, or leave "
               "calicoVersion empty for the release tested with the minor", calico)
    if kata_sha and not _SHA256.match(kata_sha):
        c.fail("kataSha256", "must be 64 lowercase hex digits (sha256 of kata-static)", kata_sha)
    elif km and not kata_sha and not v.KATA_STATIC_SHA256.get(kata):
        # Kata publishes no checksum file, and nothing unverified is ever installed.
        c.fail("kataSha256", f"is required for kataVersion {kata}, which has no pinned checksum "
               f"(pinned: {', '.join(k for k, s in v.KATA_STATIC_SHA256.items() if s)}); set it to the "
               f"sha256 of kata-static-{kata}-amd64.tar.zst", kata_sha)


def int_or_zero(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0




# The jump host holds one SSH session per SSH step of a `pulumi up` until the run ends
# (pulumi-command 1.2.1 never closes its clients: components/openstack/jumphost.py). Measured
# on OpenSSH 9.2p1 (Debian 12), a key login of a non-root user with PAM, holding a
# ProxyJump (direct-tcpip) channel like pulumi-command's: 2.1 MiB of proportional set size
# per session, two sshd processes each (200 sessions: 425 MB). 3 MiB leaves room for the
# kernel's share (sockets, page tables, stacks); 512 MiB for the system itself.
JUMP_HOST_SESSION_MIB = 3
JUMP_HOST_BASE_MIB = 512
DEFAULT_JUMP_HOST_FLAVOR, DEFAULT_JUMP_HOST_MIB = "m1.small", 2048  # Nova's classic m1.small


def held_sessions(control_planes: int, workers: int, cloud_provider: bool = True, cinder_csi: bool = True) -> int:
    """SSH steps of a first `pulumi up`: each node's scripts, bootstrap and kata commands;
    cp-0's init, kubeconfig read-back and destroy guard (with the cloud controller, its wait
    for initialized nodes too); each other node's join credentials, join and membership
    (tests/test_benchmark_model.py checks this against the real graph). `cinder_csi` adds
    no SSH step."""
    cloud = 1 + int(cloud_provider)
    return 3 * (control_planes + workers) + 2 + cloud + 3 * (control_planes - 1 + workers)


def check_jump_host_memory(c: Collector, values: Mapping[str, Any]) -> None:
    """A warning when one `up`'s sessions outgrow the default jump host flavor, or land on
    the first control plane in that number."""
    sessions = held_sessions(int_or_zero(values["controlPlaneCount"]), int_or_zero(values["workerCount"]),
                             values["cloudProvider"] is True, values["cinderCsi"] is True)
    need = JUMP_HOST_BASE_MIB + sessions * JUMP_HOST_SESSION_MIB
    if need <= DEFAULT_JUMP_HOST_MIB:
        return
    held = (f"one `pulumi up` of this stack keeps {sessions} SSH sessions open on the jump host "
            f"(about {JUMP_HOST_SESSION_MIB} MiB each, {sessions * JUMP_HOST_SESSION_MIB} MiB)")
    if values["jumpHost"] == "first-control-plane":
        c.warnings.append(f"katak8s:jumpHost first-control-plane: {held}, here the first control plane, beside "
                          "etcd and the API server; a dedicated jump host keeps them off it")
    elif values["jumpHostFlavor"] == DEFAULT_JUMP_HOST_FLAVOR:
        # jumpHost "" on a stack deployed before the dedicated jump host means the first control
        # plane (components/deployed.py), which is settled only after config: say both.
        where = "" if values["jumpHost"] else (" (on a stack deployed before the dedicated jump host, set "
                                                "jumpHost: dedicated too: it still relays through its first "
                                                "control plane)")
        c.warnings.append(
            f"katak8s:jumpHostFlavor {DEFAULT_JUMP_HOST_FLAVOR} has {DEFAULT_JUMP_HOST_MIB} MiB on clouds that keep "
            f"Nova's classic flavors, and {held}: set a jumpHostFlavor with at least {-(-need // 1024)} GiB "
            "of memory (a deployed jump host takes a new flavor only when replaced: `pulumi up --replace` "
            f"of its server, components/openstack/jumphost.py){where}")


def check_cloud_credentials(c: Collector, values: Mapping[str, Any]) -> None:
    """The roles and rotation tag of the cloud controller's application credential."""
    roles = values["cloudCredentialRoles"]
    if (values["cloudProvider"] or values["cinderCsi"]) and not roles:
        c.fail("cloudCredentialRoles", "must name at least one Keystone role when cloudProvider or cinderCsi is true "
               "(\"member\" on clouds with Octavia's default policies)", roles)
    for i, role in enumerate(roles):
        if not ROLE_NAME.match(role):
            c.fail(f"cloudCredentialRoles[{i}]", "must be a Keystone role name: letters, digits, '_', '.', ':' "
                   "and '-', at most 64 characters", role)
    if len(set(roles)) != len(roles):
        c.fail("cloudCredentialRoles", "must not repeat a role", roles)
    if not ROTATION.match(values["cloudCredentialRotation"]):
        c.fail("cloudCredentialRotation", "must be 1 to 16 lowercase letters, digits or '-', starting and "
               "ending with a letter or digit (change it to rotate the credentials)", values["cloudCredentialRotation"])
