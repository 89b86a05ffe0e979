"""apt on real machines (review-node F7, F8, F11), run for real in the stub sandbox:
runtime packages held against unattended-upgrades, apt-get update failures that are errors
with apt's own lines and the right advice, and a repository key refreshed before it expires."""

from __future__ import annotations

import time

import pytest
from sandbox import Sandbox
from test_bootstrap_cases import UBUNTUS, bundle, cfg_for, run_twice
from test_bootstrap_kube_packages import kube_sandbox
from test_bootstrap_runtime import DEFAULT_V3_EMPTY_IMPORTS, containerd_sandbox

from components import naming

CRIO_REPO = "https://download.opensuse.org/repositories/isv:/cri-o:/stable:/v1.36/deb/"
K8S_REPO = "https://pkgs.k8s.io/core:/stable:/v1.36/deb/"


@pytest.mark.parametrize("ubuntu", UBUNTUS)
def test_containerd_and_runc_are_held_once(tmp_path, ubuntu):
    sb = containerd_sandbox(tmp_path, ubuntu, DEFAULT_V3_EMPTY_IMPORTS)
    sb.installed("runc", "1.3.3-0ubuntu1")  # Ubuntu's containerd depends on it
    first, second = run_twice(sb, bundle(cfg_for(), "runtime"))
    assert sb.held() == ["containerd", "runc"]  # only what is installed: no -stable on this node
    assert first.called("apt-mark", "hold*") and not second.called("apt-mark", "hold*")


def test_containerd_stable_is_held_where_it_replaced_containerd(tmp_path):
    sb = containerd_sandbox(tmp_path, "26.04", DEFAULT_V3_EMPTY_IMPORTS)
    sb.installed("containerd-stable", "2.2.1-0ubuntu1")
    sb.installed("runc-stable", "1.4.0-0ubuntu1")
    assert sb.run_bundle(bundle(cfg_for(), "runtime")).ok
    assert sb.held() == ["containerd-stable", "runc-stable"]


def test_cri_o_is_held(tmp_path):
    sb = Sandbox(tmp_path)
    for repo in (CRIO_REPO, K8S_REPO):
        sb.serve(repo + "Release.key", "-----BEGIN PGP PUBLIC KEY BLOCK-----\n")
    sb.stub("apt-get", "*install*cri-o*", run=(
        'mkdir -p "$STATE/units" "$STATE/dpkg" && touch "$STATE/units/crio.active"\n'
        'for p in cri-o cri-tools kubernetes-cni; do echo 1.36.0-1.1 >"$STATE/dpkg/$p"; done\n'))
    run_twice(sb, bundle(cfg_for(containerRuntime="crio"), "runtime"))
    assert "cri-o" in sb.held()


def test_update_runs_with_every_source_failure_as_an_error(tmp_path):
    sb = kube_sandbox(tmp_path)
    res = sb.run_bundle(bundle(cfg_for(), "kube-packages", role=naming.WORKER))
    (update,) = res.called("apt-get", "*update*")
    assert "APT::Update::Error-Mode=any" in update.args, update.args


SIGNATURE = ("E: The repository 'https://pkgs.k8s.io/core:/stable:/v1.36/deb  InRelease' is not signed.\n"
             "W: GPG error: https://pkgs.k8s.io/core:/stable:/v1.36/deb  InRelease: The following "
             "signatures were invalid: EXPKEYSIG 234654DA9A296436 isv:kubernetes OBS Project\n")
NETWORK = "E: Failed to fetch https://pkgs.k8s.io/core:/stable:/v1.36/deb/InRelease  Could not resolve 'pkgs.k8s.io'\n"


@pytest.mark.parametrize("stderr,says,not_says", [
    (SIGNATURE, "a repository's signature did not verify", "route to"),
    (NETWORK, "check the node's route to pkgs.k8s.io", "signature"),
])
def test_a_failed_update_repeats_apts_lines_and_names_the_cause(tmp_path, stderr, says, not_says):
    sb = kube_sandbox(tmp_path)
    sb.stub("apt-get", "*update*", exit=100, stderr=stderr)
    res = sb.run_bundle(bundle(cfg_for(), "kube-packages", role=naming.WORKER))
    (error,) = [line for line in res.stderr.splitlines() if " ERROR " in line]
    assert res.rc == 1 and says in error and not_says not in error, error
    assert stderr.splitlines()[0][:60] in error  # apt's own line, in the message
    assert res.called("apt-get", "*install*") == []


def _show_keys(expires: int) -> str:
    return (f"pub:-:2048:1:234654DA9A296436:1690000000:{expires}::-:::scESC::::::23::0:\n"
            "uid:-::::1690000000::ABCDEF::isv:kubernetes OBS Project <isv:kubernetes@build.opensuse.org>::::::::::0:\n")


@pytest.mark.parametrize("expires_in_days,refetched", [(-3, True), (10, True), (400, False)])
@pytest.mark.parametrize("upstream_extended", [True, False])
def test_the_repository_key_is_fetched_again_before_it_expires(tmp_path, expires_in_days, refetched,
                                                                upstream_extended):
    sb = kube_sandbox(tmp_path)
    cfg = cfg_for()
    assert sb.run_bundle(bundle(cfg, "kube-packages", role=naming.WORKER)).ok  # installed, key fetched
    sb.stub("gpg", "*--show-keys*", stdout=_show_keys(int(time.time()) + expires_in_days * 86400))
    if upstream_extended:
        sb.serve(K8S_REPO + "Release.key", "-----BEGIN PGP PUBLIC KEY BLOCK-----\nextended\n")
    res = sb.run_bundle(bundle(cfg, "kube-packages", role=naming.WORKER))
    assert res.ok, res.stderr
    assert bool(res.called("curl", f"*{K8S_REPO}Release.key*")) == refetched
    # apt reads the lists again only when the key really changed: the same key, fetched
    # again while upstream has not extended it yet, changes nothing
    assert bool(res.called("apt-get", "*update*")) == (refetched and upstream_extended)


def test_an_old_expired_signing_subkey_beside_a_current_one_is_fine(tmp_path):
    sb = kube_sandbox(tmp_path)
    cfg = cfg_for()
    assert sb.run_bundle(bundle(cfg, "kube-packages", role=naming.WORKER)).ok
    now = int(time.time())
    sb.stub("gpg", "*--show-keys*", stdout=(
        f"pub:-:2048:1:AAAA:1690000000:{now + 900 * 86400}::-:::scESC::::::23::0:\n"
        f"sub:e:2048:1:BBBB:1690000000:{now - 400 * 86400}:::::s::::::23:\n"       # old, expired
        f"sub:-:2048:1:CCCC:{now - 10 * 86400}:{now + 700 * 86400}:::::s::::::23:\n"))  # current
    res = sb.run_bundle(bundle(cfg, "kube-packages", role=naming.WORKER))
    assert res.ok and res.called("curl") == [], res
