"""40-kube-packages.sh, run for real in the stub sandbox."""

from __future__ import annotations

import tomllib

import pytest
from sandbox import Sandbox
from test_bootstrap_cases import RUNTIMES, UBUNTUS, bundle, cfg_for, run_twice

from components import naming
from components import versions as v

REPO = "https://pkgs.k8s.io/core:/stable:/v1.36/deb/"
PACKAGES = ("kubeadm", "kubelet", "kubectl")


def kube_sandbox(tmp_path, ubuntu="24.04") -> Sandbox:
    sb = Sandbox(tmp_path, ubuntu=ubuntu)
    sb.serve(REPO + "Release.key", "-----BEGIN PGP PUBLIC KEY BLOCK-----\n")
    for pkg in PACKAGES:  # newest first, as madison lists them
        sb.package(pkg, "1.36.5-1.1", "1.36.4-1.1", "1.36.3-1.1", repo=f"{REPO} Packages")
    return sb


@pytest.mark.parametrize("ubuntu", UBUNTUS)
@pytest.mark.parametrize("runtime", RUNTIMES)
def test_exact_patch_installed_held_and_idempotent(tmp_path, golden, ubuntu, runtime):
    sb = kube_sandbox(tmp_path, ubuntu)
    cfg = cfg_for(containerRuntime=runtime)
    first, _ = run_twice(sb, bundle(cfg, "kube-packages", role=naming.CONTROL_PLANE))
    # The revision comes from madison (1.36.4-1.1), not the newest candidate (1.36.5).
    install = first.called("apt-get", "*install*")
    assert len(install) == 1 and install[0].argv[-3:] == (
        "kubeadm=1.36.4-1.1", "kubelet=1.36.4-1.1", "kubectl=1.36.4-1.1")
    assert all(sb.installed_version(p) == "1.36.4-1.1" for p in PACKAGES)
    assert sb.held() == sorted(PACKAGES)
    golden("bootstrap-kubernetes.sources", sb.read("etc/apt/sources.list.d/kubernetes.sources"))
    pull = first.called("kubeadm", "config images pull*")
    socket = v.CRI_SOCKETS[runtime]
    assert [c.args for c in pull] == [f"config images pull --kubernetes-version v1.36.4 --cri-socket {socket}"]


def test_workers_do_not_prepull(tmp_path):
    sb = kube_sandbox(tmp_path)
    res = sb.run_bundle(bundle(cfg_for(), "kube-packages", role=naming.WORKER))
    assert res.ok and res.called("kubeadm", "config images pull*") == [], res


def test_missing_patch_names_what_is_available(tmp_path):
    sb = kube_sandbox(tmp_path)
    res = sb.run_bundle(bundle(cfg_for(kubernetesVersion="1.36.9", allowUntestedKubernetesPatch="true"),
                               "kube-packages"))
    assert res.rc == 1 and "kubeadm 1.36.9 is not in" in res.stderr
    assert "1.36.5-1.1 1.36.4-1.1 1.36.3-1.1" in res.stderr and res.called("apt-get", "*install*") == []


def test_unjoined_node_moves_to_the_new_patch(tmp_path):
    sb = kube_sandbox(tmp_path)
    assert sb.run_bundle(bundle(cfg_for(kubernetesVersion="1.36.3"), "kube-packages")).ok
    res = sb.run_bundle(bundle(cfg_for(kubernetesVersion="1.36.4"), "kube-packages"))
    assert res.ok and "--allow-change-held-packages" in res.called("apt-get", "*install*")[0].args
    assert sb.installed_version("kubelet") == "1.36.4-1.1"


def test_a_joined_node_at_an_older_version_is_left_to_the_upgrade_steps(tmp_path):
    """Before in-place upgrades it was refused; now the upgrade steps move it, drained."""
    sb = kube_sandbox(tmp_path)
    for pkg in PACKAGES:
        sb.installed(pkg, "1.36.3-1.1")
    sb.write("etc/kubernetes/kubelet.conf", "apiVersion: v1\n")
    res = sb.run_bundle(bundle(cfg_for(kubernetesVersion="1.36.4", allowUntestedKubernetesPatch=True),
                               "kube-packages"))
    assert res.ok and "the upgrade steps move it to 1.36.4" in res.stderr, res
    assert not res.called("apt-get", "install*") and sb.installed_version("kubeadm") == "1.36.3-1.1"
    for pkg in PACKAGES:
        sb.installed(pkg, "1.37.1-1.1")
    res = sb.run_bundle(bundle(cfg_for(kubernetesVersion="1.36.4"), "kube-packages"))
    assert res.rc == 1 and "newer than the 1.36.4 the stack asks for" in res.stderr, res
    assert not res.called("apt-get", "install*")


def test_apt_update_waits_out_another_update_holding_the_lists_lock(tmp_path):
    """DPkg::Lock::Timeout does not cover the lists lock: the kata phase (zstd) or apt-daily
    may be inside `apt-get update` right then; the retry budget must outlast it (~1 min)."""
    sb = kube_sandbox(tmp_path)
    sb.stub("apt-get", "*update*", exit=100, times=6,
            stderr="E: Could not get lock /var/lib/apt/lists/lock. It is held by process 4242 (apt-get)\n")
    res = sb.run_bundle(bundle(cfg_for(), "kube-packages"))
    assert res.ok, res
    assert len(res.called("apt-get", "*update*")) == 7 and sb.installed_version("kubeadm") == "1.36.4-1.1"


def test_repository_key_tools_are_installed_on_a_minimal_image(tmp_path):
    sb = kube_sandbox(tmp_path)
    sb.uninstall("gpg")  # Ubuntu minimal cloud images ship gpgv, not gpg
    res = sb.run_bundle(bundle(cfg_for(), "kube-packages"))
    assert res.ok, res
    names = [c.name for c in res.calls]
    assert res.called("apt-get", "*install gpg") and names.index("apt-get") < names.index("gpg")


def test_an_unusable_repository_key_stops_before_the_source_is_written(tmp_path):
    sb = kube_sandbox(tmp_path)
    sb.stub("gpg", "*", exit=2, stderr="gpg: no valid OpenPGP data found.\n")
    res = sb.run_bundle(bundle(cfg_for(), "kube-packages"))
    assert res.rc == 1 and "is not a usable OpenPGP key" in res.stderr, res
    assert not sb.exists("etc/apt/sources.list.d/kubernetes.sources") and res.called("apt-get") == []


# --- the pause image comes from the installed kubeadm (review-node F12) ------------------------

from test_bootstrap_runtime import DEFAULT_V3_EMPTY_IMPORTS  # noqa: E402

KUBEADM_IMAGES = ("registry.k8s.io/kube-apiserver:v1.36.4\nregistry.k8s.io/coredns/coredns:v1.14.2\n"
                  "registry.k8s.io/pause:{pause}\nregistry.k8s.io/etcd:3.6.8-0\n")
CONTAINERD_DROPIN = "etc/containerd/conf.d/10-katak8s.toml"


def _node_with_runtime(tmp_path, runtime: str) -> tuple[Sandbox, object]:
    sb = kube_sandbox(tmp_path)
    cfg = cfg_for(containerRuntime=runtime)
    if runtime == "containerd":
        sb.stub("containerd", "config default", stdout=DEFAULT_V3_EMPTY_IMPORTS)
    else:
        sb.serve("https://download.opensuse.org/repositories/isv:/cri-o:/stable:/v1.36/deb/Release.key",
                 "-----BEGIN PGP PUBLIC KEY BLOCK-----\n")
        sb.stub("apt-get", "*install*cri-o*", run=(
            'mkdir -p "$STATE/units" "$STATE/dpkg" && touch "$STATE/units/crio.active"\n'
            'for p in cri-o cri-tools kubernetes-cni; do echo 1.36.0-1.1 >"$STATE/dpkg/$p"; done\n'))
    assert sb.run_bundle(bundle(cfg, "runtime")).ok
    return sb, cfg


def _sandbox_setting(sb: Sandbox, runtime: str) -> str:
    if runtime == "containerd":
        return tomllib.loads(sb.read(CONTAINERD_DROPIN))["plugins"]["io.containerd.cri.v1.images"][
            "pinned_images"]["sandbox"]
    return tomllib.loads(sb.read("etc/crio/crio.conf.d/50-katak8s.conf"))["crio"]["image"]["pause_image"]


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_the_runtime_takes_kubeadms_pause_image_before_the_node_joins(tmp_path, runtime):
    sb, cfg = _node_with_runtime(tmp_path, runtime)
    assert _sandbox_setting(sb, runtime) == v.PAUSE_IMAGES["1.36"]  # the table's guess, 3.10.1
    sb.stub("kubeadm", "config images list*", stdout=KUBEADM_IMAGES.format(pause="3.10.2"))
    first, second = run_twice(sb, bundle(cfg, "kube-packages", role=naming.WORKER))
    assert _sandbox_setting(sb, runtime) == "registry.k8s.io/pause:3.10.2"
    assert sb.read("etc/katak8s/pause-image").strip() == "registry.k8s.io/pause:3.10.2"
    unit = "containerd" if runtime == "containerd" else "crio"
    assert first.called("systemctl", f"restart {unit}") and not second.called("systemctl", "restart*")
    # and the runtime phase, re-run later, renders the same config: nothing to restart
    again = sb.run_bundle(bundle(cfg, "runtime"))
    assert again.ok and again.changing() == [] and _sandbox_setting(sb, runtime).endswith(":3.10.2"), again


def test_a_joined_node_keeps_its_pause_image_and_is_warned(tmp_path):
    sb, cfg = _node_with_runtime(tmp_path, "containerd")
    sb.write("etc/kubernetes/kubelet.conf", "apiVersion: v1\n")
    sb.installed("kubeadm", "1.36.4-1.1")
    sb.installed("kubelet", "1.36.4-1.1")
    sb.installed("kubectl", "1.36.4-1.1")
    sb.stub("kubeadm", "config images list*", stdout=KUBEADM_IMAGES.format(pause="3.10.2"))
    res = sb.run_bundle(bundle(cfg, "kube-packages", role=naming.WORKER))
    assert res.ok and "a joined node keeps it" in res.stderr, res
    assert _sandbox_setting(sb, "containerd") == v.PAUSE_IMAGES["1.36"] and not sb.exists("etc/katak8s/pause-image")
    assert not res.called("systemctl", "restart*")


def test_a_pause_image_kubeadm_agrees_with_changes_nothing(tmp_path):
    sb, cfg = _node_with_runtime(tmp_path, "containerd")
    sb.stub("kubeadm", "config images list*", stdout=KUBEADM_IMAGES.format(pause=v.PAUSE_IMAGES["1.36"].split(":")[1]))
    res = sb.run_bundle(bundle(cfg, "kube-packages", role=naming.WORKER))
    assert res.ok and not res.called("systemctl", "restart*") and sb.exists("etc/katak8s/pause-image"), res


def test_the_runtime_restart_waits_for_the_kata_smoke_sandbox_to_end(tmp_path):
    """The kata and kube-packages phases run side by side: the restart for kubeadm's pause
    image must not land under the kata phase's smoke sandbox, which holds the runtime lock."""
    import fcntl
    import threading
    import time as _time

    sb, cfg = _node_with_runtime(tmp_path, "containerd")
    sb.stub("kubeadm", "config images list*", stdout=KUBEADM_IMAGES.format(pause="3.10.2"))
    lock = sb.path("var/lib/katak8s/runtime.lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    result = {}
    with open(lock, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # the smoke sandbox is running
        worker = threading.Thread(target=lambda: result.setdefault(
            "res", sb.run_bundle(bundle(cfg, "kube-packages", role=naming.WORKER))))
        worker.start()
        _time.sleep(2)
        assert worker.is_alive(), "the phase did not wait for the runtime lock"
        calls = (sb.base / "calls.log").read_bytes()
        assert b"restart\0containerd" not in calls, "restarted under the smoke sandbox"
        fcntl.flock(held, fcntl.LOCK_UN)
    worker.join(60)
    res = result["res"]
    assert res.ok and res.called("systemctl", "restart containerd"), res
