"""Cluster formation: kubeadm init on the first control plane, a secret kubeconfig, one
join per other node, and the scale-in path of every joined node.

class KubeadmCluster(pulumi.ComponentResource), token katak8s:cluster:KubeadmCluster
    KubeadmCluster(name, cfg, *, nodes, bootstrap, endpoint, opts=None)
    .kubeconfig: Output[str]        secret, server rewritten to the public endpoint
    .api_ready: list[pulumi.Resource]   init + kubeconfig read: the API answers
    .ready: list[pulumi.Resource]   init + every join: the cluster exists once they are done
    .init / .kubeconfig_phase: phase.Phase (on cp-0)
    .first_control_plane: NodeTarget; .first_scripts: its copy of scripts/remote
    .credentials / .joins / .memberships: dict[node name, phase.Phase]

Per joining node N (every control plane but cp-0, every worker):
  credentials  on cp-0, created with N: a fresh token (+ CA hash, + certificate key for a
               control plane), printed to a secret stdout; minted right before N joins.
               Its delete deletes N's Node object.
  join         on N: the rendered JoinConfiguration on stdin (secret). Its delete runs
               `kubeadm reset` on N.
  membership   on cp-0, after the join: waits for N to register. Its delete drains N.
Pulumi deletes in reverse dependency order (membership -> join -> credentials -> server),
so scale-in runs upstream's sequence: drain, reset, delete the Node, delete the server
(upstream-bootstrap.md §3.6). The Node must outlive the reset: a control plane's `kubeadm
reset` reads it to find and remove its etcd member (cmd/kubeadm/app/util/config/cluster.go
GetNodeRegistration), and without it only warns and leaves a dead member in etcd.
The three deletes name cp-0's server as `deleted_with`: removing a worker drains and resets
it, but destroying the whole stack (cp-0 goes too) skips every drain and reset instead of
hanging on a cluster that is going away. Workers join in parallel (each waits only for
init and its own bootstrap); extra control planes join one after another, because each
upload of the certificates replaces the key the previous one joined with.

The same three commands (and init on cp-0) carry an in-place upgrade when kubernetesVersion
moves: credentials drains, join upgrades, membership uncordons, node after node
(components/cluster/upgrade.py).
"""

from __future__ import annotations

from typing import Any

import pulumi

from components import naming
from components import versions as v
from components.cluster import kubeadm, kubeconfig, upgrade
from components.cluster.params import (  # noqa: F401 (re-exported: the scripts' parameters)
    CredentialParams,
    DeleteNodeParams,
    DrainParams,
    InitParams,
    JoinParams,
    KubeconfigParams,
    MemberParams,
    ResetParams,
)
from components.config import ClusterConfig
from components.config_rules import DETACH_RESERVE_SECONDS
from components.nodes.phase import Phase, run_phase
from components.openstack.target import NodeTarget

READYZ_TIMEOUT = 300
REGISTER_TIMEOUT = 300


def registration(cfg: ClusterConfig, target: NodeTarget, node_ip: str,
                 server_id: str | None = None) -> kubeadm.NodeRegistration:
    """nodeRegistration of `target`: workers carry the kata taint when the pool is
    dedicated (and explicitly none otherwise); control planes keep kubeadm's taint. With
    the cloud provider, its providerID names the server `server_id`."""
    taints = None
    if target.role == naming.WORKER:
        taints = (kubeadm.KATA_TAINT,) if cfg.kata_dedicated_workers else ()
    provider_id = f"{v.PROVIDER_ID_PREFIX}{server_id}" if cfg.cloud_provider and server_id else None
    if cfg.cloud_provider and not server_id:
        raise ValueError(f"{target.name}: the cloud provider needs its server id for the providerID")
    return kubeadm.NodeRegistration(name=target.name, cri_socket=cfg.cri_socket, node_ip=node_ip,
                                    taints=taints, provider_id=provider_id)


def cluster_spec(cfg: ClusterConfig, private_host: str, public_host: str) -> kubeadm.ClusterSpec:
    return kubeadm.ClusterSpec(
        cluster_name=cfg.cluster_name, kubernetes_patch=cfg.kubernetes_patch,
        control_plane_host=private_host, public_host=public_host,
        pod_subnet=cfg.pod_cidr, service_subnet=cfg.service_cidr,
        external_cloud_provider=cfg.cloud_provider, serving_certificates=cfg.kubelet_serving_certificates)


def _identity(target: NodeTarget) -> pulumi.Input[str]:
    """What replaces a node's join commands: its server's id (a new server is a new node)."""
    server = target.server
    return server.id if isinstance(server, pulumi.CustomResource) else target.name


class KubeadmCluster(pulumi.ComponentResource):
    """`deployed` (components/deployed.py DeployedState): when the stack moves to a new
    Kubernetes version, or may (its deployed version is unknown), the nodes take their turns
    (components/cluster/upgrade.py)."""

    def __init__(self, name: str, cfg: ClusterConfig, *, nodes: Any, bootstrap: Any, endpoint: Any,
                 deployed: Any = None, opts: pulumi.ResourceOptions | None = None):
        super().__init__(naming.type_token("cluster", "KubeadmCluster"), name, None, opts)
        self._cfg, self._endpoint, self._bootstrap = cfg, endpoint, bootstrap
        self._version = kubeadm.kubernetes_version(cfg.kubernetes_patch)
        self._cp0: NodeTarget = nodes.control_planes[0]
        # Where cluster-wide scripts run (the cloud controller's destroy guard), and what kubectl
        # there needs to reach the API: the load balancer's listener, pool, monitor and members
        # (admin.conf names the VIP with HA), which the guard must outlive at destroy.
        self.api_path: list[pulumi.Resource] = [r for r in (
            getattr(endpoint, "listener", None), getattr(endpoint, "pool", None), getattr(endpoint, "monitor", None),
            *(getattr(endpoint, "members", None) or [])) if isinstance(r, pulumi.Resource)]
        self.first_control_plane: NodeTarget = self._cp0
        self.first_scripts: pulumi.Resource = bootstrap.scripts[self._cp0.name]
        upgrading = deployed is not None and deployed.upgrading(cfg)
        recorded = deployed.kubernetes_version if deployed is not None else None
        self.credentials: dict[str, Phase] = {}
        self.joins: dict[str, Phase] = {}
        self.memberships: dict[str, Phase] = {}

        self.init = self._init()
        self.kubeconfig_phase, self.kubeconfig = self._kubeconfig()
        # Control planes one at a time: each upload of the certificates replaces the key the
        # previous one joined with, and kubeadm upgrades them one at a time too.
        previous: list[pulumi.Resource] = [self.init.command]
        for target in nodes.control_planes[1:]:
            previous = [self._join(target, after=previous).command]
        control_planes_done = previous
        # Workers join side by side; an upgrade takes them in batches, after every control
        # plane. The extra edges change no input, so they never cause a change by themselves.
        after = control_planes_done
        for batch in upgrade.batches(list(nodes.workers), cfg.upgrade_batch_size):
            done = [self._join(target, after=after if upgrading else [self.init.command]).command
                    for target in batch]
            after = done

        # The API answers once init is done and the kubeconfig is read: Calico and the
        # RuntimeClass need no more, so they install while the workers are still joining.
        # In an upgrade, Calico moves once every control plane runs the new version.
        self.api_ready: list[pulumi.Resource] = [self.init.command, self.kubeconfig_phase.command]
        if upgrading:
            self.api_ready += [c for c in control_planes_done if c not in self.api_ready]
        self.ready: list[pulumi.Resource] = [
            self.init.command, self.kubeconfig_phase.command,
            *(p.command for p in self.joins.values()), *(p.command for p in self.memberships.values())]
        # Read from the nodes once every node's last upgrade step succeeded: a failed `pulumi
        # up` records no new version (components/outputs.py), so the next preview still judges
        # the change from the last completed one (components/deployed.py). init's stdout is
        # secret (its command gets stdin); the version line in it is not.
        self.kubernetes_version: pulumi.Output[str] = pulumi.Output.all(
            pulumi.Output.unsecret(self.init.command.stdout),
            *(p.command.stdout for p in self.memberships.values())).apply(
            lambda outs: upgrade.observed_version(list(outs), cfg.kubernetes_patch, recorded))
        self.register_outputs({"kubeconfig": self.kubeconfig, "nodes": [self._cp0.name, *self.joins]})

    def _init(self) -> Phase:
        cfg, cp0, endpoint = self._cfg, self._cp0, self._endpoint
        # The config holds addresses known only after deployment; the program in the command
        # line is rendered before them (its digest is a trigger, known at preview), so the
        # config travels on stdin. No secret inside: kubeadm generates the init token.
        config = pulumi.Output.all(cp0.private_ip, endpoint.private_host, endpoint.public_host,
                                   _identity(cp0)).apply(
            lambda a: kubeadm.render_init_config(cluster_spec(cfg, a[1], a[2]), registration(cfg, cp0, a[0], a[3])))
        return run_phase(
            self, cp0, self._bootstrap.scripts[cp0.name], phase="kubeadm-init", script="cluster/init.sh",
            params=InitParams(node_name=cp0.name, kubernetes_version=self._version,
                              readyz_timeout=READYZ_TIMEOUT, cri_socket=cfg.cri_socket,
                              removed_gates=upgrade.removed_gates(cfg.kubernetes_minor),
                              **upgrade.node_upgrade(cfg), **upgrade.cluster_upgrade(cfg, control_plane=True)),
            stdin=config, depends_on=self._init_after(), timeout=upgrade.FIRST_CONTROL_PLANE_TIMEOUT)

    def _init_after(self) -> list[pulumi.Resource]:
        """init waits for cp-0's kube packages only, so it overlaps the ~1 GB Kata download.
        Under CRI-O it waits for cp-0's kata phase too: that phase's smoke test lends CRI-O a
        loopback CNI config and starts a sandbox the kubelet does not know, which must not
        overlap a starting kubelet or CoreDNS (review-node F4). containerd's smoke test runs
        in its own ctr namespace and never meets the kubelet."""
        cp0 = self._cp0.name
        if self._cfg.container_runtime == "crio":
            return list(self._bootstrap.ready[cp0])
        return [self._bootstrap.kube_ready[cp0]]

    def _kubeconfig(self) -> tuple[Phase, pulumi.Output[str]]:
        read = run_phase(self, self._cp0, self._bootstrap.scripts[self._cp0.name], phase="kubeconfig",
                         script="cluster/kubeconfig.sh", params=KubeconfigParams(node_name=self._cp0.name),
                         depends_on=[self.init.command], secret_stdout=True)
        admin_conf = pulumi.Output.secret(read.command.stdout)
        text = pulumi.Output.all(admin_conf, self._endpoint.public_host).apply(
            lambda a: kubeconfig.rebuild(a[0], cluster_name=self._cfg.cluster_name, public_host=a[1],
                                         port=v.API_PORT))
        return read, pulumi.Output.secret(text)

    def _join(self, target: NodeTarget, *, after: list[pulumi.Resource]) -> Phase:
        """The node's credentials, join and membership; returns the membership (the node is
        in the cluster, and after an upgrade, back in service)."""
        cfg, cp0 = self._cfg, self._cp0
        control_plane = target.role == naming.CONTROL_PLANE
        after = [*after, *self._bootstrap.ready[target.name]]
        identity = _identity(target)
        # Minted when the node is ready to join, so a worker added a month later gets a
        # fresh token; a replaced server (new id) gets new credentials. Created before the
        # join, so deleted after its reset: the delete removes the Node object last.
        mint = run_phase(
            self, cp0, self._bootstrap.scripts[cp0.name], phase=f"join-credentials-{target.name}",
            script="cluster/join-credentials.sh",
            params=CredentialParams(node_name=target.name, token_ttl=kubeadm.JOIN_TOKEN_TTL,
                                    control_plane=control_plane, readyz_timeout=READYZ_TIMEOUT,
                                    kubernetes_version=self._version,
                                    **upgrade.cluster_upgrade(cfg, control_plane=control_plane)),
            depends_on=after, secret_stdout=True,
            delete_script="cluster/delete-node.sh", delete_params=DeleteNodeParams(
                node_name=target.name, control_plane=control_plane, etcd_pod=f"etcd-{cp0.name}"),
            deleted_with=cp0.server, triggers=[identity])
        creds = pulumi.Output.secret(mint.command.stdout).apply(
            lambda out: kubeadm.parse_join_credentials(out, node=target.name, control_plane=control_plane))
        config = pulumi.Output.all(creds, target.private_ip, self._endpoint.private_host, identity).apply(
            lambda a: kubeadm.render_join_config(kubeadm.JoinSpec(
                api_server_endpoint=f"{a[2]}:{v.API_PORT}", node=registration(cfg, target, a[1], a[3]),
                credentials=a[0], control_plane=control_plane)))
        # The deletes undo what the creates admitted (reset undoes the join; drain the
        # membership; the Node deletion the credentials): run_phase makes them
        # delete-before-replace. The stable `triggers` keep a script edit from replacing
        # (and so resetting, draining or deleting) a live node.
        join = run_phase(
            self, target, self._bootstrap.scripts[target.name], phase="kubeadm-join", script="cluster/join.sh",
            params=JoinParams(node_name=target.name, kubernetes_version=self._version,
                              cri_socket=cfg.cri_socket, control_plane=control_plane,
                              mint_resource=f"{cp0.name}-join-credentials-{target.name}",
                              **upgrade.node_upgrade(cfg)),
            stdin=pulumi.Output.secret(config), depends_on=after,
            delete_script="cluster/reset.sh",
            delete_params=ResetParams(node_name=target.name, cri_socket=cfg.cri_socket),
            deleted_with=cp0.server, triggers=[identity])
        member = run_phase(
            self, cp0, self._bootstrap.scripts[cp0.name], phase=f"membership-{target.name}", script="cluster/member.sh",
            params=MemberParams(node_name=target.name, register_timeout=REGISTER_TIMEOUT,
                                kubernetes_version=self._version, ready_timeout=upgrade.READY_TIMEOUT),
            depends_on=[join.command],
            delete_script="cluster/drain.sh",
            delete_params=DrainParams(node_name=target.name, drain_timeout=cfg.drain_timeout_seconds,
                                      detach_reserve=DETACH_RESERVE_SECONDS),
            deleted_with=cp0.server, triggers=[identity])
        self.credentials[target.name] = mint
        self.joins[target.name] = join
        self.memberships[target.name] = member
        return member
