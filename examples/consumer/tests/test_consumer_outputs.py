"""The consumer example under Pulumi mocks, with the cluster stack mocked as a StackReference.

Two sources of stack outputs: the documented shapes (README "Outputs", issue #5), and
what the katak8s program really exports under the project's own mock harness. A renamed
or reshaped output on either side fails here, not in somebody's `pulumi up`.
"""

from __future__ import annotations

import gc
import logging
import re
import runpy
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import kubernetes_validate
import pulumi
import pytest
import yaml
from pulumi.runtime import mocks as pmocks
from pulumi.runtime import settings
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

CONSUMER = Path(__file__).resolve().parent.parent
ROOT = CONSUMER.parent.parent
PROJECT = "katak8s-consumer"
STACK_REF = "pulumi:pulumi:StackReference"
SIG, SECRET = "4dabf18193072939515e22adb298388d", "1b47061264138c4ac30d75fd1eb44270"
sys.path.insert(0, str(CONSUMER))
import katak8s_outputs as contract  # noqa: E402

KUBECONFIG = """apiVersion: v1
kind: Config
clusters:
- cluster: {certificate-authority-data: Q0EK, server: 'https://203.0.113.10:6443'}
  name: dev
contexts:
- context: {cluster: dev, user: kubernetes-admin}
  name: kubernetes-admin@dev
current-context: kubernetes-admin@dev
users:
- name: kubernetes-admin
  user: {client-certificate-data: Q0VSVAo=, client-key-data: S0VZCg==}
"""
# Every output of the contract with a documented example value; secrets as the cluster
# stack marks them.
DOCUMENTED: dict[str, Any] = {
    "kubeconfig": KUBECONFIG,
    "apiEndpoint": "https://203.0.113.10:6443",
    "clusterName": "dev",
    "kubernetesVersion": "1.36.4",
    "kataVersion": "4.1.0",
    "containerRuntime": "containerd",
    "runtimeClassNames": ["kata", "kata-qemu"],
    "controlPlanePrivateIps": ["10.42.0.10"],
    "workerPrivateIps": ["10.42.0.11", "10.42.0.12"],
    "sshUser": "ubuntu",
    "sshJumpHost": "203.0.113.10",
    "sshPrivateKey": "-----BEGIN OPENSSH PRIVATE KEY-----\n...\n-----END OPENSSH PRIVATE KEY-----\n",
    "sshPublicKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample katak8s\n",
    "networkId": "5f1c-net",
    "subnetId": "9a2e-subnet",
    "securityGroupIds": {"control-plane": "sg-cp", "worker": "sg-worker"},
    "podCidr": "192.168.0.0/16",
    "serviceCidr": "10.96.0.0/12",
    "jumpHost": "dedicated",
    "cloudProvider": True,
    "cloudClusterName": "dev-3f9c2a1b",
    "defaultStorageClass": "cinder",
    "kubeletServingCertificates": True,
}
DOCUMENTED_SECRETS = ["kubeconfig", "sshPrivateKey"]


class ProgramError(Exception):
    """The consumer program failed; the message carries the SDK's error."""


class ConsumerMocks(pulumi.runtime.Mocks):
    def __init__(self, outputs: dict[str, Any], secret_names: list[str]):
        self.outputs, self.secret_names = outputs, secret_names
        self.created: list[pmocks.MockResourceArgs] = []

    def new_resource(self, args):
        self.created.append(args)
        out = dict(args.inputs)
        if args.typ == STACK_REF:  # pulumi-sdk.md §4.3
            out.update(outputs=self.outputs, secretOutputNames=self.secret_names)
        return f"{args.name}-id", out

    def call(self, args):
        return {}


def run_consumer(outputs: dict[str, Any], secret_names: list[str] | None = None,
                 config: dict[str, str] | None = None) -> tuple[list[pmocks.MockResourceArgs], dict]:
    """Run examples/consumer as the language host would (its directory on sys.path)."""
    mocks = ConsumerMocks(outputs, DOCUMENTED_SECRETS if secret_names is None else secret_names)
    settings.set_root_resource(None)
    pmocks.set_mocks(mocks, project=PROJECT, stack="dev", preview=False)
    pulumi.runtime.set_all_config({f"{PROJECT}:{k}": v for k, v in
                                   {"clusterStack": "acme/katak8s/dev", **(config or {})}.items()})
    settings.SETTINGS.rpc_manager.clear()
    settings.SETTINGS.outputs.clear()
    failure = None
    try:
        _sync_await(run_pulumi_func(lambda: runpy.run_path(str(CONSUMER), run_name="__main__")))
    except Exception as exc:  # noqa: BLE001 re-raised flat: the SDK's chained traceback is deep
        failure = f"{type(exc).__name__}: {exc}"
    if failure:
        _drop_orphaned_futures()  # after the except block, which kept them referenced
        raise ProgramError(failure)
    exports = {}
    for key, value in (settings.get_root_resource().outputs or {}).items():
        out = pulumi.Output.from_input(value)
        exports[key] = (_sync_await(out.future()), _sync_await(out.is_secret()))
    return mocks.created, exports


def _drop_orphaned_futures() -> None:
    """A failed program leaves the SDK's other futures failed and unread; collect them now,
    quietly, instead of asyncio printing "Future exception was never retrieved" later."""
    log = logging.getLogger("asyncio")
    disabled, log.disabled = log.disabled, True
    settings.SETTINGS.rpc_manager.clear()
    settings.SETTINGS.outputs.clear()
    settings.set_root_resource(None)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # the never-awaited coroutines
            for _ in range(3):
                gc.collect()
    finally:
        log.disabled = disabled


def one(created, typ: str) -> pmocks.MockResourceArgs:
    found = [a for a in created if a.typ == typ]
    assert len(found) == 1, [a.typ for a in created]
    return found[0]


def test_deploys_a_kata_workload_from_the_documented_outputs():
    created, exports = run_consumer(DOCUMENTED)
    assert one(created, STACK_REF).inputs["name"] == "acme/katak8s/dev"
    provider = one(created, "pulumi:providers:kubernetes")
    kubeconfig = provider.inputs["kubeconfig"]
    assert kubeconfig.get(SIG) == SECRET and kubeconfig["value"] == KUBECONFIG, "kubeconfig lost its secrecy"
    assert provider.inputs["clusterIdentifier"] == "dev"
    deployment = one(created, "kubernetes:apps/v1:Deployment")
    pod = deployment.inputs["spec"]["template"]["spec"]
    assert pod["runtimeClassName"] == "kata"  # runtimeClassNames[0]
    assert all(c["resources"]["limits"].keys() >= {"cpu", "memory"} for c in pod["containers"])
    for typ in ("kubernetes:core/v1:Namespace", "kubernetes:apps/v1:Deployment",
                "kubernetes:core/v1:Service"):
        assert one(created, typ).provider.endswith("$pulumi:providers:kubernetes::katak8s::katak8s-id")
    assert exports["runtimeClassName"] == ("kata", False)


def _supported_patches() -> list[str]:
    sys.path.insert(0, str(ROOT))
    from components import versions

    return sorted(versions.KUBERNETES_PATCHES.values())


@pytest.mark.parametrize("patch", _supported_patches())
def test_objects_are_valid_kubernetes(patch):
    """Strict upstream OpenAPI validation of every object the example declares, for
    every Kubernetes version the cluster project supports."""
    created, _ = run_consumer(DOCUMENTED)
    kinds = {"kubernetes:core/v1:Namespace": ("v1", "Namespace"),
             "kubernetes:apps/v1:Deployment": ("apps/v1", "Deployment"),
             "kubernetes:core/v1:Service": ("v1", "Service")}
    for typ, (api, kind) in kinds.items():
        obj = {"apiVersion": api, "kind": kind, **one(created, typ).inputs}
        obj["metadata"].setdefault("name", one(created, typ).name)
        kubernetes_validate.validate(obj, patch, strict=True)


@pytest.mark.parametrize("name", contract.REQUIRED)
def test_a_missing_output_fails_the_program(name):
    outputs = {k: v for k, v in DOCUMENTED.items() if k != name}
    with pytest.raises(ProgramError, match=f"KeyError: '{name}'"):
        run_consumer(outputs)


@pytest.mark.parametrize("bad", [[], "kata", [""], [3]])
def test_a_malformed_runtime_class_list_fails_clearly(bad):
    with pytest.raises(ProgramError, match="runtimeClassNames output must be a non-empty list"):
        run_consumer({**DOCUMENTED, "runtimeClassNames": bad})


def test_config_defaults_match_pulumi_yaml():
    """Mocks don't apply Pulumi.yaml defaults (§4.5), so the program repeats them; keep equal."""
    declared = yaml.safe_load((CONSUMER / "Pulumi.yaml").read_text())["config"]
    assert "default" not in declared["clusterStack"]  # required: the CLI refuses a stack without it
    created, _ = run_consumer(DOCUMENTED)
    ns = one(created, "kubernetes:core/v1:Namespace").inputs["metadata"]["name"]
    spec = one(created, "kubernetes:apps/v1:Deployment").inputs["spec"]
    assert ns == declared["namespace"]["default"]
    assert spec["replicas"] == declared["replicas"]["default"]
    assert spec["template"]["spec"]["containers"][0]["image"] == declared["image"]["default"]


def test_requirements_pin_the_cluster_projects_versions():
    pins = re.compile(r"^([a-z0-9-]+)==(\S+)$", re.M)
    mine = dict(pins.findall((CONSUMER / "requirements.txt").read_text()))
    project = dict(pins.findall((ROOT / "requirements.txt").read_text()))
    assert mine.keys() == {"pulumi", "pulumi-kubernetes"}
    assert all(project[k] == v for k, v in mine.items()), (mine, project)


def test_pulumi_yaml_matches_pulumis_project_schema():
    schema = ROOT / "tests" / "schemas" / "pulumi-project.schema.json"  # pulumi's project.json, vendored
    checker = Path(sys.executable).with_name("check-jsonschema")
    proc = subprocess.run([str(checker), "--schemafile", str(schema), str(CONSUMER / "Pulumi.yaml")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_names_match_the_outputs_contract():
    """components/outputs.py is where the cluster project names its outputs."""
    sys.path.insert(0, str(ROOT))
    from components import outputs

    assert set(contract.REQUIRED) <= set(outputs.OUTPUT_NAMES)
    assert contract.KUBECONFIG in outputs.SECRET_OUTPUTS
    # The documented shapes above cover the whole contract, secrets included.
    assert list(DOCUMENTED) == list(outputs.OUTPUT_NAMES)
    assert set(DOCUMENTED_SECRETS) == set(outputs.SECRET_OUTPUTS)


def test_default_image_is_the_projects_pinned_agnhost():
    """Mirrored, not imported: the example is a separate project with its own venv."""
    sys.path.insert(0, str(ROOT))
    from components import versions

    declared = yaml.safe_load((CONSUMER / "Pulumi.yaml").read_text())["config"]["image"]["default"]
    assert declared == versions.AGNHOST_IMAGE


def _cluster_graph():
    sys.path.insert(0, str(ROOT / "tests"))
    import harness

    try:
        return harness.run_program()
    except (ImportError, NotImplementedError) as exc:  # components still skeletons
        pytest.skip(f"the katak8s program does not evaluate yet: {exc!r}")


def test_the_cluster_stack_exports_what_the_consumer_reads():
    """The names come from the one place that defines them: what the katak8s program
    exports (components/outputs.py), evaluated under the project's mock harness."""
    exports = _cluster_graph().exports
    missing = [n for n in contract.REQUIRED if n not in exports]
    assert not missing, f"katak8s no longer exports {missing}; exports are {sorted(exports)}"
    assert exports[contract.KUBECONFIG].secret and isinstance(exports[contract.KUBECONFIG].value, str)
    contract.default_runtime_class(exports[contract.RUNTIME_CLASS_NAMES].value)
    assert isinstance(exports[contract.CLUSTER_NAME].value, str)
    assert set(DOCUMENTED) <= set(exports), f"documented but not exported: {set(DOCUMENTED) - set(exports)}"
    # ...and the consumer runs against exactly those outputs.
    values = {k: e.value for k, e in exports.items()}
    created, _ = run_consumer(values, [k for k, e in exports.items() if e.secret])
    runtime_class = one(created, "kubernetes:apps/v1:Deployment").inputs["spec"]["template"]["spec"]
    assert runtime_class["runtimeClassName"] == values[contract.RUNTIME_CLASS_NAMES][0]
