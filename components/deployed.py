"""What the last `pulumi up` deployed, read at preview, to refuse changes a live cluster can't take.

    deployed = DeployedState.read()                  # this stack's own last outputs
    deployed.check(cfg, ssh_public_key=...)          # raises ConfigError on a refusal

Some changes can be judged only against the deployed state: moving between 1 and 3/5
control planes (the API endpoint would move, review-pulumi F20) and a new SSH key (the
servers only accept the key they booted with, F6). The program asks the engine for the
stack's own last outputs with the builtin invoke `pulumi:pulumi:readStackOutputs`, the call
behind StackReference (pulumi/pulumi pkg/resource/deploy/builtins.go Invoke ->
readStackReference -> backendClient.GetStackOutputs). Invokes run for real at preview, and
a stack's outputs change only when an update finishes, so during an `up` they still
describe the previous one. A fresh stack has none.

The check is synchronous, like the SDK's own synchronous invokes (pulumi/runtime/invoke.py
`invoke` -> sync_await._sync_await): it runs before the key pair, the network and every
server are declared, so a refused change fails `pulumi preview` with one message and
`pulumi up --skip-preview` creates nothing but, at most, a generated SSH key in state.
Chosen over a dynamic provider, whose pickled class must be importable from the provider
process (pulumi/pulumi#7453, open), and over a StackReference resource, whose failure
reaches every dependent input as an exception.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.output import Unknown
from pulumi.runtime.sync_await import _sync_await

from components import naming
from components.config import JUMP_HOSTS, NAMESPACE, ClusterConfig, ConfigError
from components.deployed_rules import (  # noqa: F401 (re-exported: the rules and output names)
    CLOUD_CLUSTER_NAME,
    CLOUD_PROVIDER,
    CONTROL_PLANES,
    JUMP_HOST,
    KUBERNETES_VERSION,
    POD_CIDR,
    READ,
    READ_STACK_OUTPUTS,
    RUNTIME,
    SERVICE_CIDR,
    SERVING_CERTIFICATES,
    SSH_PUBLIC_KEY,
    STORAGE_CLASS,
    WORKERS,
    _patch,
    cloud_provider_refusals,
    metrics_refusals,
    next_versions,
    refusals,
    version_notice,
    version_refusals,
)


def resolve(value: pulumi.Input[Any]) -> Any:
    """The value of an Output now, or None while it is unknown (a resource being created,
    in preview). Pumps the event loop like a synchronous invoke."""
    got = _sync_await(pulumi.Output.from_input(value).future(with_unknowns=True))
    return None if isinstance(got, Unknown) else got


def stack_names() -> list[str]:
    """This stack's fully qualified name, then, on a legacy self-managed backend, its short one."""
    org = pulumi.get_organization() or "organization"
    names = [f"{org}/{pulumi.get_project()}/{pulumi.get_stack()}"]
    if org == "organization":
        names.append(pulumi.get_stack())
    return names


@dataclass(frozen=True)
class DeployedState:
    """The stack's own outputs from its last successful `pulumi up` (empty on a fresh stack)."""

    outputs: Mapping[str, Any]
    readable: bool = True  # False: the outputs could not be read, so nothing is known

    def jump_host(self, cfg: ClusterConfig) -> str:
        """Where SSH enters (components/openstack/jumphost.py): `jumpHost` when set; else the
        dedicated jump host on a new stack, and what a deployed stack has: a stack deployed
        before it (no `jumpHost` output) keeps its first control plane, and so does a stack
        whose outputs cannot be read (moving would re-run every step). Either way nothing
        is drained or replaced; the move re-runs every step once (connections change)."""
        if cfg.jump_host:
            return cfg.jump_host
        had = self.outputs.get(JUMP_HOST)
        if isinstance(had, str) and had in JUMP_HOSTS:
            return had
        if self.readable and not self.outputs:
            return JUMP_HOSTS[0]
        if self.readable:
            pulumi.log.warn(f"this stack keeps its first control plane as SSH jump host; set {NAMESPACE}:jumpHost "
                            "dedicated to move SSH off it to a small VM of its own (the next `pulumi up` re-runs "
                            "every step once; docs/operations.md 'The SSH jump host')")
        return JUMP_HOSTS[1]

    def settle(self, cfg: ClusterConfig, *, stack: str | None = None) -> ClusterConfig:
        """`cfg` with what the deployed stack fixes: the cloud controller stays off on a stack
        deployed before it (no `cloudProvider` output: turning it on would need every kubelet
        re-registered); the cloud cluster name stays the one first deployed. Outputs that
        cannot be read fix nothing (the configuration stands). `stack` is `<org>/<project>/<stack>`,
        this stack's by default."""
        stack = stack or stack_names()[0]
        had_name = self.outputs.get(CLOUD_CLUSTER_NAME)
        name = had_name if isinstance(had_name, str) and had_name else naming.cloud_cluster_name(
            cfg.cluster_name, stack)
        # Only a readable stack deployed before the key existed keeps it off. Unreadable
        # outputs change nothing: flipping it off there would delete a running controller,
        # its credential and the NodePort rule (review of 81acfc9, finding 1).
        legacy = self.readable and bool(self.outputs) and CLOUD_PROVIDER not in self.outputs
        on = cfg.cloud_provider
        if not self.readable and on:
            pulumi.log.warn(f"{NAMESPACE}:cloudProvider could not be checked against the deployed stack (its outputs "
                            "cannot be read): if this stack was deployed before katak8s managed the cloud "
                            f"controller, set {NAMESPACE}:cloudProvider false before this `pulumi up`")
        if legacy and on:
            pulumi.log.warn(f"{NAMESPACE}:cloudProvider stays off for this stack: it was deployed before katak8s "
                            "managed the OpenStack cloud controller, and turning it on needs every kubelet "
                            "re-registered with a provider ID, which katak8s does not do in place. Set "
                            f"{NAMESPACE}:cloudProvider false to say so (docs/openstack.md 'Cloud integration')")
            on = False
        return self._settle_metrics(dataclasses.replace(cfg, cloud_provider=on, cloud_cluster_name=name))

    def _settle_metrics(self, cfg: ClusterConfig) -> ClusterConfig:
        """Kubelet serving certificates are what the cluster was initialized with: kept when
        recorded (kubelet-csr-approver too, even with metricsServer off: the kubelets renew);
        off on a readable stack deployed before katak8s managed them (metrics-server too, with
        a warning); as configured on a new stack. Unknown outputs keep the configuration and
        the approver, which approves nothing where kubelets sign their own: scripts/remote/
        cluster/init.sh refuses a setting the cluster was not initialized with, before the
        approver could go. metrics_refusals refuses metrics-server on a cluster recorded
        without them."""
        had = self.outputs.get(SERVING_CERTIFICATES)
        if isinstance(had, bool):
            return dataclasses.replace(cfg, kubelet_serving_certificates=had, csr_approver=had)
        metrics = cfg.metrics_server
        if not self.readable:
            if metrics:
                pulumi.log.warn(f"{NAMESPACE}:metricsServer could not be checked against the deployed stack (its "
                                "outputs cannot be read): if this stack was deployed before katak8s managed "
                                f"metrics-server, set {NAMESPACE}:metricsServer false before this `pulumi up`")
            else:
                pulumi.log.warn("kubelet-csr-approver stays installed although metricsServer is false: this stack's "
                                "outputs cannot be read, and its kubelets may need it; the next `pulumi up` that "
                                "reads them removes it where they do not")
            return dataclasses.replace(cfg, kubelet_serving_certificates=metrics, csr_approver=True)
        if self.outputs:
            if metrics:
                pulumi.log.warn(f"{NAMESPACE}:metricsServer stays off for this stack: it was deployed before katak8s "
                                "managed metrics-server, and its kubelets sign their own serving certificates, which "
                                "metrics-server cannot verify (serverTLSBootstrap is set only at `kubeadm init`). Set "
                                f"{NAMESPACE}:metricsServer false to say so: the next `pulumi up` refuses true "
                                "(docs/kubernetes.md 'Metrics')")
            return dataclasses.replace(cfg, metrics_server=False, kubelet_serving_certificates=False,
                                       csr_approver=False)
        return dataclasses.replace(cfg, kubelet_serving_certificates=metrics, csr_approver=metrics)

    @property
    def kubernetes_version(self) -> str | None:
        """The version the last completed `up` recorded (None on a new stack)."""
        version = self.outputs.get(KUBERNETES_VERSION)
        return version if isinstance(version, str) and _patch(version) else None

    def upgrading(self, cfg: ClusterConfig) -> bool:
        """The cluster may run another Kubernetes version than `cfg` asks for: the stack moves
        to a new one, resumes an unfinished upgrade (a failed `up` records no new version), or
        its last outputs are unknown. Then the nodes take their turns one batch at a time
        (components/cluster/upgrade.py); assuming so when unknown is the safe side."""
        deployed = self.outputs.get(KUBERNETES_VERSION)
        return not self.readable or (isinstance(deployed, str) and deployed != cfg.kubernetes_patch)

    @staticmethod
    def read() -> DeployedState:
        """Pulumi Cloud and project-scoped self-managed backends name the stack
        `<org>/<project>/<stack>`; a legacy self-managed backend (state written before CLI
        3.61) accepts only `<stack>` (pkg/backend/diy/store.go legacyReferenceStore
        ParseReference), and its organization is always "organization" (diy/state.go).
        An invoke's error can be caught (pulumi/runtime/invoke.py do_rpc), so each name is
        tried in turn; when none answers, the checks are skipped with a warning."""
        errors = []
        for name in stack_names():
            try:
                result = pulumi.runtime.invoke(READ_STACK_OUTPUTS, {"name": name})
            except Exception as err:  # noqa: BLE001 reported below, with every name tried
                errors.append(f"{name}: {str(err).splitlines()[0][:200] if str(err) else type(err).__name__}")
                continue
            # The result holds the stack's secret outputs in plain text: keep only the plain
            # ones the checks read, and never log it.
            outputs = (result.value or {}).get("outputs")
            outputs = outputs if isinstance(outputs, Mapping) else {}
            return DeployedState({k: outputs[k] for k in READ if k in outputs})
        pulumi.log.warn("could not read this stack's last outputs, so changes a live cluster can't take "
                        "(controlPlaneCount between 1 and 3/5, a new sshPrivateKey) are NOT checked in this "
                        "run, and a Kubernetes upgrade, if any, takes the workers one batch at a time: "
                        + "; ".join(errors))
        return DeployedState({}, readable=False)

    def check(self, cfg: ClusterConfig, *, ssh_public_key: pulumi.Input[str]) -> None:
        """Raise ConfigError naming every refused change; return when there is none."""
        problems = refusals(self.outputs, cfg, ssh_public_key=resolve(ssh_public_key))
        if problems:
            raise ConfigError(problems)
        notice = version_notice(self.outputs, cfg)
        if notice:
            pulumi.log.warn(notice)
