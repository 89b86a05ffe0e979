"""00-preflight.sh and 10-kernel.sh, run for real in the stub sandbox."""

from __future__ import annotations

import pytest

from components import naming
from sandbox import Sandbox
from test_bootstrap_cases import UBUNTUS, bundle, cfg_for, run_twice


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
