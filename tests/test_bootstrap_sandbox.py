"""The stub sandbox itself: what the bootstrap and cluster-formation tests build on."""

from __future__ import annotations

from dataclasses import dataclass

from sandbox import Sandbox


def test_stubs_log_and_keep_state(tmp_path):
    sb = Sandbox(tmp_path)
    sb.package("kubeadm", "1.36.4-1.1", "1.36.3-1.1")
    res = sb.run_command(
        "apt-get -o DPkg::Lock::Timeout=300 -y install kubeadm=1.36.3-1.1 && "
        "dpkg-query -W -f='${Version}' kubeadm && apt-mark hold kubeadm && "
        "systemctl enable --now containerd && systemctl is-active -q containerd && "
        "modprobe -a overlay br_netfilter")
    assert res.ok, res
    assert res.stdout == "1.36.3-1.1"
    assert sb.installed_version("kubeadm") == "1.36.3-1.1"
    assert sb.held() == ["kubeadm"]
    assert sb.unit_active("containerd")
    assert sb.exists("sys/module/br_netfilter") and sb.exists("sys/module/overlay")
    assert [c.name for c in res.calls] == ["apt-get", "dpkg-query", "apt-mark", "systemctl",
                                           "systemctl", "modprobe"]
    assert [c.line for c in res.changing()] == [
        "apt-get -o DPkg::Lock::Timeout=300 -y install kubeadm=1.36.3-1.1",
        "apt-mark hold kubeadm", "systemctl enable --now containerd", "modprobe -a overlay br_netfilter"]


def test_unknown_version_and_unknown_command_fail(tmp_path):
    sb = Sandbox(tmp_path)
    sb.package("kubeadm", "1.36.4-1.1")
    res = sb.run_command("apt-get install -y kubeadm=9.9.9-1.1")
    assert res.rc == 100 and "Version '9.9.9-1.1'" in res.stderr
    # A command that is neither stubbed nor a core utility is not reachable at all.
    assert sb.run_command("ssh -V").rc == 127


def test_rules_override_defaults_newest_first_and_expire(tmp_path):
    sb = Sandbox(tmp_path)
    sb.stub("curl", "*example*", exit=7, stderr="curl: (7) refused\n", times=2)
    sb.serve("https://example.test/a", b"payload")
    res = sb.run_command("for i in 1 2 3; do curl -fsSL https://example.test/a || echo rc=$?; done")
    assert res.stdout == "rc=7\nrc=7\npayload"
    sb.stub("systemctl", "is-active*kubelet*", exit=0, stdout="active\n")
    sb.stub("ctr", "run*", run='echo "args: $*"; exit 4')
    res = sb.run_command("systemctl is-active kubelet; ctr run x")
    assert res.rc == 4 and res.stdout == "active\nargs: run x\n"


def test_run_renders_dataclass_params_and_wrappers_pass_through(tmp_path):
    @dataclass(frozen=True)
    class P:
        greeting: str
        items: tuple[str, ...]

    sb = Sandbox(tmp_path)
    script = tmp_path / "probe.sh"
    script.write_text('source "$1"; echo "$GREETING ${ITEMS[1]} $(uname -r) $KATAK8S_PHASE"\n')
    res = sb._exec(["bash", str(script), str(sb._params_file(P("it's", ("a", "b c"))))],
                   {"KATAK8S_PHASE": "probe"}, None, 30)
    assert res.stdout == "it's b c 6.8.0-45-generic probe\n", res
    res = sb.run_command("sudo -n timeout 5 bash -c 'cloud-init status --wait'")
    assert [c.name for c in res.calls] == ["sudo", "timeout", "cloud-init"]
    assert res.stdout == "status: done\n"


def test_snapshot_sees_rewrites(tmp_path):
    sb = Sandbox(tmp_path)
    before = sb.snapshot()
    assert "etc/os-release" in before and "proc/cpuinfo" in before
    sb.run_command('echo x >>"$KATAK8S_ROOT/etc/fstab"')
    assert sb.snapshot()["etc/fstab"] != before["etc/fstab"]
