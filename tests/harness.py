"""Evaluate the katak8s program under Pulumi's own mock runtime and record the graph.

`run_program(config)` runs `__main__.py` exactly as the CLI would (minus the engine) and
returns a `Graph` of every registration: type, name, parent, inputs (secret markers
kept), dependencies and resource options. Tests, the offline plan (scripts/plan.py) and
the benchmark all use this one entry point, so what they show is what they assert.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import runpy
import sys
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pulumi
from google.protobuf import json_format
from pulumi.runtime import mocks as pmocks
from pulumi.runtime import rpc, settings
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

ROOT = Path(__file__).resolve().parent.parent
PROJECT = "katak8s"
SECRET_SIG = rpc._special_sig_key  # "4dabf18193072939515e22adb298388d"
SECRET_VALUE = rpc._special_secret_sig

# A minimal valid config: the required keys of Pulumi.yaml.
BASE_CONFIG: dict[str, Any] = {
    "controlPlaneFlavor": "m1.large",
    "workerFlavor": "m1.xlarge",
    "externalNetwork": "public",
    "allowedCidrs": ["203.0.113.0/24"],
}

def _pem_b64(kind: str) -> str:
    """base64 of a tiny well-formed PEM block (its body a DER SEQUENCE), as kubeconfig
    `*-data` fields hold: what components/cluster/kubeconfig.py accepts."""
    pem = f"-----BEGIN {kind}-----\nMAMCAQE=\n-----END {kind}-----\n"
    return base64.b64encode(pem.encode()).decode()


# A kubeadm admin.conf as kubeconfig.sh prints it.
FAKE_KUBECONFIG = f"""apiVersion: v1
kind: Config
clusters:
- cluster:
    certificate-authority-data: {_pem_b64("CERTIFICATE")}
    server: https://10.42.0.10:6443
  name: kubernetes
contexts:
- context: {{cluster: kubernetes, user: kubernetes-admin}}
  name: kubernetes-admin@kubernetes
current-context: kubernetes-admin@kubernetes
users:
- name: kubernetes-admin
  user:
    client-certificate-data: {_pem_b64("CERTIFICATE")}
    client-key-data: {_pem_b64("RSA PRIVATE KEY")}
"""


# What scripts/remote/cluster/join-credentials.sh prints (kubeadm's documented example token and
# obviously fake hex), for Command resources whose name contains "join-credentials".
FAKE_JOIN_CREDENTIALS = ("token=abcdef.0123456789abcdef\n"
                         f"ca_cert_hash=sha256:{'0' * 64}\n"
                         f"certificate_key={'f' * 64}\n")


def placeholder(kind: str, name: str) -> str:
    """What a value that exists only after deployment looks like in mocks and plans."""
    return f"<{kind} of {name}>"


@dataclass
class Registration:
    urn: str
    type: str
    name: str
    parent: str
    custom: bool
    inputs: dict[str, Any]
    provider: str
    dependencies: list[str]
    property_dependencies: dict[str, list[str]]
    delete_before_replace: bool
    deleted_with: str
    replace_with: list[str]
    additional_secret_outputs: list[str]
    replace_on_changes: list[str]
    ignore_changes: list[str]
    protect: bool
    outputs: dict[str, Any] = field(default_factory=dict)
    retain_on_delete: bool = False

    def plain(self, key: str, default: Any = None) -> Any:
        """An input with secret markers removed."""
        return unsecret(self.inputs.get(key, default))

    def is_secret(self, key: str) -> bool:
        value = self.inputs.get(key)
        return isinstance(value, dict) and value.get(SECRET_SIG) == SECRET_VALUE


def unsecret(value: Any) -> Any:
    if isinstance(value, dict):
        if value.get(SECRET_SIG) == SECRET_VALUE:
            return unsecret(value.get("value"))
        return {k: unsecret(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unsecret(v) for v in value]
    return value


class Graph:
    """All registrations of one evaluation, in registration order."""

    def __init__(self, regs: list[Registration], logs: list[tuple[str, str]], exports: dict[str, Any]):
        self.regs = regs
        self.by_urn = {r.urn: r for r in regs}
        self.logs = logs
        self.exports = exports

    def __iter__(self) -> Iterator[Registration]:
        return iter(self.regs)

    def __len__(self) -> int:
        return len(self.regs)

    def of_type(self, typ: str) -> list[Registration]:
        return [r for r in self.regs if r.type == typ]

    def named(self, name: str) -> Registration:
        matches = [r for r in self.regs if r.name == name]
        if len(matches) != 1:
            raise KeyError(f"{len(matches)} resources named {name!r}")
        return matches[0]

    def program(self, name: str, *, delete: bool = False) -> str:
        """The program command `name` runs on its node (components/nodes/phase.py
        render_program), or its delete's."""
        from components.nodes import phase

        text = phase.program_of(self.named(name).plain("delete" if delete else "create"))
        if text is None:
            raise KeyError(f"{name} runs no katak8s program")
        return text

    def phase_program(self, node: str, name: str) -> str:
        """The program of phase `name` (bootstrap.PHASES) of `node`, inside whichever command
        runs it: its own, or the node's bootstrap command of several phases."""
        from components.nodes import bootstrap, steps

        if name not in bootstrap.BOOTSTRAP_PHASES:
            return self.program(f"{node}-{name}")
        return dict(steps.parse(self.program(f"{node}-{bootstrap.BOOTSTRAP}")) or [])[name]

    def find(self, pred: Callable[[Registration], bool]) -> list[Registration]:
        return [r for r in self.regs if pred(r)]

    def ancestors(self, reg: Registration) -> list[Registration]:
        out = []
        while reg.parent and reg.parent in self.by_urn:
            reg = self.by_urn[reg.parent]
            out.append(reg)
        return out

    def descendants(self, reg: Registration) -> list[Registration]:
        return [r for r in self.regs if reg in self.ancestors(r)]

    def depends_on(self, a: Registration, b: Registration) -> bool:
        """True when `a` waits for `b`, directly or through other resources or
        components (a component in depends_on stands for all its descendants)."""
        seen: set[str] = set()
        stack = [a.urn]
        while stack:
            urn = stack.pop()
            if urn in seen:
                continue
            seen.add(urn)
            reg = self.by_urn.get(urn)
            if reg is None:
                continue
            edges = list(reg.dependencies)
            for deps in reg.property_dependencies.values():
                edges.extend(deps)
            if reg.provider:  # "<provider urn>::<id>": it waits for its explicit provider
                edges.append(reg.provider.rsplit("::", 1)[0])
            if not reg.custom:  # a component waits for what its children wait for
                edges.extend(c.urn for c in self.regs if c.parent == reg.urn)
            if b.urn in edges:
                return True
            stack.extend(edges)
        return False


OCTAVIA_PROBE = "openstack:loadbalancer/getFlavorV2:getFlavorV2"
# A `deployed` mapping holding this key makes readStackOutputs fail (an unreachable backend).
UNREADABLE = "__unreadable__"


class ProviderError(grpc.RpcError):
    """What the engine answers when a provider's Invoke fails (runtime/invoke.py turns it
    into an exception the program can catch)."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.UNKNOWN

    def details(self) -> str:
        return self.message


class KatakMocks(pulumi.runtime.Mocks):
    """Realistic outputs for what the program reads back; everything else echoes inputs."""

    def __init__(self, overrides: Mapping[str, Callable[[pmocks.MockResourceArgs], dict]] | None = None,
                 deployed: Mapping[str, Any] | None = None, fresh: Collection[str] = ()):
        self.overrides = dict(overrides or {})
        # Resources the engine model replaces or re-runs: a new id, a newly minted token.
        self.fresh = frozenset(fresh)
        self.deployed = dict(deployed or {})  # the stack's outputs as its last `up` left them

    def new_resource(self, args: pmocks.MockResourceArgs):
        out = dict(args.inputs)
        name, typ = args.name, args.typ
        if typ == "openstack:networking/floatingIp:FloatingIp":
            out["address"] = placeholder("floating IP", name)
        elif typ == "openstack:networking/network:Network":
            out.setdefault("mtu", 1450)
        elif typ == "openstack:networking/port:Port":
            out["allFixedIps"] = [placeholder("fixed IP", name)]
        elif typ == "openstack:compute/instance:Instance":
            out["accessIpV4"] = placeholder("fixed IP", name)
        elif typ == "openstack:loadbalancer/loadBalancer:LoadBalancer":
            out["vipAddress"] = placeholder("VIP", name)
            out["vipPortId"] = placeholder("VIP port", name)
        elif typ == "tls:index/privateKey:PrivateKey":
            out["privateKeyOpenssh"] = placeholder("OpenSSH private key", name)
            out["privateKeyPem"] = placeholder("PEM private key", name)
            # Deterministic across processes (str hash() is salted per process).
            digest = hashlib.sha256(name.encode()).hexdigest()[:24]
            out["publicKeyOpenssh"] = f"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5{digest} {name}"
        elif typ == "openstack:identity/applicationCredential:ApplicationCredential":
            # Keystone generates the secret; the provider marks it Sensitive (a secret output).
            out["secret"] = placeholder("application credential secret", name)
            out["projectId"] = placeholder("id", "project")
        elif typ == "command:remote:Command":
            creds = FAKE_JOIN_CREDENTIALS.replace("0123456789abcdef", "fedcba9876543210") \
                if name in self.fresh else FAKE_JOIN_CREDENTIALS  # a re-run mints a new token
            out["stdout"] = (FAKE_KUBECONFIG if "kubeconfig" in name
                             else creds if "join-credentials" in name else "")
            out["stderr"] = ""
        if typ in self.overrides:
            out.update(self.overrides[typ](args))
        return placeholder("new id" if name in self.fresh else "id", name), out

    def call(self, args: pmocks.MockCallArgs):
        if args.token == OCTAVIA_PROBE and args.token in self.overrides:  # may raise instead
            return self.overrides[args.token](args)
        result = self._call(args)
        if args.token in self.overrides:  # per-test invoke results, e.g. a flavor without traits
            result.update(self.overrides[args.token](args))
        return result

    def _call(self, args: pmocks.MockCallArgs) -> dict:
        a = args.args
        if args.token == OCTAVIA_PROBE:
            # components/openstack/endpoint.py require_octavia: a cloud with Octavia has no such flavor.
            raise ProviderError("Your query returned no results. Please change your search criteria and try again.")
        if args.token == "pulumi:pulumi:readStackOutputs":
            # components/deployed.py reads the stack's own last outputs (engine builtins.go
            # readStackReference); a fresh stack has none. UNREADABLE: the backend cannot answer.
            if UNREADABLE in self.deployed:
                raise ProviderError("unable to read the stack's outputs (backend unreachable)")
            return {"name": a.get("name"), "outputs": dict(self.deployed), "secretOutputNames": []}
        if args.token == "openstack:networking/getNetwork:getNetwork":
            return {"id": placeholder("id", f"network {a.get('name')}"), "name": a.get("name"), "mtu": 1500}
        if args.token == "openstack:images/getImage:getImage":
            return {"id": placeholder("id", f"image {a.get('name')}"), "name": a.get("name")}
        if args.token == "openstack:compute/getFlavor:getFlavor":
            flavor_id = placeholder("id", f"flavor {a.get('name')}")
            return {"id": flavor_id, "flavorId": flavor_id,
                    "name": a.get("name"), "vcpus": 4, "ram": 8192, "disk": 40,
                    "extraSpecs": {"trait:HW_CPU_X86_VMX": "required"}}
        if args.token == "openstack:identity/getAuthScope:getAuthScope":
            # components/openstack/credentials.py: the login's region and service catalog.
            return {"id": a.get("name"), "name": a.get("name"), "region": "RegionOne",
                    "serviceCatalogs": [
                        {"id": "c1", "name": "keystone", "type": "identity", "endpoints": [
                            {"id": "e1", "interface": "internal", "region": "RegionOne", "regionId": "RegionOne",
                             "url": "http://10.0.0.5:5000"},
                            {"id": "e2", "interface": "public", "region": "RegionOne", "regionId": "RegionOne",
                             "url": "https://keystone.example.test:5000"}]},
                        {"id": "c2", "name": "nova", "type": "compute", "endpoints": [
                            {"id": "e3", "interface": "public", "region": "RegionOne", "regionId": "RegionOne",
                             "url": "https://nova.example.test:8774/v2.1"}]}]}
        if args.token == "tls:index/getPublicKey:getPublicKey":
            return {"algorithm": "ED25519", "id": placeholder("id", "public key"),
                    "publicKeyOpenssh": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5supplied katak8s-supplied-key\n"}
        return {}


class RecordingMonitor(pmocks.MockMonitor):
    """MockMonitor that also keeps what a real engine would see: parents, dependencies,
    options and inputs with secret markers."""

    def __init__(self, mocks: pulumi.runtime.Mocks):
        super().__init__(mocks)
        self.registrations: list[Registration] = []

    def RegisterResource(self, request):  # noqa: N802 (gRPC method name)
        response = super().RegisterResource(request)
        if request.type == "pulumi:pulumi:Stack":
            return response
        urn = response.urn
        state = self.resources.get(urn)
        self.registrations.append(Registration(
            urn=urn, type=request.type, name=request.name, parent=request.parent,
            custom=bool(request.custom), inputs=_keep_secrets(request.object),
            provider=request.provider, dependencies=list(request.dependencies),
            property_dependencies={k: list(v.urns) for k, v in request.propertyDependencies.items()},
            delete_before_replace=bool(request.deleteBeforeReplace),
            deleted_with=request.deletedWith, replace_with=list(request.replace_with),
            additional_secret_outputs=list(request.additionalSecretOutputs),
            replace_on_changes=list(request.replaceOnChanges),
            ignore_changes=list(request.ignoreChanges), protect=bool(request.protect),
            retain_on_delete=bool(request.retainOnDelete),
            outputs=dict(state.state) if state else {},
        ))
        return response


def _keep_secrets(struct: Any) -> dict[str, Any]:
    """The inputs as the engine receives them: reading the protobuf Struct directly keeps
    the secret markers (and unknowns as the engine's sentinel string)."""
    return json_format.MessageToDict(struct) if struct is not None else {}


class _LogCapture(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[tuple[str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append((record.levelname.lower(), record.getMessage()))


def run_program(config: Mapping[str, Any] | None = None, *, stack: str = "dev",
                preview: bool = False, base: bool = True,
                overrides: Mapping[str, Callable] | None = None,
                fn: Callable[[], Any] | None = None, record: bool = True,
                deployed: Graph | Mapping[str, Any] | None = None, fresh: Collection[str] = ()) -> Graph:
    """Evaluate __main__.py with `config` (keys without the `katak8s:` prefix; lists as
    Python lists) and return its graph. Raises what the program raises (ConfigError
    for bad input), after the runtime has settled.

    `fn`, when given, runs instead of __main__.py under the same mocks and config: unit
    tests of one component use it, e.g. `run_program(fn=lambda: Thing("t", load_config()))`.
    `record=False` skips recording (the graph is then empty): the benchmark times the
    program and the SDK alone with it, without this harness's bookkeeping.
    `deployed` is the stack as its last `pulumi up` left it (a Graph, or its outputs): the
    program reads those outputs at preview to refuse changes a live cluster can't take.
    `fresh` names resources whose outputs are new (tests/engine_model.py simulate).
    """
    values = {**(BASE_CONFIG if base else {}), **(config or {})}
    if isinstance(deployed, Graph):
        deployed = {k: e.value for k, e in deployed.exports.items()}
    mocks = KatakMocks(overrides, deployed, fresh)
    monitor = RecordingMonitor(mocks) if record else pmocks.MockMonitor(mocks)
    logger = logging.getLogger(f"katak8s-mock-{id(monitor)}")
    capture = _LogCapture()
    logger.addHandler(capture)
    logger.propagate = False
    settings.set_root_resource(None)
    pmocks.set_mocks(mocks, project=PROJECT, stack=stack, preview=preview, logger=logger, monitor=monitor)
    raw = {f"{PROJECT}:{k}": v if isinstance(v, str) else json.dumps(v) for k, v in values.items()}
    pulumi.runtime.set_all_config(raw, secret_keys=[f"{PROJECT}:sshPrivateKey"])
    settings.SETTINGS.rpc_manager.clear()
    settings.SETTINGS.outputs.clear()

    def program() -> None:
        cwd = os.getcwd()
        if str(ROOT) not in sys.path:
            sys.path.insert(0, str(ROOT))
        os.chdir(ROOT)
        try:
            if fn is not None:
                fn()
            else:
                runpy.run_path(str(ROOT / "__main__.py"), run_name="__pulumi_program__")
        finally:
            os.chdir(cwd)

    error: BaseException | None = None
    exports: dict[str, Export] = {}
    try:
        _sync_await(run_pulumi_func(program))
        exports = _resolve_exports(settings.get_root_resource())
    except Exception as exc:  # noqa: BLE001 handed to the caller with the partial graph
        error = exc
    finally:
        logger.removeHandler(capture)
    graph = Graph(getattr(monitor, "registrations", []), capture.records, exports)
    if error is not None:
        error.graph = graph  # type: ignore[attr-defined]  # what was declared before the failure
        raise error
    return graph


@dataclass(frozen=True)
class Export:
    value: Any
    secret: bool
    known: bool


def _resolve_exports(root: Any) -> dict[str, Export]:
    out: dict[str, Export] = {}
    for key, value in (getattr(root, "outputs", None) or {}).items():
        o = pulumi.Output.from_input(value)
        out[key] = Export(_sync_await(o.future(with_unknowns=True)), _sync_await(o.is_secret()),
                          _sync_await(o.is_known()))
    return out
