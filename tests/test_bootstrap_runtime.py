"""20-containerd.sh and 20-crio.sh, run for real in the stub sandbox; their configs are
checked by Debian's real containerd (config version 2) and by TOML parsing against the
documented layouts (containerd config version 3, CRI-O drop-in)."""

from __future__ import annotations

import shutil
import subprocess
import tomllib

import pytest
from sandbox import Sandbox
from test_bootstrap_cases import UBUNTUS, bundle, cfg_for, run_twice

from components import versions as v

CONTAINERD = shutil.which("containerd", path="/usr/local/bin:/usr/bin:/bin")
IMPORTS = "/etc/containerd/conf.d/*.toml"
QEMU_CONFIG = f"{v.KATA_PREFIX}/{v.HYPERVISORS['qemu'].config_path}"

# What `containerd config default` prints, reduced to the lines the script acts on, as
# containerd 2.0/2.1 (v3, imports = []), 2.2 (v3, conf.d import) and 2.3 (v4) emit them
# (containerd docs/man/containerd-config.toml.5.md, defaults.DefaultConfigIncludePattern).
DEFAULT_V3_EMPTY_IMPORTS = """version = 3
root = '/var/lib/containerd'
state = '/run/containerd'
temp = ''
disabled_plugins = []
required_plugins = []
oom_score = 0
imports = []

[grpc]
  address = '/run/containerd/containerd.sock'
  uid = 0
  gid = 0

[plugins]
  [plugins.'io.containerd.cri.v1.images']
    snapshotter = 'overlayfs'
    [plugins.'io.containerd.cri.v1.images'.pinned_images]
      sandbox = 'registry.k8s.io/pause:3.10'
  [plugins.'io.containerd.cri.v1.runtime']
    [plugins.'io.containerd.cri.v1.runtime'.containerd]
      default_runtime_name = 'runc'
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
        runtime_type = 'io.containerd.runc.v2'
        [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
          SystemdCgroup = false
"""
DEFAULT_V3_CONFD = DEFAULT_V3_EMPTY_IMPORTS.replace("imports = []", f"imports = ['{IMPORTS}']")
# containerd #14121: a 2.3.5 default that disables the CRI plugin.
DEFAULT_V4_BROKEN = DEFAULT_V3_CONFD.replace("version = 3", "version = 4").replace(
    "disabled_plugins = []", "disabled_plugins = ['io.containerd.grpc.v1.cri']").replace(
    "[grpc]", "[plugins.'io.containerd.server.v1.grpc']")


def containerd_sandbox(tmp_path, ubuntu: str, default: str) -> Sandbox:
    sb = Sandbox(tmp_path, ubuntu=ubuntu)
    sb.stub("containerd", "config default", stdout=default)
    return sb


def check_v3_layout(sb: Sandbox, main_version: int) -> None:
    """The documented containerd 2.x layout (upstream-bootstrap.md §4.3, docs/cri/config.md)."""
    main = tomllib.loads(sb.read("etc/containerd/config.toml"))
    dropin = tomllib.loads(sb.read("etc/containerd/conf.d/10-katak8s.toml"))
    assert main["version"] == main_version and IMPORTS in main["imports"]
    assert not any("cri" in p for p in main["disabled_plugins"])
    assert dropin["version"] == 3 <= main["version"]  # a drop-in may not be newer than main
    plugins = dropin["plugins"]
    assert set(plugins) == {"io.containerd.cri.v1.images", "io.containerd.cri.v1.runtime"}
    assert plugins["io.containerd.cri.v1.images"]["pinned_images"]["sandbox"] == v.PAUSE_IMAGES["1.36"]
    ctd = plugins["io.containerd.cri.v1.runtime"]["containerd"]
    assert ctd["default_runtime_name"] == "runc"
    assert ctd["runtimes"]["runc"]["options"]["SystemdCgroup"] is True
    kata = ctd["runtimes"][v.KATA_HANDLER]
    assert kata == {
        "runtime_type": "io.containerd.kata.v2",
        "runtime_path": v.KATA_SHIM_PATH,
        "privileged_without_host_devices": True,
        "pod_annotations": ["io.katacontainers.*"],
        "container_annotations": ["io.kubernetes.container.terminationMessage*"],
        "options": {"ConfigPath": QEMU_CONFIG},
    }


@pytest.mark.parametrize("ubuntu", UBUNTUS)
@pytest.mark.parametrize("default,version", [(DEFAULT_V3_EMPTY_IMPORTS, 3), (DEFAULT_V3_CONFD, 3),
                                             (DEFAULT_V4_BROKEN, 4)], ids=["v3-2.0", "v3-2.2", "v4-2.3"])
def test_containerd_2x_installs_configures_and_is_idempotent(tmp_path, golden, ubuntu, default, version):
    sb = containerd_sandbox(tmp_path, ubuntu, default)
    first, _ = run_twice(sb, bundle(cfg_for(), "runtime"))
    assert sb.installed_version("containerd")
    assert first.called("apt-get", "*install containerd") and first.called("systemctl", "start containerd")
    assert first.called("ctr", "version") and first.called("ctr", "plugins ls")
    check_v3_layout(sb, version)
    assert "disabled_plugins = []" in sb.read("etc/containerd/config.toml")  # #14121 undone
    assert sb.read("etc/crictl.yaml").startswith("runtime-endpoint: unix:///run/containerd/containerd.sock")
    golden("bootstrap-containerd-dropin-v3.toml", sb.read("etc/containerd/conf.d/10-katak8s.toml"))


def test_containerd_v2_config_is_loaded_by_real_containerd(tmp_path, golden):
    if not CONTAINERD:
        pytest.skip("Debian's containerd is not installed (scripts/test.sh installs it)")
    default = subprocess.run([CONTAINERD, "config", "default"], capture_output=True, text=True, check=True)
    assert "version = 2" in default.stdout, "expected Debian's containerd 1.x (config version 2)"
    sb = containerd_sandbox(tmp_path, "24.04", default.stdout)
    run_twice(sb, bundle(cfg_for(), "runtime"))
    path = sb.path("etc/containerd/config.toml")
    golden("bootstrap-containerd-config-v2.toml", path.read_text())
    dump = subprocess.run([CONTAINERD, "--config", str(path), "config", "dump"],
                          capture_output=True, text=True, timeout=60)
    assert dump.returncode == 0, dump.stderr
    cri = tomllib.loads(dump.stdout)["plugins"]["io.containerd.grpc.v1.cri"]
    kata = cri["containerd"]["runtimes"][v.KATA_HANDLER]
    assert kata["runtime_type"] == "io.containerd.kata.v2"
    assert kata["options"]["ConfigPath"] == QEMU_CONFIG
    assert kata["privileged_without_host_devices"] is True
    assert cri["containerd"]["runtimes"]["runc"]["options"]["SystemdCgroup"] is True
    assert cri["sandbox_image"] == v.PAUSE_IMAGES["1.36"]


def test_containerd_keeps_operator_config_but_refuses_disabled_cri(tmp_path):
    sb = containerd_sandbox(tmp_path, "24.04", DEFAULT_V3_CONFD)
    sb.write("etc/containerd/config.toml", DEFAULT_V3_CONFD.replace(
        "disabled_plugins = []", 'disabled_plugins = [\n  "io.containerd.grpc.v1.cri",\n]'))
    res = sb.run_bundle(bundle(cfg_for(), "runtime"))
    assert res.rc == 1 and "disables the CRI plugin" in res.stderr, res
    assert not res.called("systemctl", "*start*")


def test_containerd_restart_only_on_change_and_never_under_pods(tmp_path):
    sb = containerd_sandbox(tmp_path, "24.04", DEFAULT_V3_CONFD)
    assert sb.run_bundle(bundle(cfg_for(), "runtime")).ok
    sb.unit("kubelet")
    sb.stub("crictl", "*pods -q*", stdout="0123abcd\n")
    changed = bundle(cfg_for(kataHypervisor="clh"), "runtime")
    refused = sb.run_bundle(changed)
    assert refused.rc == 1 and "allowRuntimeRestart" in refused.stderr, refused
    assert not refused.called("systemctl", "restart*")
    # The refused restart stays pending: the operator's opt-in applies it on the next run.
    allowed = sb.run_bundle(bundle(cfg_for(kataHypervisor="clh", allowRuntimeRestart=True), "runtime"))
    assert allowed.ok and [c.line for c in allowed.called("systemctl", "restart*")] == [
        "systemctl restart containerd"], allowed
    assert "configuration-clh-runtime-rs.toml" in sb.read("etc/containerd/conf.d/10-katak8s.toml")


def test_runtime_switch_on_joined_node_is_refused(tmp_path):
    sb = containerd_sandbox(tmp_path, "24.04", DEFAULT_V3_CONFD)
    sb.write("etc/kubernetes/kubelet.conf", "apiVersion: v1\n")
    sb.write("var/lib/kubelet/config.yaml", "containerRuntimeEndpoint: unix:///var/run/crio/crio.sock\n")
    res = sb.run_bundle(bundle(cfg_for(), "runtime"))
    assert res.rc == 1 and "Replace the node" in res.stderr and res.changing() == [], res
    # The same node under its own runtime is fine.
    sb.write("var/lib/kubelet/config.yaml",
             "containerRuntimeEndpoint: unix:///var/run/containerd/containerd.sock\n")
    assert sb.run_bundle(bundle(cfg_for(), "runtime")).ok


@pytest.mark.parametrize("ubuntu", UBUNTUS)
def test_crio_dropin_before_first_start_and_idempotent(tmp_path, golden, ubuntu):
    sb = Sandbox(tmp_path, ubuntu=ubuntu)
    for repo in ("https://download.opensuse.org/repositories/isv:/cri-o:/stable:/v1.36/deb/",
                 "https://pkgs.k8s.io/core:/stable:/v1.36/deb/"):
        sb.serve(repo + "Release.key", "-----BEGIN PGP PUBLIC KEY BLOCK-----\n")
    # The package starts CRI-O from its postinst: the drop-in must already be there then.
    sb.stub("apt-get", "*install*cri-o*", run=(
        '[[ -f "$ROOT/etc/crio/crio.conf.d/50-katak8s.conf" ]] || exit 42\n'
        'mkdir -p "$STATE/units" "$STATE/dpkg" && touch "$STATE/units/crio.active"\n'
        'for p in cri-o cri-tools kubernetes-cni; do echo 1.36.0-1.1 >"$STATE/dpkg/$p"; done\n'))
    first, _ = run_twice(sb, bundle(cfg_for(containerRuntime="crio"), "runtime"))
    assert first.called("apt-get", "*update*")
    assert first.called("apt-get", "*install cri-o cri-tools kubernetes-cni")  # review-node F16
    assert first.called("crictl", "--runtime-endpoint unix:///var/run/crio/crio.sock info")
    sources = sb.read("etc/apt/sources.list.d/cri-o.sources")
    assert "URIs: https://download.opensuse.org/repositories/isv:/cri-o:/stable:/v1.36/deb/" in sources
    assert "Signed-By: /etc/apt/keyrings/cri-o-apt-keyring.gpg" in sources and sb.exists(
        "etc/apt/keyrings/cri-o-apt-keyring.gpg")
    text = sb.read("etc/crio/crio.conf.d/50-katak8s.conf")
    golden("bootstrap-crio-dropin.conf", text)
    doc = tomllib.loads(text)  # crio.conf.d(5): the documented keys and tables
    assert doc["crio"]["storage_option"] == ["overlay.skip_mount_home=true"]
    assert doc["crio"]["runtime"]["cgroup_manager"] == "systemd"
    assert doc["crio"]["image"]["pause_image"] == v.PAUSE_IMAGES["1.36"]
    assert doc["crio"]["runtime"]["runtimes"][v.KATA_HANDLER] == {
        "runtime_path": v.KATA_SHIM_PATH, "runtime_type": "vm", "runtime_root": "/run/vc",
        "runtime_config_path": QEMU_CONFIG, "privileged_without_host_devices": True}


def test_containerd_keeps_an_operator_config_with_an_empty_disabled_plugins(tmp_path):
    """`disabled_plugins = []` right before a CRI table is not a disabled CRI plugin."""
    sb = containerd_sandbox(tmp_path, "24.04", DEFAULT_V3_CONFD)
    own = (f"version = 3\nimports = ['{IMPORTS}']\ndisabled_plugins = []\n"
           "[plugins.'io.containerd.cri.v1.images'.pinned_images]\n  sandbox = 'registry.k8s.io/pause:3.10.1'\n")
    sb.write("etc/containerd/config.toml", own)
    res = sb.run_bundle(bundle(cfg_for(), "runtime"))
    assert res.ok, res
    assert sb.read("etc/containerd/config.toml") == own


def test_crio_package_installs_over_a_crictl_yaml_left_on_disk(tmp_path):
    """An unjoined node first bootstrapped with containerd has our /etc/crictl.yaml, a cri-o
    conffile: dpkg would prompt on the closed stdin and fail unless told to keep it."""
    sb = Sandbox(tmp_path)
    for repo in ("https://download.opensuse.org/repositories/isv:/cri-o:/stable:/v1.36/deb/",
                 "https://pkgs.k8s.io/core:/stable:/v1.36/deb/"):
        sb.serve(repo + "Release.key", "-----BEGIN PGP PUBLIC KEY BLOCK-----\n")
    sb.write("etc/crictl.yaml", "runtime-endpoint: unix:///run/containerd/containerd.sock\n")
    sb.stub("apt-get", "*install*cri-o*", run=(
        '[[ " $* " == *" Dpkg::Options::=--force-confold "* ]] || {\n'
        '  echo "dpkg: error processing package cri-o (--configure):" >&2\n'
        '  echo " end of file on stdin at conffile prompt" >&2; exit 100; }\n'
        'mkdir -p "$STATE/dpkg"\n'
        'for p in cri-o cri-tools kubernetes-cni; do echo 1.36.0-1.1 >"$STATE/dpkg/$p"; done\n'))
    res = sb.run_bundle(bundle(cfg_for(containerRuntime="crio"), "runtime"))
    assert res.ok, res
    assert sb.installed_version("cri-o") == "1.36.0-1.1"


def test_crio_rerun_after_a_failed_update_refreshes_the_lists(tmp_path):
    """A first run wrote the sources, then `apt-get update` failed (mirror down): the next run
    finds the sources unchanged but must still read them before it installs."""
    sb = Sandbox(tmp_path)
    for repo in ("https://download.opensuse.org/repositories/isv:/cri-o:/stable:/v1.36/deb/",
                 "https://pkgs.k8s.io/core:/stable:/v1.36/deb/"):
        sb.serve(repo + "Release.key", "-----BEGIN PGP PUBLIC KEY BLOCK-----\n")
    # apt knows cri-o only after an update that ran with the CRI-O source in place.
    sb.stub("apt-get", "*update*", run=(
        '[[ -f "$ROOT/etc/apt/sources.list.d/cri-o.sources" ]] && touch "$STATE/lists-have-crio"; true'))
    sb.stub("apt-get", "*update*", exit=100, times=8, stderr="E: Failed to fetch InRelease  Connection timed out\n")
    sb.stub("apt-get", "*install*cri-o*", run=(
        '[[ -f "$STATE/lists-have-crio" ]] || { echo "E: Unable to locate package cri-o" >&2; exit 100; }\n'
        'mkdir -p "$STATE/dpkg"\n'
        'for p in cri-o cri-tools kubernetes-cni; do echo 1.36.0-1.1 >"$STATE/dpkg/$p"; done\n'))
    text = bundle(cfg_for(containerRuntime="crio"), "runtime")
    failed = sb.run_bundle(text)
    assert failed.rc == 1 and "apt-get update failed" in failed.stderr, failed
    res = sb.run_bundle(text)
    assert res.ok, res
    assert sb.installed_version("cri-o") == "1.36.0-1.1"


@pytest.mark.parametrize("installed,k8s,warned", [("2.2.1", "1.36", False), ("1.7.28", "1.36", True),
                                                  ("1.7.28", "1.35", False), ("2.3.0", "1.37", False)])
def test_a_containerd_older_than_its_list_for_the_minor_is_named_not_refused(tmp_path, installed, k8s, warned):
    """#16: each minor needs a containerd that supports it (containerd RELEASES.md)."""
    sb = containerd_sandbox(tmp_path, "24.04", DEFAULT_V3_EMPTY_IMPORTS)
    sb.fact("containerd_version", installed)
    res = sb.run_bundle(bundle(cfg_for(kubernetesVersion=k8s), "runtime"))
    assert res.ok, res
    assert ("is older than" in res.stderr) == warned
    if warned:
        assert f"containerd {installed} is older than {v.CONTAINERD_MIN_VERSION[k8s]}" in res.stderr
