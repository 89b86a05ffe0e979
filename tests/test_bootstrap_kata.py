"""30-kata.sh, run for real in the stub sandbox with .tar.zst archives built by real zstd."""

from __future__ import annotations

import dataclasses
import hashlib
import tomllib

import pytest
from sandbox import Sandbox
from test_bootstrap_cases import RUNTIMES, UBUNTUS, bundle, cfg_for, fake_kata_archives, run_twice, spec, tar_zst

from components import versions as v
from components.nodes import phase

VERSION = v.DEFAULT_KATA_VERSION
BASE = f"{v.KATA_RELEASE_URL}/{VERSION}"
STATIC = f"{BASE}/kata-static-{VERSION}-amd64.tar.zst"
TOOLS = f"{BASE}/kata-tools-static-{VERSION}-amd64.tar.zst"
QEMU_CONFIG = f"{v.KATA_PREFIX}/{v.HYPERVISORS['qemu'].config_path}"
CRIO_REPOS = (v.CRIO_APT_REPO.format(minor="1.36"), v.KUBERNETES_APT_REPO.format(minor="1.36"))


@pytest.fixture(scope="module")
def archives():
    return fake_kata_archives()


@pytest.fixture
def pinned(archives, monkeypatch):
    """kata-static pinned through the stack (kataSha256), kata-tools through versions.py."""
    static, tools = archives
    monkeypatch.setitem(v.KATA_TOOLS_SHA256, VERSION, hashlib.sha256(tools).hexdigest())
    return {"kataSha256": hashlib.sha256(static).hexdigest()}


def kata_sandbox(tmp_path, archives, ubuntu="24.04", runtime="containerd") -> Sandbox:
    sb = Sandbox(tmp_path, ubuntu=ubuntu)
    sb.serve(STATIC, archives[0])
    sb.serve(TOOLS, archives[1])
    if runtime == "crio":
        # The node as the real runtime phase leaves it: CRI-O started (and validated its
        # handlers) while /opt/kata did not exist yet.
        for repo in CRIO_REPOS:
            sb.serve(repo + "Release.key", "-----BEGIN PGP PUBLIC KEY BLOCK-----\n")
        runtime_phase = sb.run_bundle(bundle(cfg_for(containerRuntime="crio"), "runtime"))
        assert runtime_phase.ok, runtime_phase
    else:
        sb.unit("containerd")
    return sb


@pytest.mark.parametrize("ubuntu", UBUNTUS)
@pytest.mark.parametrize("runtime", RUNTIMES)
def test_kata_installs_verifies_checks_and_boots_a_real_sandbox(tmp_path, archives, pinned, golden,
                                                                ubuntu, runtime):
    sb = kata_sandbox(tmp_path, archives, ubuntu, runtime)
    cfg = cfg_for(containerRuntime=runtime, **pinned)
    first, second = run_twice(sb, bundle(cfg, "kata"))
    assert first.called("apt-get", "*install zstd")
    assert [c.args.split()[-1] for c in first.called("curl")] == [STATIC, TOOLS]
    assert sb.path(v.KATA_SHIM_PATH).is_file() and sb.path(QEMU_CONFIG).is_file()
    assert sb.read(f"{v.KATA_PREFIX}/.katak8s-release").startswith(VERSION + " ")
    assert sb.path("usr/local/bin/containerd-shim-kata-v2").readlink().as_posix() == v.KATA_SHIM_PATH
    dropin = f"{v.KATA_PREFIX}/share/defaults/kata-containers/runtime-rs/config.d/50-katak8s-nested.toml"
    assert sb.exists(dropin)  # its content: test_kata_dropin_sizes_crio_vms_and_keeps_clh_guests_from_nesting
    assert first.called("kata-ctl", "check no-network-checks")
    if runtime == "containerd":
        run = first.called("ctr", "*run*")
        assert len(run) == 1 and "--runtime io.containerd.kata.v2" in run[0].args
        assert f"--runtime-config-path {QEMU_CONFIG}" in run[0].args and run[0].argv[-2:] == ("uname", "-r")
    else:
        # CRI-O dropped the handler at its start (no shim yet): a reload registers it.
        assert [c.args for c in first.called("systemctl")] == ["reload crio"]
        runp = first.called("crictl", "*runp*")
        assert len(runp) == 1 and f"--runtime {v.KATA_HANDLER}" in runp[0].args
        assert "--timeout 300s" in runp[0].args, "crictl's 2 s default cannot wait for a VM boot"
        assert first.called("crictl", "*rmp -f*"), "the smoke pod is removed"
        assert not sb.exists("etc/cni/net.d/00-katak8s-smoke.conflist"), "the lent CNI config is removed"
    assert "guest kernel 6.12.28-kata, host kernel 6.8.0-45-generic" in first.stderr
    # Second run: no download, no sandbox, only read-only checks.
    assert [c.line for c in second.calls] == (["crio status config"] if runtime == "crio" else []) + [
        "kata-ctl check no-network-checks"]
    assert not list(sb.path("opt").glob(".katak8s-kata.*")), "the work directory is removed"


def test_kata_fails_when_the_sandbox_reports_the_host_kernel(tmp_path, archives, pinned):
    sb = kata_sandbox(tmp_path, archives)
    sb.fact("guest_kernel", "6.8.0-45-generic")
    res = sb.run_bundle(bundle(cfg_for(**pinned), "kata"))
    assert res.rc == 1 and "the host's own (6.8.0-45-generic): it did not run in a VM" in res.stderr, res


def test_kata_crio_cleans_up_after_a_failed_container(tmp_path, archives, pinned):
    sb = kata_sandbox(tmp_path, archives, runtime="crio")
    sb.stub("crictl", "*create*", exit=1, stderr="create failed\n")
    res = sb.run_bundle(bundle(cfg_for(containerRuntime="crio", **pinned), "kata"))
    assert res.rc == 1 and "could not create the smoke container" in res.stderr
    assert res.called("crictl", "*stopp*") and res.called("crictl", "*rmp -f*")
    assert not sb.exists("etc/cni/net.d/00-katak8s-smoke.conflist")


def test_kata_refuses_a_checksum_mismatch(tmp_path, archives, pinned):
    sb = kata_sandbox(tmp_path, archives)
    res = sb.run_bundle(bundle(cfg_for(kataSha256="0" * 64), "kata"))
    assert res.rc == 1 and "does not match the pin " + "0" * 64 in res.stderr, res
    assert not sb.exists(v.KATA_PREFIX), "nothing unverified is unpacked"


def test_kata_without_a_pin_stops_with_the_fix(tmp_path, archives):
    # Config validation refuses an unpinned version first (tests/test_config.py); the
    # script refuses on its own too, so no bundle can ever install unverified bits.
    s = spec(cfg_for(), "kata")
    unpinned = phase.render_program(s.name, s.script, dataclasses.replace(s.params, kata_static_sha256=""))
    sb = kata_sandbox(tmp_path, archives)
    res = sb.run_bundle(unpinned)
    assert res.rc == 1 and "publishes no checksum file" in res.stderr
    assert "pulumi config set katak8s:kataSha256" in res.stderr and res.called("curl") == []


def test_kata_tools_unpinned_skips_kata_ctl_but_still_boots(tmp_path, archives, pinned, monkeypatch):
    monkeypatch.setitem(v.KATA_TOOLS_SHA256, VERSION, None)
    sb = kata_sandbox(tmp_path, archives)
    res = sb.run_bundle(bundle(cfg_for(**pinned), "kata"))
    assert res.ok, res
    assert [c.args.split()[-1] for c in res.called("curl")] == [STATIC]
    assert res.called("kata-ctl") == [] and "'kata-ctl check' is skipped" in res.stderr
    assert res.called("ctr", "*run*")


def installed_then_released(tmp_path, archives, pinned, monkeypatch) -> tuple[Sandbox, str]:
    """A node with Kata VERSION installed, and the next release (4.1.1) published and pinned."""
    sb = kata_sandbox(tmp_path, archives)
    assert sb.run_bundle(bundle(cfg_for(**pinned), "kata")).ok
    new = "4.1.1"
    for asset, data in zip(("kata-static", "kata-tools-static"), archives, strict=False):
        sb.serve(f"{v.KATA_RELEASE_URL}/{new}/{asset}-{new}-amd64.tar.zst", data)
    monkeypatch.setitem(v.KATA_TOOLS_SHA256, new, hashlib.sha256(archives[1]).hexdigest())
    return sb, new


def test_kata_version_change_reinstalls_and_reruns_the_sandbox(tmp_path, archives, pinned, monkeypatch):
    sb, new = installed_then_released(tmp_path, archives, pinned, monkeypatch)
    res = sb.run_bundle(bundle(cfg_for(kataVersion=new, **pinned), "kata"))
    assert res.ok, res
    assert len(res.called("curl")) == 2 and len(res.called("ctr", "*run*")) == 1
    assert sb.read(f"{v.KATA_PREFIX}/.katak8s-release").startswith(new + " ")
    assert not sb.exists(f"{v.KATA_PREFIX}.katak8s-old")


def test_kata_downloads_and_stages_beside_opt_kata_not_in_tmp(tmp_path, archives, pinned):
    """/tmp is a tmpfs of half the RAM since Ubuntu 24.10: the payload must not land there."""
    sb = kata_sandbox(tmp_path, archives, ubuntu="26.04")
    res = sb.run_bundle(bundle(cfg_for(**pinned), "kata"))
    assert res.ok, res
    for call in res.called("curl"):
        out = call.argv[call.argv.index("-o") + 1]
        assert out.startswith(str(sb.path("opt")) + "/.katak8s-kata-downloads/"), out
    # installed: no staging directory and no archive is left behind
    assert not list((tmp_path / "tmp").glob("*")) and not list(sb.path("opt").glob(".katak8s-kata*"))


def test_kata_download_resumes_a_partial_archive_and_cuts_a_stalled_transfer(tmp_path, archives, pinned):
    """review-node F6: what a failed run received is kept and resumed, not fetched again."""
    sb = kata_sandbox(tmp_path, archives)
    partial = f"opt/.katak8s-kata-downloads/{VERSION}/kata-static-{VERSION}-amd64.tar.zst"
    sb.write(partial, "")
    sb.path(partial).write_bytes(archives[0][: len(archives[0]) // 3])  # a run cut off at a third
    res = sb.run_bundle(bundle(cfg_for(**pinned), "kata"))
    assert res.ok, res
    (static,) = res.called("curl", "*kata-static*")
    assert "-C -" in static.args and "--speed-limit" in static.args and "--max-time" not in static.args
    assert sb.read(f"{v.KATA_PREFIX}/.katak8s-release").startswith(VERSION + " ")


def test_kata_deletes_an_archive_that_does_not_match_its_pin(tmp_path, archives, pinned):
    sb = kata_sandbox(tmp_path, archives)
    partial = f"opt/.katak8s-kata-downloads/{VERSION}/kata-static-{VERSION}-amd64.tar.zst"
    sb.write(partial, "garbage from another mirror")  # resumed onto: the result cannot match
    res = sb.run_bundle(bundle(cfg_for(**pinned), "kata"))
    assert res.rc == 1 and "downloads it afresh" in res.stderr and not sb.exists(partial)
    assert sb.run_bundle(bundle(cfg_for(**pinned), "kata")).ok  # and the next run does


def test_kata_drops_the_partial_download_of_another_release(tmp_path, archives, pinned):
    sb = kata_sandbox(tmp_path, archives)
    sb.write("opt/.katak8s-kata-downloads/4.0.9/kata-static-4.0.9-amd64.tar.zst", "old")
    assert sb.run_bundle(bundle(cfg_for(**pinned), "kata")).ok
    assert not sb.exists("opt/.katak8s-kata-downloads")


# ctr as containerd answers it: a container whose task exists cannot be deleted; `tasks rm
# -f` kills and deletes the task. The smoke `run` creates both, then its VM never answers.
CTR_STATE = (
    'id=""; for a in "$@"; do [[ $a == katak8s-smoke-* ]] && id=$a; done; mkdir -p "$STATE/ctr"\n')


def test_kata_containerd_failed_smoke_leaves_no_container_or_vm(tmp_path, archives, pinned):
    sb = kata_sandbox(tmp_path, archives)
    (tmp_path / "state" / "ctr").mkdir()
    for kind in "ct":  # a killed earlier run's container and task
        (tmp_path / "state" / "ctr" / f"{kind}-katak8s-smoke-1").touch()
    sb.stub("ctr", "*run *", run=CTR_STATE + 'touch "$STATE/ctr/c-$id" "$STATE/ctr/t-$id"\n'
            'echo "ctr: failed to create shim task: context deadline exceeded" >&2; exit 1')
    sb.stub("ctr", "*containers ls -q*", run='ls "$STATE/ctr" | sed -n "s/^c-//p"')
    sb.stub("ctr", "*tasks rm -f *", run=CTR_STATE + 'rm -f "$STATE/ctr/t-$id"')
    sb.stub("ctr", "*containers rm *", run=CTR_STATE + '[[ -e "$STATE/ctr/t-$id" ]] && {\n'
            '  echo "ctr: cannot delete running task $id: failed precondition" >&2; exit 1; }\n'
            'rm -f "$STATE/ctr/c-$id"')
    res = sb.run_bundle(bundle(cfg_for(**pinned), "kata"))
    assert res.rc == 1 and "ctr could not run a Kata container" in res.stderr, res
    assert list((tmp_path / "state" / "ctr").iterdir()) == [], "a leftover container/task (and VM)"
    assert res.called("timeout", "60 ctr -n katak8s tasks rm -f katak8s-smoke-*"), "bounded cleanup"


def test_kata_crio_removes_a_pod_whose_runp_timed_out(tmp_path, archives, pinned):
    """crictl gave up (timeout) but CRI-O went on and created the sandbox: no ID came back."""
    sb = kata_sandbox(tmp_path, archives, runtime="crio")
    pods = tmp_path / "state" / "pods"
    sb.stub("crictl", "*runp*", run=f'mkdir -p {pods} && touch {pods}/pod1; exit 124')
    sb.stub("crictl", "*pods --namespace ^katak8s$ -q*", run=f'ls {pods} 2>/dev/null; true')
    sb.stub("crictl", "*rmp -f *", run=f'rm -f {pods}/"${{@: -1}}"')
    res = sb.run_bundle(bundle(cfg_for(containerRuntime="crio", **pinned), "kata"))
    assert res.rc == 1 and "could not start a pod with runtime handler" in res.stderr, res
    assert res.called("crictl", "*stopp pod1") and list(pods.iterdir()) == [], "the VM is left running"


def test_kata_crio_lends_a_network_beside_the_packages_disabled_bridge(tmp_path, archives, pinned):
    """The cri-o package ships /etc/cni/net.d/10-crio-bridge.conflist.disabled, which libcni
    ignores: CRI-O still has no network for the smoke pod, so one is lent."""
    sb = kata_sandbox(tmp_path, archives, runtime="crio")
    bridge = "etc/cni/net.d/10-crio-bridge.conflist.disabled"
    sb.write(bridge, '{"cniVersion": "1.0.0", "name": "crio", "plugins": [{"type": "bridge"}]}\n')
    res = sb.run_bundle(bundle(cfg_for(containerRuntime="crio", **pinned), "kata"))
    assert res.ok and res.called("crictl", "*runp*"), res
    assert sb.exists(bridge) and not sb.exists("etc/cni/net.d/00-katak8s-smoke.conflist")


def test_kata_crio_restarts_an_old_crio_whose_reload_keeps_the_handler_out(tmp_path, archives, pinned):
    sb = kata_sandbox(tmp_path, archives, runtime="crio")
    sb.stub("systemctl", "reload crio")  # a CRI-O without ReloadRuntimes: SIGHUP does not re-validate
    res = sb.run_bundle(bundle(cfg_for(containerRuntime="crio", **pinned), "kata"))
    assert res.ok, res
    assert [c.args for c in res.changing() if c.name == "systemctl"] == ["reload crio", "restart crio"]


def test_kata_crio_never_restarts_under_running_pods(tmp_path, archives, pinned):
    sb = kata_sandbox(tmp_path, archives, runtime="crio")
    sb.stub("systemctl", "reload crio")
    sb.unit("kubelet")
    sb.stub("crictl", "*pods -q*", stdout="0123abcd\n")
    res = sb.run_bundle(bundle(cfg_for(containerRuntime="crio", **pinned), "kata"))
    assert res.rc == 1 and "drain the node" in res.stderr, res
    assert not res.called("systemctl", "restart*") and not res.called("crictl", "*runp*")


def test_kata_tools_archive_without_kata_ctl_is_refused(tmp_path, archives, monkeypatch):
    tools = tar_zst({"opt/kata/bin/genpolicy": ("#!/bin/sh\n", 0o755)})
    monkeypatch.setitem(v.KATA_TOOLS_SHA256, VERSION, hashlib.sha256(tools).hexdigest())
    sb = kata_sandbox(tmp_path, (archives[0], tools))
    res = sb.run_bundle(bundle(cfg_for(kataSha256=hashlib.sha256(archives[0]).hexdigest()), "kata"))
    assert res.rc == 1 and "lacks /opt/kata/bin/kata-ctl" in res.stderr, res
    assert not sb.exists(v.KATA_PREFIX), "nothing is installed from an archive that does not fit"


def test_every_image_katak8s_names_comes_from_registry_k8s_io():
    """No anonymous Docker Hub pulls: every node behind the router's one SNAT address would
    share its rate limit at bootstrap (review-k8s K12). Pinned tags, never :latest."""
    images = [v.KATA_SMOKE_IMAGE, v.AGNHOST_IMAGE, *v.PAUSE_IMAGES.values()]
    for image in images:
        assert image.startswith("registry.k8s.io/"), image
        assert ":" in image.rsplit("/", 1)[1] and not image.endswith(":latest"), image


@pytest.mark.parametrize("pods,allow,swapped", [
    ('{"items": [{"id": "p1", "runtimeHandler": "kata"}]}', "false", False),  # the F14 case
    ('{"items": [{"id": "p1", "runtimeHandler": "kata"}]}', "true", True),    # the operator said so
    ('{"items": [{"id": "p1", "runtimeHandler": ""}]}', "false", True),       # runc pods only
    ('{"items": []}', "false", True),                                          # drained
    (None, "false", False),                          # crictl does not answer: counts as running
])
def test_a_new_kata_never_replaces_opt_kata_under_running_kata_pods(tmp_path, archives, pinned, monkeypatch,
                                                                     pods, allow, swapped):
    """review-node F14: the runtime restart's gate (drain, or allowRuntimeRestart) guards the swap."""
    sb, new = installed_then_released(tmp_path, archives, pinned, monkeypatch)
    sb.unit("kubelet")
    if pods is None:
        sb.stub("crictl", "*pods --state ready -o json*", exit=1, stderr="context deadline exceeded\n")
    else:
        sb.stub("crictl", "*pods --state ready -o json*", stdout=pods)
    res = sb.run_bundle(bundle(cfg_for(kataVersion=new, allowRuntimeRestart=allow, **pinned), "kata"))
    release = sb.read(f"{v.KATA_PREFIX}/.katak8s-release")
    if swapped:
        assert res.ok and release.startswith(new + " "), res
    else:
        assert res.rc == 1 and "drain it first" in res.stderr and "allowRuntimeRestart" in res.stderr, res
        assert release.startswith(VERSION + " ") and res.called("curl") == []  # refused before downloading



@pytest.mark.parametrize("runtime,hypervisor", [("containerd", "qemu"), ("containerd", "clh"), ("crio", "qemu"),
                                                ("crio", "clh")])
def test_kata_dropin_sizes_crio_vms_and_keeps_clh_guests_from_nesting(tmp_path, archives, pinned, golden,
                                                                      runtime, hypervisor):
    """review-node F3 (CRI-O: one fixed VM size, the RuntimeClass overhead's) and F5 (clh: no
    nested virtualization inside L2 guests); the drop-in is TOML runtime-rs can read."""
    sb = kata_sandbox(tmp_path, archives, runtime=runtime)
    cfg = cfg_for(containerRuntime=runtime, kataHypervisor=hypervisor, **pinned)
    assert sb.run_bundle(bundle(cfg, "kata")).ok
    config = v.HYPERVISORS[hypervisor].config_path
    text = sb.read(f"{v.KATA_PREFIX}/{config.rsplit('/', 1)[0]}/config.d/50-katak8s-nested.toml")
    golden(f"bootstrap-kata-dropin-{hypervisor}-{runtime}.toml", text)
    dropin = tomllib.loads(text)  # TOML, as runtime-rs's drop_in.rs reads it
    assert dropin["agent"]["kata"]["reconnect_timeout_ms"] > 3000
    section = dropin.get("hypervisor", {}).get(hypervisor, {})
    assert section.get("disable_nested_virtualization") is (True if hypervisor == "clh" else None)
    if runtime == "crio":
        assert (section["default_vcpus"], section["default_memory"]) == (v.CRIO_KATA_VM.vcpus,
                                                                          v.CRIO_KATA_VM.memory_mib)
    else:  # containerd: the pod's limits size each VM
        assert "default_vcpus" not in section and "default_memory" not in section



@pytest.mark.parametrize("tools_pinned", [True, False])
def test_a_failed_sandbox_names_kata_ctl_only_where_it_is_installed(tmp_path, archives, pinned, monkeypatch,
                                                                   tools_pinned):
    """review-node F13: never send the operator to a kata-ctl that is not there."""
    if not tools_pinned:
        monkeypatch.setitem(v.KATA_TOOLS_SHA256, VERSION, "")
    sb = kata_sandbox(tmp_path, archives)
    sb.stub("ctr", "*run*", exit=1, stderr="ctr: failed to create shim task\n")
    res = sb.run_bundle(bundle(cfg_for(**pinned), "kata"))
    (error,) = [line for line in res.stderr.splitlines() if " ERROR " in line]
    assert res.rc == 1 and "ctr could not run a Kata container" in error
    assert ("kata-ctl check" in error) == tools_pinned and ("/dev/kvm" in error) != tools_pinned, error



def test_kata_download_starts_from_zero_when_the_server_refuses_to_resume(tmp_path, archives, pinned):
    """curl 33 (no range support) or an HTTP 416 would fail every resume the same way."""
    sb = kata_sandbox(tmp_path, archives)
    partial = f"opt/.katak8s-kata-downloads/{VERSION}/kata-static-{VERSION}-amd64.tar.zst"
    sb.write(partial, "x")
    sb.stub("curl", "*-C -*kata-static*", exit=33,
            stderr="curl: (33) HTTP server doesn't seem to support byte ranges\n")
    res = sb.run_bundle(bundle(cfg_for(**pinned), "kata"))
    assert res.ok, res
    fresh = [c for c in res.called("curl", "*kata-static*") if "-C" not in c.argv]
    assert len(fresh) == 1 and sb.read(f"{v.KATA_PREFIX}/.katak8s-release").startswith(VERSION + " ")


def test_the_smoke_sandbox_waits_while_another_phase_restarts_the_runtime(tmp_path, archives, pinned):
    """The other half of the runtime lock (test_bootstrap_kube_packages): no sandbox starts
    while the kube-packages phase restarts the runtime for kubeadm's pause image."""
    import fcntl
    import threading
    import time as _time

    sb = kata_sandbox(tmp_path, archives)
    lock = sb.path("var/lib/katak8s/runtime.lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    result = {}
    with open(lock, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        worker = threading.Thread(target=lambda: result.setdefault(
            "res", sb.run_bundle(bundle(cfg_for(**pinned), "kata"))))
        worker.start()
        deadline = _time.monotonic() + 30
        while not sb.exists(f"{v.KATA_PREFIX}/.katak8s-release") and _time.monotonic() < deadline:
            _time.sleep(0.2)  # up to the smoke test: downloaded, installed
        _time.sleep(1)
        calls = (sb.base / "calls.log").read_bytes()
        assert worker.is_alive() and b"images\0pull" not in calls and b"\0run\0" not in calls
        fcntl.flock(held, fcntl.LOCK_UN)
    worker.join(120)
    assert result["res"].ok and result["res"].called("ctr", "*run*"), result["res"]
