"""Phase parameters and bundles of the node bootstrap: golden files, hash isolation, the one
runtime handler. Also the helpers the other test_bootstrap_* modules share."""

from __future__ import annotations

import dataclasses
import io
import subprocess
import tarfile

import pytest
from harness import BASE_CONFIG
from sandbox import Sandbox

from components import naming
from components import versions as v
from components.config import parse_config
from components.nodes import bootstrap, phase

UBUNTUS = ("24.04", "26.04")
RUNTIMES = ("containerd", "crio")


def cfg_for(**overrides):
    return parse_config({**BASE_CONFIG, **overrides}, stack="dev")


def spec(cfg, name: str, *, role: str = naming.WORKER, flavor: str = "m1.xlarge") -> bootstrap.PhaseSpec:
    return next(s for s in bootstrap.phase_specs(cfg, role=role, flavor=flavor) if s.name == name)


def bundle(cfg, name: str, **kw) -> str:
    s = spec(cfg, name, **kw)
    return phase.render_program(s.name, s.script, s.params)


def run_twice(sb: Sandbox, text: str):
    """Run a bundle, then again; the second run must change nothing at all."""
    first = sb.run_bundle(text)
    assert first.ok, first
    before = sb.snapshot()
    second = sb.run_bundle(text)
    assert second.ok, second
    assert second.changing() == [], f"second run changed the system:\n{second}"
    assert sb.snapshot() == before, "second run rewrote files"
    return first, second


def tar_zst(files: dict[str, tuple[str, int]]) -> bytes:
    """A .tar.zst (real zstd) of {path: (text, mode)}, members named ./path like Kata's."""
    if subprocess.run(["which", "zstd"], capture_output=True).returncode:
        pytest.skip("zstd is not installed (apt-get install zstd): the kata archives are .tar.zst")
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for path, (text, mode) in sorted(files.items()):
            data = text.encode()
            info = tarfile.TarInfo("./" + path)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    return subprocess.run(["zstd", "-q", "-c"], input=raw.getvalue(), capture_output=True, check=True).stdout


def fake_kata_archives() -> tuple[bytes, bytes]:
    """kata-static / kata-tools-static look-alikes in the 4.1 layout (./opt/kata/...),
    compressed by the real zstd; kata-ctl inside is a sandbox stub that logs its calls."""
    static = {
        "opt/kata/runtime-rs/bin/containerd-shim-kata-v2": ("#!/bin/sh\nexit 0\n", 0o755),
        "opt/kata/share/kata-containers/vmlinux.container": ("kernel", 0o644),
    }
    for hv in v.HYPERVISORS.values():
        static[f"opt/kata/{hv.config_path}"] = (f"[hypervisor.{hv.name}]\n", 0o644)
    tools = {"opt/kata/bin/kata-ctl": (Sandbox.stub_program(), 0o755)}
    return tar_zst(static), tar_zst(tools)


# --- golden parameter files and bundles ---------------------------------------------------
@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("role", (naming.CONTROL_PLANE, naming.WORKER))
def test_rendered_env_files_match_golden(golden, runtime, role):
    cfg = cfg_for(containerRuntime=runtime)
    short = "cp" if role == naming.CONTROL_PLANE else "worker"
    text = "".join(f"# --- {s.name}: {s.script}\n{phase.render_env(s.params)}"
                   for s in bootstrap.phase_specs(cfg, role=role, flavor="m1.xlarge"))
    golden(f"bootstrap-env-{runtime}-{short}.env", text)


def test_rendered_bundle_matches_golden(golden):
    golden("bootstrap-bundle-kernel.sh", bundle(cfg_for(), "kernel"))


# --- what changes when the stack changes ----------------------------------------------------
def _digests(cfg, role=naming.WORKER, flavor="m1.xlarge") -> dict[str, str]:
    return {s.name: phase.sha256(phase.render_program(s.name, s.script, s.params))
            for s in bootstrap.phase_specs(cfg, role=role, flavor=flavor)}


def test_kata_version_changes_only_the_kata_bundle():
    before = _digests(cfg_for())
    after = _digests(cfg_for(kataVersion="4.1.0", kataSha256="ab" * 32))
    assert {k for k in before if before[k] != after[k]} == {"kata"}


def test_kubernetes_patch_changes_only_kube_packages_bundle():
    before = _digests(cfg_for(kubernetesVersion="1.36"))
    after = _digests(cfg_for(kubernetesVersion="1.36.2"))
    assert {k for k in before if before[k] != after[k]} == {"kube-packages"}


def test_worker_count_and_names_do_not_reach_any_bundle():
    assert _digests(cfg_for(workerCount=2)) == _digests(cfg_for(workerCount=7))
    assert _digests(cfg_for(), flavor="a") != _digests(cfg_for(), flavor="b")  # flavor is named


def test_every_param_is_read_by_its_script():
    """A parameter no script reads would re-run a phase for nothing."""
    for runtime in RUNTIMES:
        for s in bootstrap.phase_specs(cfg_for(containerRuntime=runtime), role=naming.CONTROL_PLANE,
                                       flavor="f"):
            sources = (s.script, phase.LIB, *phase.extra_libs(s.script))
            text = "".join((phase.SCRIPTS_DIR / f).read_text() for f in sources)
            for f in dataclasses.fields(s.params):
                assert "${" + f.name.upper() in text, f"{s.script} never reads {f.name.upper()}"


def test_runtime_handler_is_the_single_source():
    for runtime in RUNTIMES:
        cfg = cfg_for(containerRuntime=runtime)
        assert spec(cfg, "runtime").params.kata_handler == v.KATA_HANDLER
        assert spec(cfg, "kata").params.kata_handler == v.KATA_HANDLER
    crio = spec(cfg_for(containerRuntime="crio"), "runtime")
    assert crio.script == "node/20-crio.sh" and isinstance(crio.params, bootstrap.CrioParams)
    assert spec(cfg_for(), "runtime").script == "node/20-containerd.sh"


def test_pins_and_prepull_follow_config():
    cfg = cfg_for(kataSha256="cd" * 32)
    assert spec(cfg, "kata").params.kata_static_sha256 == "cd" * 32
    default_pin = v.KATA_STATIC_SHA256[v.DEFAULT_KATA_VERSION] or ""
    assert spec(cfg_for(), "kata").params.kata_static_sha256 == default_pin
    assert spec(cfg, "kube-packages", role=naming.CONTROL_PLANE).params.prepull_images is True
    assert spec(cfg, "kube-packages", role=naming.WORKER).params.prepull_images is False
    assert spec(cfg_for(kataHypervisor="clh"), "runtime").params.kata_config_path.endswith(
        "configuration-clh-runtime-rs.toml")
