"""The one table of versions, checksums, ports and names that everything else reads.

Nothing outside this module pins a version, a port or the Kata handler name. Adding a
supported version is a one-line change here plus a test run.
"""

from __future__ import annotations

from dataclasses import dataclass


# --- Kubernetes ------------------------------------------------------------------------
@dataclass(frozen=True)
class Minor:
    """What katak8s installs for one Kubernetes minor (shared/reference/upgrades.md §2-3)."""

    patch: str  # the tested patch that `kubernetesVersion: 1.M` installs
    pause: str  # kubeadm's pause image: the runtime's sandbox image must match it
    calico: str  # the Calico release a stack at this minor gets unless calicoVersion is set
    cloud_provider: str  # openstack-cloud-controller-manager chart (CLOUD_PROVIDER_CHART_REPO)
    cinder_csi: str  # openstack-cinder-csi chart, same repository


# Minor -> its stack. Only minors inside every vendor's tested matrix are listed:
# containerd RELEASES.md (1.35: 2.2+, 1.36: 2.3/2.2), CRI-O's per-minor streams
# (isv:cri-o:stable:v1.M), and Calico's tested Kubernetes list (CALICO_COVERS).
# 1.35.8 / 1.36.4: kubespray's checksums (2026-08-21). 1.37.1: the first 1.37 patch seen
# in public pins (kubeadm=1.37.1-*; 1.37.0 came out 2026-08-26). Pause: kubespray vars
# (3.10.1 for 1.35); 1.37 ships 3.10.2 (CHANGELOG-1.37, RKE2 1.37). 1.36 keeps the 3.10.1
# it was deployed with: a new sandbox image would restart every node's runtime.
KUBERNETES_MINORS: dict[str, Minor] = {
    "1.35": Minor("1.35.8", "registry.k8s.io/pause:3.10.1", "3.32.1", "2.35.0", "2.35.0"),
    "1.36": Minor("1.36.4", "registry.k8s.io/pause:3.10.1", "3.32.1", "2.36.0", "2.36.0"),
    "1.37": Minor("1.37.1", "registry.k8s.io/pause:3.10.2", "3.33.0", "2.36.0", "2.36.0"),
}
KUBERNETES_PATCHES: dict[str, str] = {m: x.patch for m, x in KUBERNETES_MINORS.items()}
# The newest minor whose whole stack primary sources confirm. 1.37 is supported, but its
# Calico (3.33, released after the snapshots this table was built from) and containerd's
# 1.37 row are known from third parties only (upgrades.md §6), so new stacks default to 1.36.
DEFAULT_KUBERNETES_VERSION = "1.36"
# pkgs.k8s.io: one flat apt repository per minor; Release.key sits beside it (§2.4).
KUBERNETES_APT_REPO = "https://pkgs.k8s.io/core:/stable:/v{minor}/deb/"

# --- OpenStack cloud controller (components/kubernetes/cloud_controller.py) ----------------
# cloud-provider-openstack releases one chart per Kubernetes minor ("it is recommended to
# use the corresponding version", docs/cinder-csi-plugin/using-cinder-csi-plugin.md);
# tags openstack-cloud-controller-manager-2.35.0 (app v1.35.0) and -2.36.0 (app v1.36.0).
# No 1.37 chart was published in the snapshot read (master still built against 1.36
# libraries, 2026-07-15): 1.37 runs the 1.36 controller, which the version-skew policy
# allows (a cloud-controller-manager may be one minor older than the API server).
# scripts/check_charts.py renders each chart version before a release uses it.
CLOUD_PROVIDER_CHART_REPO = "https://kubernetes.github.io/cloud-provider-openstack"
CLOUD_PROVIDER_CHART = "openstack-cloud-controller-manager"
CLOUD_PROVIDER_CHARTS: dict[str, str] = {m: x.cloud_provider for m, x in KUBERNETES_MINORS.items()}
# Cinder CSI: tags openstack-cinder-csi-2.35.0 / -2.36.0 (plugin v1.35.0 / v1.36.0), the same
# release train; 1.37 as above.
CINDER_CSI_CHART = "openstack-cinder-csi"
CINDER_CSI_CHARTS: dict[str, str] = {m: x.cinder_csi for m, x in KUBERNETES_MINORS.items()}
CINDER_CSI_DRIVER = "cinder.csi.openstack.org"  # the provisioner (pkg/csi/cinder driver name)
# The default StorageClass the stack creates (and exports as defaultStorageClass).
DEFAULT_STORAGE_CLASS = "cinder"
# metrics-server (components/kubernetes/metrics.py): chart 3.13.1, app v0.8.1, which
# supports Kubernetes 1.31+ (kubernetes-sigs/metrics-server README.md "Compatibility matrix";
# tag metrics-server-helm-chart-3.13.1). One pin for every minor: it reads the stable
# metrics API of the kubelet (/metrics/resource).
METRICS_SERVER_CHART_REPO = "https://kubernetes-sigs.github.io/metrics-server/"
METRICS_SERVER_CHART = "metrics-server"
METRICS_SERVER_CHART_VERSION = "3.13.1"
# kubelet-csr-approver approves kubelet serving certificates (kube-controller-manager signs
# them but never approves them). Its chart version is the release tag without "v"
# (postfinance/kubelet-csr-approver .github/workflows/publish.yaml "Prepare version").
CSR_APPROVER_CHART_REPO = "https://postfinance.github.io/kubelet-csr-approver"
CSR_APPROVER_CHART = "kubelet-csr-approver"
CSR_APPROVER_CHART_VERSION = "1.2.14"
# The Node.spec.providerID of a server: "openstack:///<server id>" (cloud-provider-openstack
# pkg/openstack/instances.go, without OS_CCM_REGIONAL). Set by the kubelet at registration
# so the controller never looks servers up by name (CPO #2062: nodes deleted on a mismatch).
PROVIDER_ID_PREFIX = "openstack:///"

# --- In-place upgrades (components/cluster/upgrade.py) --------------------------------------
# kubeadm gates removed in a minor: kubeadm errors on an unknown gate ("kubeadm does error on
# unknown FGs", kind#4209), so the first control plane strips them from kube-system/
# kubeadm-config before the new kubeadm reads it (upgrades.md §1.9, §2.2: kubernetes#135773,
# #136016, CHANGELOG-1.37 #138645). katak8s never sets one; a cluster edited by hand may.
REMOVED_KUBEADM_GATES: dict[str, tuple[str, ...]] = {
    "1.36": ("ControlPlaneKubeletLocalMode", "PublicKeysECDSA"),
    "1.37": ("NodeLocalCRISocket",),
}
# The Node annotations of an upgrade in progress: the target it was drained for, and a mark
# that the upgrade (not an operator) cordoned it, so only such a node is uncordoned after
# (the kubespray "left cordoned" and "uncordoned what the operator cordoned" pitfalls, §4.5).
UPGRADE_TARGET_ANNOTATION = "katak8s.io/upgrade-target"
UPGRADE_CORDON_ANNOTATION = "katak8s.io/cordoned-by-upgrade"

# kubeadm's pinned pause image per minor; the runtime's sandbox image must match it or
# kubeadm warns and the node pulls a second pause image (upstream-bootstrap.md §3.2). Only a
# first guess: the kube-packages phase asks the installed kubeadm (`kubeadm config images
# list`) and, before the node joins, switches the runtime to kubeadm's answer (review-node F12).
PAUSE_IMAGES: dict[str, str] = {m: x.pause for m, x in KUBERNETES_MINORS.items()}

# --- Kata Containers -------------------------------------------------------------------
# Kata >= 4.1 ships split .tar.zst tarballs: kata-static (runtime-rs shim + guest
# images), kata-tools-static (kata-ctl). Keys are release tags (no leading "v").
# Kata publishes no checksum file with its releases (kata-containers#1433, open), so a
# version is installable only with a pin: here, or the stack's katak8s:kataSha256.
# 4.1.0: sha256 of kata-static-4.1.0-amd64.tar.zst (969 MB) as recorded independently by
# two public projects that downloaded the release asset and checked it with sha256sum
# (a Firecracker/Kata lab write-up and a kata ACL canary script, both 2026). Re-check it
# with `curl -fsSL <url> | sha256sum` when you add a version.
KATA_STATIC_SHA256: dict[str, str | None] = {
    "4.1.0": "3dc6b69c4acb787b967b04b64599a20d02a8beb1a8eaab3084110df9d0b08c96",
}
# kata-tools-static (kata-ctl) for the same release; without a pin the kata phase skips
# `kata-ctl check` (it never runs an unverified download) and relies on its sandbox test.
KATA_TOOLS_SHA256: dict[str, str | None] = {
    "4.1.0": None,
}
DEFAULT_KATA_VERSION = "4.1.0"
KATA_MIN_VERSION = (4, 1, 0)
KATA_RELEASE_URL = "https://github.com/kata-containers/kata-containers/releases/download"
KATA_PREFIX = "/opt/kata"


@dataclass(frozen=True, kw_only=True)
class Hypervisor:
    """A Kata hypervisor the project supports, and what it costs per pod."""

    name: str
    # runtime-rs configuration shipped in kata-static, relative to KATA_PREFIX.
    config_path: str
    # RuntimeClass overhead.podFixed: kata-deploy's defaults
    # (tools/packaging/kata-deploy/helm-chart values, upstream-bootstrap.md §6.6).
    overhead_cpu: str
    overhead_memory: str


HYPERVISORS: dict[str, Hypervisor] = {
    "qemu": Hypervisor(
        name="qemu",
        config_path="share/defaults/kata-containers/runtime-rs/configuration-qemu-runtime-rs.toml",
        overhead_cpu="250m",
        overhead_memory="320Mi",
    ),
    "clh": Hypervisor(
        name="clh",
        config_path="share/defaults/kata-containers/runtime-rs/configuration-clh-runtime-rs.toml",
        overhead_cpu="250m",
        overhead_memory="130Mi",
    ),
}
DEFAULT_HYPERVISOR = "qemu"


@dataclass(frozen=True)
class KataVm:
    vcpus: int
    memory_mib: int


# CRI-O passes runtime-rs no sandbox-sizing annotations (kata 4.1.0
# src/runtime-rs/config/configuration-qemu-runtime-rs.toml.in, static_sandbox_resource_mgmt:
# "CRI-O does not yet support sandbox sizing annotations"), so under CRI-O every Kata VM has
# one fixed size, whatever the pod's limits. This is runtime-rs's own default (Makefile
# DEFVCPUS := 1, DEFMEMSZ := 2048), written down in a config.d drop-in so that an upstream
# change cannot move it, and added to the RuntimeClass overhead so the scheduler and the
# pod cgroup hold the whole VM (review-node F3, review-k8s K3).
CRIO_KATA_VM = KataVm(vcpus=1, memory_mib=2048)
# What a Kata pod without limits boots, and every Kata pod under CRI-O: runtime-rs's
# default_memory plus the RuntimeClass overhead of qemu (the larger of the two hypervisors).
DEFAULT_KATA_POD_MIB = CRIO_KATA_VM.memory_mib + 320

# --- Node memory budget (kubelet KubeletConfiguration, review-node F2) ------------------
# Memory the kubelet keeps from pods: the OS (sshd, journald, the container runtime and its
# shims) and the kubelet itself, plus the hard eviction threshold. Kubernetes "Reserve
# Compute Resources for System Daemons" (systemReserved, kubeReserved, evictionHard).
SYSTEM_RESERVED = {"cpu": "100m", "memory": "512Mi"}
KUBE_RESERVED = {"cpu": "100m", "memory": "256Mi"}
EVICTION_HARD_MEMORY_MIB = 200
NODE_RESERVED_MIB = 512 + 256 + EVICTION_HARD_MEMORY_MIB
# evictionHard replaces the kubelet's whole default map: a signal left out becomes 0, i.e.
# off (KubeletConfiguration mergeDefaultEvictionSettings, default false). So every Linux
# default is restated (kubelet DefaultEvictionHard: memory.available 100Mi, nodefs.available
# 10%, nodefs.inodesFree 5%, imagefs.available 15%, imagefs.inodesFree 5%), memory raised.
EVICTION_HARD = {
    "memory.available": f"{EVICTION_HARD_MEMORY_MIB}Mi",
    "nodefs.available": "10%",
    "nodefs.inodesFree": "5%",
    "imagefs.available": "15%",
    "imagefs.inodesFree": "5%",
}
KATA_SHIM_PATH = f"{KATA_PREFIX}/runtime-rs/bin/containerd-shim-kata-v2"

# The single source of the Kata runtime handler: the containerd runtimes.<name> table,
# the CRI-O runtimes.<name> table, the RuntimeClass handler and name, and every sample
# workload's runtimeClassName all read this value (style guide rule 11).
KATA_HANDLER = "kata"
KATA_NODE_LABEL = "katacontainers.io/kata-runtime"
# kubeadm labels and taints every control plane with this key (label value "", taint
# effect NoSchedule: kubeadm init/join phase mark-control-plane).
CONTROL_PLANE_ROLE = "node-role.kubernetes.io/control-plane"


@dataclass(frozen=True, kw_only=True)
class Taint:
    """A node taint (kubeadm nodeRegistration.taints / Node spec.taints shape)."""

    key: str
    value: str
    effect: str


# The taint of a dedicated kata worker pool (kataDedicatedWorkers): the workers' kubeadm
# JoinConfiguration sets it and the kata RuntimeClass tolerates it. One definition for both.
KATA_TAINT = Taint(key=KATA_NODE_LABEL, value="true", effect="NoSchedule")

# Sample workloads (sampleWorkloads): agnhost is the Kubernetes e2e image; `netexec` serves
# /hostname, `pause` idles, and the image carries curl. The 2.66 line comes from
# kubernetes/kubernetes PR #139789 (merged 2026-07, promoted by kubernetes/k8s.io #9613);
# 2.66.1 is the tag seen pulled in public manifests since (2.66.0 could not be confirmed).
AGNHOST_IMAGE = "registry.k8s.io/e2e-test-images/agnhost:2.66.1"

# --- Calico ----------------------------------------------------------------------------
# Calico minor -> the Kubernetes minors Tigera tests it with (docs.tigera.io
# .../kubernetes/requirements, as summarised from the versioned docs: 3.32 covers
# 1.34-1.36, 3.33 covers 1.35-1.37; calico release-v3.33 builds against v1.37.0-beta.0,
# metadata.mk K8S_VERSION). The tigera-operator chart shares the Calico version number;
# scripts/check_charts.py renders a version's charts before it is used (plan review).
CALICO_COVERS: dict[str, tuple[str, ...]] = {
    "3.32": ("1.34", "1.35", "1.36"),
    "3.33": ("1.35", "1.36", "1.37"),
}
SUPPORTED_CALICO_MINORS = tuple(CALICO_COVERS)
DEFAULT_CALICO_VERSION = KUBERNETES_MINORS[DEFAULT_KUBERNETES_VERSION].calico
CALICO_CHART_REPO = "https://docs.tigera.io/calico/charts"
VXLAN_OVERHEAD = 50  # bytes; Calico MTU table: 1450 (OpenStack VXLAN) -> 1400 with VXLAN

# --- Container runtimes ----------------------------------------------------------------
# The oldest containerd that containerd's RELEASES.md lists for each Kubernetes minor (1.35:
# 2.2.0+, 2.1.5+, 1.7.28+; 1.36: 2.3.0+, 2.2.0+, no 1.7; upgrades.md §3.2). 1.37's row was not
# published when this table was written: 1.36's is assumed. The runtime phase installs
# Ubuntu's containerd and warns below it (Ubuntu 24.04's archive has shipped 1.7).
CONTAINERD_MIN_VERSION: dict[str, str] = {"1.35": "1.7.28", "1.36": "2.2.0", "1.37": "2.2.0"}
# CRI-O's own repositories since 2025 (cri-o/packaging README): one stream per Kubernetes
# minor, Release.key beside it (upstream-bootstrap.md §5.1).
CRIO_APT_REPO = "https://download.opensuse.org/repositories/isv:/cri-o:/stable:/v{minor}/deb/"
# The container the kata phase boots in a Kata VM to compare guest and host kernels: the
# Kubernetes e2e busybox from registry.k8s.io, not Docker Hub, whose anonymous pull limit
# many nodes behind one router SNAT address can hit at once (review-k8s K12). The tag is
# the one kubernetes/kubernetes test/utils/image/manifest.go pins (configs[BusyBox],
# PromoterE2eRegistry = registry.k8s.io/e2e-test-images) for several releases.
KATA_SMOKE_IMAGE = "registry.k8s.io/e2e-test-images/busybox:1.36.1-1"
CRI_SOCKETS: dict[str, str] = {
    "containerd": "unix:///run/containerd/containerd.sock",
    "crio": "unix:///var/run/crio/crio.sock",
}

# --- Ubuntu releases -------------------------------------------------------------------
SUPPORTED_UBUNTU = ("24.04", "26.04")

# --- Ports (kubeadm ports-and-protocols, Calico system requirements) --------------------
SSH_PORT = 22
API_PORT = 6443
ETCD_PORTS = (2379, 2380)
KUBELET_PORT = 10250
VXLAN_PORT = 4789
TYPHA_PORT = 5473
NODE_PORTS = (30000, 32767)  # kube-apiserver --service-node-port-range default


def kubernetes_patch(version: str) -> str:
    """`1.36` -> the table's patch; `1.36.2` stays as given."""
    return version if version.count(".") == 2 else KUBERNETES_PATCHES[version]


def kubernetes_minor(version: str) -> str:
    return ".".join(version.split(".")[:2])
