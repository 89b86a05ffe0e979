"""Node bootstrap phases 1-5: preflight, kernel, container runtime, Kata, kube packages.

class NodeBootstrap(pulumi.ComponentResource), token katak8s:bootstrap:NodeBootstrap
    NodeBootstrap(name, cfg, *, nodes, opts=None)
    .phases: dict[str, list[phase.Phase]]        node name -> its two commands, in order
    .ready: dict[str, list[pulumi.Resource]]     node name -> what a kubeadm join waits for
                                                 (the kube packages and Kata working)
    .kube_ready: dict[str, pulumi.Resource]      node name -> its bootstrap command, which
                                                 ends with the kube packages (what kubeadm
                                                 init waits for)
    .scripts: dict[str, CopyToRemote]             node name -> its copy of scripts/remote,
                                                 which every command on it waits for

Every node first gets scripts/remote once (components/nodes/library.py), then two commands
(issue #15: at most 6 SSH steps per worker): `bootstrap` runs preflight, kernel, runtime and
the kube packages in order, each skipped on the node when its program is the one that last
succeeded there (components/nodes/steps.py), so a node that fails preflight runs nothing
else and a change re-runs only the phase it concerns; `kata` follows. With containerd,
kubeadm init on cp-0 waits only for the bootstrap command, so the ~1 GB Kata download and
sandbox check run beside init, off the critical path (under CRI-O init waits for Kata too:
components/cluster KubeadmCluster._init_after).
No phase waits for another node: every node bootstraps in parallel, and workers never wait
for the control plane. Each phase's parameters hold only what that phase reads, so a stack
change re-runs only the phases it concerns (kataVersion -> the kata phase alone), and adding
a worker leaves every existing program, hence every existing trigger, unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from components import naming
from components import versions as v
from components.config import ClusterConfig
from components.nodes import library, steps
from components.nodes.phase import Phase, run_phase
from components.openstack.target import NodeTarget

# Sizing floor checked by preflight. kubeadm's own preflight wants 2 CPUs and 1700 MB on a
# control plane. Here the floor is derived: what the kubelet keeps from pods
# (versions.NODE_RESERVED_MIB) plus one Kata pod of the default size (2048 MiB guest + qemu
# overhead: the size of every VM under CRI-O), i.e. 3336 MiB; MemTotal of a 4 GiB flavor
# (about 3.8 GiB after the kernel's reservation) passes.
MIN_CPUS = 2
MIN_MEMORY_MIB = v.NODE_RESERVED_MIB + v.DEFAULT_KATA_POD_MIB
# Free space under /var/lib: images, the kata payload (~1 GiB) and etcd on control planes.
MIN_DISK_GIB = 10
# cloud-init installs packages on first boot and holds the dpkg lock meanwhile.
CLOUD_INIT_TIMEOUT = 900
RUNTIME_WAIT_SECONDS = 120
# One Kata VM boot under nested virtualization, plus its image pull.
SMOKE_TIMEOUT = 300
# [agent.kata] reconnect_timeout_ms: 3000 by default; L2 guests need longer (§6.5, kata #1102).
AGENT_RECONNECT_TIMEOUT_MS = 30000

PHASES = ("preflight", "kernel", "runtime", "kata", "kube-packages")
# One command runs these in order (components/nodes/steps.py); Kata follows as its own, so
# that kubeadm init on cp-0 (which waits for the kube packages) overlaps the ~1 GB Kata download.
BOOTSTRAP = "bootstrap"
BOOTSTRAP_PHASES = ("preflight", "kernel", "runtime", "kube-packages")


@dataclass(frozen=True, kw_only=True)
class PreflightParams:
    flavor: str
    supported_ubuntu: tuple[str, ...]
    min_cpus: int
    min_memory_mib: int
    min_disk_gib: int


@dataclass(frozen=True, kw_only=True)
class KernelParams:
    cloud_init_timeout: int
    node_reserved_mib: int  # /dev/shm = MemTotal - this: the memory pods (and their VMs) may use


@dataclass(frozen=True, kw_only=True)
class RuntimeParams:
    """The runtime parameters both runtime scripts read."""

    kata_handler: str
    pause_image: str
    kata_shim_path: str
    kata_config_path: str
    cri_socket: str
    allow_runtime_restart: bool
    runtime_wait_seconds: int


@dataclass(frozen=True, kw_only=True)
class ContainerdParams(RuntimeParams):
    containerd_min_version: str  # below it, a warning: versions.CONTAINERD_MIN_VERSION


@dataclass(frozen=True, kw_only=True)
class CrioParams(RuntimeParams):
    """Plus CRI-O's package repositories (one per Kubernetes minor)."""

    crio_repo_url: str
    kubernetes_repo_url: str


@dataclass(frozen=True, kw_only=True)
class KataParams:
    kata_version: str
    kata_release_url: str
    kata_static_sha256: str  # "" when unpinned: the script then stops with the fix
    kata_tools_sha256: str  # "" when unpinned: kata-ctl check is skipped
    kata_prefix: str
    kata_shim_path: str
    kata_config_path: str
    agent_reconnect_timeout_ms: int
    container_runtime: str
    kata_handler: str
    cri_socket: str
    smoke_image: str
    smoke_timeout: int
    allow_runtime_restart: bool  # also lets a new Kata replace /opt/kata under running Kata pods
    kata_hypervisor: str
    fixed_vm_vcpus: int  # CRI-O: every VM's size (versions.CRIO_KATA_VM); 0: the pod's limits size it
    fixed_vm_memory_mib: int


@dataclass(frozen=True, kw_only=True)
class KubePackagesParams:
    kubernetes_version: str
    kubernetes_repo_url: str
    cri_socket: str
    prepull_images: bool
    container_runtime: str  # whose pause image setting follows kubeadm's (align_pause_image)


@dataclass(frozen=True)
class PhaseSpec:
    """One phase of one node: its name, its script under scripts/ and its parameters."""

    name: str
    script: str
    params: Any


def kata_config_path(cfg: ClusterConfig) -> str:
    return f"{v.KATA_PREFIX}/{cfg.hypervisor.config_path}"


def runtime_params(cfg: ClusterConfig) -> ContainerdParams | CrioParams:
    common = dict(
        kata_handler=v.KATA_HANDLER,
        pause_image=v.PAUSE_IMAGES[cfg.kubernetes_minor],
        kata_shim_path=v.KATA_SHIM_PATH,
        kata_config_path=kata_config_path(cfg),
        cri_socket=cfg.cri_socket,
        allow_runtime_restart=cfg.allow_runtime_restart,
        runtime_wait_seconds=RUNTIME_WAIT_SECONDS,
    )
    if cfg.container_runtime == "crio":
        return CrioParams(crio_repo_url=v.CRIO_APT_REPO.format(minor=cfg.kubernetes_minor),
                          kubernetes_repo_url=v.KUBERNETES_APT_REPO.format(minor=cfg.kubernetes_minor),
                          **common)
    return ContainerdParams(containerd_min_version=v.CONTAINERD_MIN_VERSION[cfg.kubernetes_minor], **common)


def kata_params(cfg: ClusterConfig) -> KataParams:
    return KataParams(
        kata_version=cfg.kata_version,
        kata_release_url=v.KATA_RELEASE_URL,
        kata_static_sha256=cfg.kata_sha256 or v.KATA_STATIC_SHA256.get(cfg.kata_version) or "",
        kata_tools_sha256=v.KATA_TOOLS_SHA256.get(cfg.kata_version) or "",
        kata_prefix=v.KATA_PREFIX,
        kata_shim_path=v.KATA_SHIM_PATH,
        kata_config_path=kata_config_path(cfg),
        agent_reconnect_timeout_ms=AGENT_RECONNECT_TIMEOUT_MS,
        container_runtime=cfg.container_runtime,
        kata_handler=v.KATA_HANDLER,
        cri_socket=cfg.cri_socket,
        smoke_image=v.KATA_SMOKE_IMAGE,
        smoke_timeout=SMOKE_TIMEOUT,
        allow_runtime_restart=cfg.allow_runtime_restart,
        kata_hypervisor=cfg.kata_hypervisor,
        fixed_vm_vcpus=v.CRIO_KATA_VM.vcpus if cfg.container_runtime == "crio" else 0,
        fixed_vm_memory_mib=v.CRIO_KATA_VM.memory_mib if cfg.container_runtime == "crio" else 0,
    )


def phase_specs(cfg: ClusterConfig, *, role: str, flavor: str) -> list[PhaseSpec]:
    """The five phases of one node, in order. Pure: same inputs, same programs."""
    runtime_script = "node/20-crio.sh" if cfg.container_runtime == "crio" else "node/20-containerd.sh"
    return [
        PhaseSpec("preflight", "node/00-preflight.sh", PreflightParams(
            flavor=flavor, supported_ubuntu=v.SUPPORTED_UBUNTU, min_cpus=MIN_CPUS,
            min_memory_mib=MIN_MEMORY_MIB, min_disk_gib=MIN_DISK_GIB)),
        PhaseSpec("kernel", "node/10-kernel.sh", KernelParams(cloud_init_timeout=CLOUD_INIT_TIMEOUT,
                                                                  node_reserved_mib=v.NODE_RESERVED_MIB)),
        PhaseSpec("runtime", runtime_script, runtime_params(cfg)),
        PhaseSpec("kata", "node/30-kata.sh", kata_params(cfg)),
        PhaseSpec("kube-packages", "node/40-kube-packages.sh", KubePackagesParams(
            kubernetes_version=cfg.kubernetes_patch,
            kubernetes_repo_url=v.KUBERNETES_APT_REPO.format(minor=cfg.kubernetes_minor),
            cri_socket=cfg.cri_socket,
            prepull_images=role == naming.CONTROL_PLANE,
            container_runtime=cfg.container_runtime)),
    ]


class NodeBootstrap(pulumi.ComponentResource):
    """Phases 1-5 on every node, in parallel across nodes (see the module docstring)."""

    phases: dict[str, list[Phase]]
    ready: dict[str, list[pulumi.Resource]]
    kube_ready: dict[str, pulumi.Resource]
    scripts: dict[str, pulumi.Resource]

    def __init__(self, name: str, cfg: ClusterConfig, *, nodes: Any,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__(naming.type_token("bootstrap", "NodeBootstrap"), name, None, opts)
        self.phases, self.ready, self.kube_ready, self.scripts = {}, {}, {}, {}
        targets: list[NodeTarget] = [*nodes.control_planes, *nodes.workers]
        for target in targets:
            self.scripts[target.name] = library.ship(self, target)
            by_name = _bootstrap_node(self, cfg, target, self.scripts[target.name])
            self.phases[target.name] = list(by_name.values())
            self.ready[target.name] = [by_name[BOOTSTRAP].command, by_name["kata"].command]
            self.kube_ready[target.name] = by_name[BOOTSTRAP].command
        self.register_outputs({
            "ready": {node: [c.id for c in cmds] for node, cmds in self.ready.items()},
        })


def _bootstrap_node(parent: pulumi.Resource, cfg: ClusterConfig, target: NodeTarget,
                    scripts: pulumi.Resource) -> dict[str, Phase]:
    """The node's two commands: `bootstrap` (every phase but Kata, in order, each skipped on
    the node when unchanged: components/nodes/steps.py), then `kata`."""
    specs = {s.name: s for s in phase_specs(cfg, role=target.role, flavor=target.flavor)}
    rendered = steps.programs([(n, specs[n].script, specs[n].params) for n in BOOTSTRAP_PHASES],
                              home=target.remote_dir)
    first = run_phase(parent, target, scripts, phase=BOOTSTRAP,
                      program=steps.render_steps(rendered, home=target.remote_dir),
                      triggers=steps.phase_triggers(rendered), timeout=steps.command_timeout(rendered))
    kata = run_phase(parent, target, scripts, phase="kata", script=specs["kata"].script,
                     params=specs["kata"].params, depends_on=[first.command])
    return {BOOTSTRAP: first, "kata": kata}
