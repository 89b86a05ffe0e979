"""00-preflight.sh and 10-kernel.sh, run for real in the stub sandbox."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sandbox import Sandbox
from test_bootstrap_cases import UBUNTUS, bundle, cfg_for, run_twice

from components import naming


def preflight(sb: Sandbox, **kw):
    return sb.run_bundle(bundle(cfg_for(), "preflight", flavor="m1.small", **kw))


@pytest.mark.parametrize("ubuntu", UBUNTUS)
def test_preflight_passes_on_a_capable_node_and_loads_vhost(tmp_path, ubuntu):
    sb = Sandbox(tmp_path, ubuntu=ubuntu)
    first, second = run_twice(sb, bundle(cfg_for(), "preflight", role=naming.CONTROL_PLANE))
    assert [c.line for c in first.called("modprobe")] == ["modprobe vhost_vsock", "modprobe vhost_net"]
    assert second.called("modprobe") == []
    assert "preflight passed" in first.stderr


def test_preflight_without_kvm_names_the_flavor_and_the_admin_fix(tmp_path):
    sb = Sandbox(tmp_path, kvm=False, cpu_flags=())
    res = preflight(sb)
    assert res.rc == 1, res
    err = res.stderr
    assert "hardware virtualization is unavailable on flavor 'm1.small'" in err
    assert "no vmx/svm flag in /proc/cpuinfo" in err and "no /dev/kvm" in err
    for fix in ("kvm_intel nested=1", "cpu_mode = host-passthrough", "cpu_model_extra_flags = vmx",
                "openstack flavor set m1.small --property trait:HW_CPU_X86_VMX=required",
                "katak8s:workerFlavor"):
        assert fix in err, fix
    assert "no later phase runs on it" in err


def test_preflight_with_vmx_but_no_dev_kvm_still_fails(tmp_path):
    res = preflight(Sandbox(tmp_path, kvm=False))
    assert res.rc == 1 and "(no /dev/kvm)" in res.stderr, res


def test_preflight_reports_every_problem_at_once(tmp_path):
    sb = Sandbox(tmp_path, ubuntu="debian-12", arch="aarch64", mem_mib=2048, disk_gib=5, cpus=1)
    sb.module("vhost_vsock", loadable=False)
    (sb.path("sys/fs/cgroup/cgroup.controllers")).unlink()
    res = preflight(sb)
    assert res.rc == 1
    for text in ("runs debian 12; supported: Ubuntu 24.04 26.04", "runs aarch64; only x86_64",
                 "vhost_vsock cannot be loaded", "cgroup v1", "has 1 vCPUs", "has 2048 MiB",
                 "only 5 GiB are free"):
        assert text in res.stderr, text
    assert "(7 problem(s) above)" in res.stderr


@pytest.mark.parametrize("ubuntu", UBUNTUS)
def test_kernel_phase_writes_modules_sysctls_swap_and_is_idempotent(tmp_path, golden, ubuntu):
    sb = Sandbox(tmp_path, ubuntu=ubuntu, swap=True)
    first, _ = run_twice(sb, bundle(cfg_for(), "kernel"))
    names = [c.name for c in first.calls]
    assert names.index("cloud-init") < names.index("modprobe"), "cloud-init must finish first"
    assert first.called("timeout", "900 cloud-init status --wait")
    modules = [c.args for c in first.called("modprobe")]
    assert modules == ["overlay", "br_netfilter", "vhost_vsock", "vhost_net"]
    assert first.called("sysctl", "--system") and first.called("swapoff", "-a")
    golden("bootstrap-modules-load.conf", sb.read("etc/modules-load.d/katak8s.conf"))
    golden("bootstrap-sysctl.conf", sb.read("etc/sysctl.d/99-katak8s.conf"))
    assert sb.read("proc/sys/net/ipv4/ip_forward").strip() == "1"  # applied by `sysctl --system`
    fstab = sb.read("etc/fstab")
    assert "# katak8s: swap off for the kubelet: /swap.img" in fstab and fstab.count("swap.img") == 1
    assert "LABEL=cloudimg-rootfs" in fstab.splitlines()[0]


def test_kernel_phase_stops_when_cloud_init_never_finishes(tmp_path):
    sb = Sandbox(tmp_path)
    sb.stub("timeout", "*cloud-init*", exit=124)
    res = sb.run_bundle(bundle(cfg_for(), "kernel"))
    assert res.rc == 1 and "cloud-init still running after 900s" in res.stderr
    assert res.changing() == []


def test_kernel_phase_tolerates_cloud_init_recoverable_errors(tmp_path):
    sb = Sandbox(tmp_path)
    sb.stub("cloud-init", "status*", exit=2, stdout="status: done\n")
    res = sb.run_bundle(bundle(cfg_for(), "kernel"))
    assert res.ok and "cloud-init finished with errors (exit 2)" in res.stderr, res


# --- the metadata guard (10-kernel.sh): pods may not reach 169.254.169.254 -----------------
GUARD_RULES = "etc/katak8s/metadata-guard.nft"
GUARD_UNIT = "katak8s-metadata-guard.service"
GUARD_UNIT_FILE = f"etc/systemd/system/{GUARD_UNIT}"
POD_RULES = ('iifname "cali*" ip daddr 169.254.169.254 counter drop',
             'iifname "vxlan.calico" ip daddr 169.254.169.254 counter drop',
             'iifname "tunl*" ip daddr 169.254.169.254 counter drop')
NODE_RULES = ("ip daddr 169.254.169.254 meta skuid != 0 counter drop",
              "ip6 daddr fe80::a9fe:a9fe meta skuid != 0 counter drop")
V6_POD_RULE = 'iifname "cali*" ip6 daddr fe80::a9fe:a9fe counter drop'
# The nft stub keeps a copy of the file it was asked to check, and notes whether the live
# rules file already existed then (it must not: a rejected file is never installed).
NFT_CHECK = ('cp "$3" "$STATE/checked.nft"; '
             '[[ -e "$ROOT/etc/katak8s/metadata-guard.nft" ]] && touch "$STATE/checked-after-write"; exit 0')


def guarded_node(tmp_path, **kw) -> Sandbox:
    sb = Sandbox(tmp_path, **kw)
    sb.stub("nft", "-c -f *", run=NFT_CHECK)
    return sb


@pytest.mark.parametrize("ubuntu", UBUNTUS)
def test_kernel_phase_installs_the_metadata_guard_once(tmp_path, golden, ubuntu):
    sb = guarded_node(tmp_path, ubuntu=ubuntu)
    first, second = run_twice(sb, bundle(cfg_for(), "kernel"))
    rules = sb.read(GUARD_RULES)
    golden("bootstrap-metadata-guard.nft", rules)
    golden("bootstrap-metadata-guard.service", sb.read(GUARD_UNIT_FILE))
    # Exactly our table, re-loadable in one transaction, the pod-interface drops (v4 and v6).
    lines = [line.strip() for line in rules.splitlines()]
    assert lines[2:5] == ["table inet katak8s_guard", "delete table inet katak8s_guard",
                          "table inet katak8s_guard {"]
    assert "type filter hook forward priority filter - 10; policy accept;" in lines
    assert [line for line in lines if line.startswith("iifname")] == [*POD_RULES, V6_POD_RULE]
    assert "flush ruleset" not in rules and not sb.exists("etc/nftables.conf")
    unit = sb.read(GUARD_UNIT_FILE)
    assert f"ExecStart=/usr/sbin/nft -f /{GUARD_RULES}" in unit and "ExecStop" not in unit
    assert "Type=oneshot" in unit and "RemainAfterExit=yes" in unit
    # nftables installed after cloud-init let go of dpkg; the file was checked before it was
    # written; the unit reloaded, enabled and started once.
    names = [c.name for c in first.calls]
    assert names.index("cloud-init") < names.index("apt-get") and sb.installed_version("nftables")
    assert sb.read("../state/checked.nft") == rules and not sb.exists("../state/checked-after-write")
    assert [c.args for c in first.called("systemctl") if c.changing] == [
        "daemon-reload", f"enable {GUARD_UNIT}", f"restart {GUARD_UNIT}"]
    assert sb.unit_active(GUARD_UNIT.removesuffix(".service"))
    # run_twice proved the second run changed nothing; it did not even re-check the rules.
    assert second.called("nft") == [] and second.called("apt-get") == []


def test_metadata_guard_rejected_by_nft_is_never_installed(tmp_path):
    sb = Sandbox(tmp_path)
    sb.stub("nft", "-c -f *", exit=1, stderr="Error: syntax error, unexpected junk\n")
    res = sb.run_bundle(bundle(cfg_for(), "kernel"))
    assert res.rc == 1 and "nft rejects the metadata guard rules" in res.stderr, res
    assert "Error: syntax error" in res.stderr  # nft's own reason reaches the operator
    assert not sb.exists(GUARD_RULES) and not sb.exists(GUARD_UNIT_FILE)
    assert res.called("systemctl") == []


@pytest.mark.parametrize("drift", ["old-rules", "stopped", "disabled"])
def test_metadata_guard_repairs_drift_with_the_least_change(tmp_path, drift):
    sb = guarded_node(tmp_path)
    text = bundle(cfg_for(), "kernel")
    assert sb.run_bundle(text).ok
    unit = GUARD_UNIT.removesuffix(".service")
    if drift == "old-rules":
        sb.write(GUARD_RULES, sb.read(GUARD_RULES).replace('iifname "tunl*"', 'iifname "tunnel0"'))
    sb.unit(unit, active=drift != "stopped", enabled=drift != "disabled")
    res = sb.run_bundle(text)
    assert res.ok, res
    expected = {"old-rules": [f"restart {GUARD_UNIT}"], "stopped": [f"restart {GUARD_UNIT}"],
                "disabled": [f"enable {GUARD_UNIT}"]}[drift]
    assert [c.args for c in res.changing()] == expected  # never a daemon-reload: unit unchanged
    assert len(res.called("nft", "-c -f *")) == (drift == "old-rules")
    assert [line.strip() for line in sb.read(GUARD_RULES).splitlines() if "iifname" in line] == [
        *POD_RULES, V6_POD_RULE]


# --- the written rules and unit, checked by the real nft and systemd ----------------------
def _guard_files(tmp_path) -> tuple[Path, Path]:
    sb = Sandbox(tmp_path / "sb")
    assert sb.run_bundle(bundle(cfg_for(), "kernel")).ok
    return sb.path(GUARD_RULES), sb.path(GUARD_UNIT_FILE)


def _nft() -> str:
    nft = shutil.which("nft", path="/usr/sbin:/usr/bin:/sbin:/bin")
    if not nft:
        pytest.skip("nft is not installed (apt-get install nftables; scripts/test.sh does it)")
    return nft


def _in_scratch_netns(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run argv as root of a new user+network namespace: the real kernel validates and loads
    nftables there, while this machine's own ruleset is never touched."""
    if not shutil.which("unshare"):
        pytest.skip("unshare (util-linux) is not installed")
    probe = subprocess.run(["unshare", "--user", "--map-root-user", "--net", "true"],
                           capture_output=True, text=True)
    if probe.returncode:
        pytest.skip(f"cannot create a scratch network namespace here: {probe.stderr.strip()}")
    return subprocess.run(["unshare", "--user", "--map-root-user", "--net", *argv],
                          capture_output=True, text=True, timeout=timeout)


def test_guard_rules_pass_nft_check_and_reload_without_duplicates(tmp_path):
    nft = _nft()
    rules, _ = _guard_files(tmp_path)
    check = _in_scratch_netns(nft, "-c", "-f", str(rules))
    assert check.returncode == 0, check.stderr
    bad = tmp_path / "bad.nft"
    bad.write_text(rules.read_text().replace("priority filter - 10", "priority nonsense"))
    assert _in_scratch_netns(nft, "-c", "-f", str(bad)).returncode != 0  # the check can fail
    # A foreign table (Calico, kube-proxy) survives, and a second load replaces ours in place.
    script = (f'{nft} add table ip calico_sim && {nft} -f "$1" && {nft} -f "$1" '
              f'&& {nft} list ruleset')
    res = _in_scratch_netns("bash", "-c", script, "bash", str(rules))
    assert res.returncode == 0, res.stderr
    assert res.stdout.count("table inet katak8s_guard") == 1 and "table ip calico_sim" in res.stdout
    for rule in (*POD_RULES, V6_POD_RULE, *NODE_RULES):
        assert res.stdout.count(rule.replace("counter", "counter packets 0 bytes 0")) == 1, res.stdout


def test_guard_unit_passes_systemd_analyze_verify(tmp_path):
    _nft()  # verify checks that ExecStart's /usr/sbin/nft exists
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed (apt-get install systemd)")
    _, unit = _guard_files(tmp_path)
    res = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True,
                         timeout=60)
    ours = [line for line in (res.stdout + res.stderr).splitlines() if GUARD_UNIT in line]
    assert res.returncode == 0 and ours == [], res.stdout + res.stderr


# A metadata server answering "user-data" on 169.254.169.254:80 inside the namespace of
# process ${meta}, in the background; both probes below start one.
METADATA_SERVER = r'''nsenter -t "${meta}" -n "${py}" -c '
import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("169.254.169.254", 80)); s.listen(8); s.settimeout(20)
while True:
    c, _ = s.accept(); c.sendall(b"user-data\n"); c.close()
' >/dev/null 2>&1 &
'''


# A node with a pod veth (calitest0) and an uplink to a metadata server (its own namespaces,
# 192.0.2.0/24 and 169.254.169.254 exist only inside them): fetch user data from the pod and
# from the node itself, before and after loading the guard. Arguments: nft, rules file, python.
FORWARD_PROBE = r'''
set -euo pipefail
nft=$1 rules=$2 py=$3 dir=$4
holder() {  # a process in a new network namespace; its pid names the namespace
  unshare --net sleep 60 >/dev/null 2>&1 &
  local pid=$! i
  for i in $(seq 100); do
    if [[ $(readlink "/proc/${pid}/ns/net") != "$(readlink /proc/self/ns/net)" ]]; then
      echo "${pid}"; return 0
    fi
    sleep 0.05
  done
  return 1
}
in_ns() { local pid=$1; shift; nsenter -t "${pid}" -n "$@"; }
fetch() { timeout 1 bash -c 'exec 3<>/dev/tcp/169.254.169.254/80 && cat <&3' 2>/dev/null || echo blocked; }
holder >"${dir}/pod.pid"; holder >"${dir}/meta.pid"
pod=$(<"${dir}/pod.pid"); meta=$(<"${dir}/meta.pid")
server=""
trap 'kill "${pod}" "${meta}" ${server} 2>/dev/null || true' EXIT
ip link set lo up
ip link add calitest0 type veth peer name eth0 netns "${pod}"
ip link add ens3 type veth peer name eth0 netns "${meta}"
ip addr add 10.244.0.1/24 dev calitest0 && ip link set calitest0 up
ip addr add 192.0.2.1/24 dev ens3 && ip link set ens3 up
ip route add 169.254.169.254/32 via 192.0.2.2
echo 1 >/proc/sys/net/ipv4/ip_forward
in_ns "${pod}" ip link set lo up
in_ns "${pod}" ip addr add 10.244.0.2/24 dev eth0
in_ns "${pod}" ip link set eth0 up
in_ns "${pod}" ip route add default via 10.244.0.1
in_ns "${meta}" ip addr add 192.0.2.2/24 dev eth0
in_ns "${meta}" ip addr add 169.254.169.254/32 dev eth0
in_ns "${meta}" ip link set eth0 up
in_ns "${meta}" ip route add 10.244.0.0/24 via 192.0.2.1
__METADATA_SERVER__
server=$!
for _ in $(seq 100); do [[ $(fetch) == user-data ]] && break; sleep 0.05; done
probe() { echo "$1 pod=$(in_ns "${pod}" bash -c "$(declare -f fetch); fetch") node=$(fetch)"; }
probe before
"${nft}" -f "${rules}"
probe after
'''.replace("__METADATA_SERVER__", METADATA_SERVER)


def test_guard_drops_pod_traffic_to_metadata_but_not_the_nodes(tmp_path):
    nft = _nft()
    for tool in ("ip", "nsenter", "timeout"):
        if not shutil.which(tool, path="/usr/sbin:/usr/bin:/sbin:/bin"):
            pytest.skip(f"{tool} is not installed (iproute2 / util-linux / coreutils)")
    rules, _ = _guard_files(tmp_path)
    res = _in_scratch_netns("bash", "-c", FORWARD_PROBE, "bash", nft, str(rules), sys.executable,
                            str(tmp_path))
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == ["before pod=user-data node=user-data",
                                       "after pod=blocked node=user-data"], res.stdout + res.stderr


# The node talks to a metadata server in its own namespace; `fetch` runs as root, then as
# nobody, before and after loading the guard. Arguments: nft, rules file, python, dir.
OUTPUT_PROBE = r'''
set -euo pipefail
nft=$1 rules=$2 py=$3 dir=$4
unshare --net sleep 60 >/dev/null 2>&1 &
meta=$!
server=""
trap 'kill "${meta}" ${server} 2>/dev/null || true' EXIT
self_ns=$(readlink /proc/self/ns/net)
for _ in $(seq 100); do [[ $(readlink "/proc/${meta}/ns/net") != "${self_ns}" ]] && break; sleep 0.05; done
ip link set lo up
ip link add ens3 type veth peer name eth0 netns "${meta}"
ip addr add 192.0.2.1/24 dev ens3 && ip link set ens3 up
ip route add 169.254.169.254/32 via 192.0.2.2
nsenter -t "${meta}" -n ip addr add 192.0.2.2/24 dev eth0
nsenter -t "${meta}" -n ip addr add 169.254.169.254/32 dev eth0
nsenter -t "${meta}" -n ip link set eth0 up
__METADATA_SERVER__
server=$!
fetch() { timeout 1 bash -c 'exec 3<>/dev/tcp/169.254.169.254/80 && cat <&3' 2>/dev/null || echo blocked; }
for _ in $(seq 100); do [[ $(fetch) == user-data ]] && break; sleep 0.05; done
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups bash -c "$(declare -f fetch); fetch"; }
echo "before root=$(fetch) nobody=$(as_nobody)"
"${nft}" -f "${rules}"
echo "after root=$(fetch) nobody=$(as_nobody)"
'''.replace("__METADATA_SERVER__", METADATA_SERVER)


def test_guard_drops_the_nodes_own_non_root_traffic_to_metadata(tmp_path):
    """Issue #12 s5: a local non-root process (or non-root hostNetwork pod) cannot read the
    user data, and with it the host private key; root (cloud-init) still can."""
    nft = _nft()
    if os.geteuid() != 0:
        pytest.skip("needs real root: a user namespace maps no second user for setpriv")
    for tool in ("ip", "nsenter", "timeout", "setpriv", "unshare"):
        if not shutil.which(tool, path="/usr/sbin:/usr/bin:/sbin:/bin"):
            pytest.skip(f"{tool} is not installed (iproute2 / util-linux / coreutils)")
    rules, _ = _guard_files(tmp_path)
    res = subprocess.run(["unshare", "--net", "bash", "-c", OUTPUT_PROBE, "bash", nft, str(rules),
                          sys.executable, str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == ["before root=user-data nobody=user-data",
                                       "after root=user-data nobody=blocked"], res.stdout + res.stderr


def test_security_doc_describes_the_guard_the_script_installs(tmp_path):
    """docs/security.md names the file, table, unit and interfaces the kernel phase writes."""
    rules, unit = _guard_files(tmp_path)
    doc = (Path(__file__).resolve().parent.parent / "docs" / "security.md").read_text()
    section = doc.split("### The metadata service", 1)[1].split("\n## ", 1)[0]
    written = rules.read_text()
    assert f"`/{GUARD_RULES}`" in section and f"`{unit.name}`" in section
    assert "table inet katak8s_guard" in written and "`inet katak8s_guard`" in section
    for iface in ("cali*", "vxlan.calico", "tunl*"):
        assert f'iifname "{iface}"' in written and f"`{iface}`" in section
    assert "of `kata-demo` is a second layer" in " ".join(section.split())


# --- /dev/shm and the node's memory budget (review-node F2) ---------------------------------

from components import versions as v  # noqa: E402
from components.cluster import kubeadm  # noqa: E402
from components.nodes import bootstrap  # noqa: E402


@pytest.mark.parametrize("ubuntu", UBUNTUS)
def test_kernel_phase_sizes_dev_shm_to_what_pods_may_use_once(tmp_path, ubuntu):
    sb = Sandbox(tmp_path, ubuntu=ubuntu, mem_mib=3900)  # a "4 GiB" flavor after the kernel's share
    sb.write("etc/fstab", sb.read("etc/fstab") + "tmpfs /dev/shm tmpfs defaults,size=1g 0 0\n")
    first, second = run_twice(sb, bundle(cfg_for(), "kernel"))
    size = 3900 - v.NODE_RESERVED_MIB
    assert size >= v.DEFAULT_KATA_POD_MIB  # one default VM fits: it did not at the tmpfs default (50%)
    (remount,) = first.called("mount")
    assert remount.args == f"-o remount,size={size}m /dev/shm"
    shm = [line for line in sb.read("etc/fstab").splitlines() if " /dev/shm " in line and not line.startswith("#")]
    assert shm == [f"tmpfs /dev/shm tmpfs defaults,nosuid,nodev,size={size}m 0 0"]  # replaced, not added
    assert second.called("mount") == []


def test_kernel_phase_refuses_a_node_with_no_memory_left_for_pods(tmp_path):
    sb = Sandbox(tmp_path, mem_mib=v.NODE_RESERVED_MIB - 10)
    res = sb.run_bundle(bundle(cfg_for(), "kernel"))
    assert res.rc == 1 and "use a larger flavor" in res.stderr and res.called("mount") == []


def test_the_memory_floor_is_the_reservations_plus_one_default_kata_pod():
    assert bootstrap.MIN_MEMORY_MIB == v.NODE_RESERVED_MIB + v.DEFAULT_KATA_POD_MIB == 3336
    assert v.NODE_RESERVED_MIB == sum(int(r["memory"].removesuffix("Mi")) for r in (
        v.SYSTEM_RESERVED, v.KUBE_RESERVED)) + v.EVICTION_HARD_MEMORY_MIB


def test_the_kubelet_keeps_the_same_budget_from_pods():
    spec = kubeadm.ClusterSpec(cluster_name="dev", kubernetes_patch="1.36.4", control_plane_host="10.42.0.11",
                               public_host="203.0.113.10", pod_subnet="192.168.0.0/16", service_subnet="10.96.0.0/12")
    node = kubeadm.NodeRegistration(name="dev-cp-0", cri_socket=v.CRI_SOCKETS["containerd"], node_ip="10.42.0.11")
    (kubelet,) = [d for d in kubeadm.init_documents(spec, node) if d["kind"] == "KubeletConfiguration"]
    assert kubelet["systemReserved"] == v.SYSTEM_RESERVED and kubelet["kubeReserved"] == v.KUBE_RESERVED
    # evictionHard replaces the kubelet's defaults: every disk signal is restated, or it is off
    assert kubelet["evictionHard"] == {"memory.available": f"{v.EVICTION_HARD_MEMORY_MIB}Mi",
                                       "nodefs.available": "10%", "nodefs.inodesFree": "5%",
                                       "imagefs.available": "15%", "imagefs.inodesFree": "5%"}



def test_a_dev_shm_that_holds_more_than_its_new_size_is_resized_at_the_next_boot(tmp_path):
    """A tmpfs cannot shrink below its use (EINVAL): warn, write /etc/fstab, never fail the phase."""
    sb = Sandbox(tmp_path, mem_mib=3900)
    sb.stub("mount", "-o remount,size=*", exit=32, stderr="mount: /dev/shm: mount point not mounted or bad option.\n")
    res = sb.run_bundle(bundle(cfg_for(), "kernel"))
    assert res.ok and "applies at the next boot" in res.stderr, res
    assert f"size={3900 - v.NODE_RESERVED_MIB}m" in sb.read("etc/fstab")
