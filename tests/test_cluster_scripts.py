"""scripts/remote/cluster/*.sh run for real in the stub sandbox (tests/sandbox.py).

kubeadm and kubectl are stubs that log their arguments; the scripts' own logic (guards,
drift refusal, stdin handling, drain failure) runs as on a node. The drain and reset
tests (tests/test_cluster_scale_in.py) execute the exact `delete` text the program declares.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import subprocess
from pathlib import Path

import pytest
from fake_cluster import CLUSTER_UPGRADE, NODE_UPGRADE, live_node
from sandbox import Sandbox

from components import versions as v
from components.cluster import CredentialParams, InitParams, JoinParams, KubeconfigParams, kubeadm
from components.nodes import phase

TOKEN = "k8stok.0123456789katak8"
CERT_KEY = "3c" * 32
CA_HASH = "sha256:" + "ab" * 32
ENDPOINT = "10.42.0.11:6443"
CONTAINERD = v.CRI_SOCKETS["containerd"]
ADMIN_CONF = (f"apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    server: https://{ENDPOINT}\n"
              "  name: dev\nusers:\n- name: kubernetes-admin\n  user: {}\n")


def make_sandbox(tmp_path: Path, **kw) -> Sandbox:
    sb = Sandbox(tmp_path, **kw)
    sb.stub("kubectl", "*get --raw=/readyz*", stdout="ok")
    return sb


def leaked(res, *secrets: str) -> list[str]:
    seen = [res.stdout, res.stderr, *(c.line for c in res.calls)]
    return [s for s in secrets for text in seen if s in text]


# --- kubeadm init ---------------------------------------------------------------------------

def init_config(version: str = "1.36.4", pod_subnet: str = "192.168.0.0/16",
                service_subnet: str = "10.96.0.0/12", serving_certificates: bool = False) -> str:
    return kubeadm.render_init_config(
        kubeadm.ClusterSpec(cluster_name="dev", kubernetes_patch=version, control_plane_host="10.42.0.11",
                            public_host="203.0.113.10", pod_subnet=pod_subnet,
                            service_subnet=service_subnet, serving_certificates=serving_certificates),
        kubeadm.NodeRegistration(name="dev-cp-0", cri_socket=CONTAINERD, node_ip="10.42.0.11"))


INIT = InitParams(node_name="dev-cp-0", kubernetes_version="v1.36.4", readyz_timeout=20, cri_socket=CONTAINERD,
                  removed_gates=(), **NODE_UPGRADE, **CLUSTER_UPGRADE)
# What a real `kubeadm init` leaves behind, and the join line (with a token) it prints.
KUBEADM_INIT = {
    "stdout": f"kubeadm join {ENDPOINT} --token {TOKEN} --discovery-token-ca-cert-hash {CA_HASH}\n",
    "files": {"etc/kubernetes/admin.conf": ADMIN_CONF,
              "etc/kubernetes/manifests/kube-apiserver.yaml":
                  "    image: registry.k8s.io/kube-apiserver:v1.36.4\n"},
}


def live_cluster(sb: Sandbox, version: str = "v1.36.4", endpoint: str = ENDPOINT, done: bool = True) -> None:
    """What a kubeadm init leaves; `done`: init.sh saw it complete (its mark)."""
    sb.write("etc/kubernetes/admin.conf", ADMIN_CONF.replace(ENDPOINT, endpoint), 0o600)
    sb.write("etc/kubernetes/manifests/kube-apiserver.yaml",
             f"spec:\n  containers:\n  - image: registry.k8s.io/kube-apiserver:{version}\n")
    if done:
        sb.write("var/lib/katak8s/kubeadm-init.done", "unknown\n")


def as_running(sb: Sandbox, name: str) -> None:
    """The node runs Kubernetes 1.36.4 behind the fake API (tests/fake_cluster.py)."""
    live_node(sb, name, "1.36.4", api=sb.base / "api", control_plane=name == "dev-cp-0")


def test_init_runs_kubeadm_once_with_the_config_from_stdin(tmp_path):
    sb = make_sandbox(tmp_path, hostname="dev-cp-0")
    sb.stub("kubeadm", "init *", **KUBEADM_INIT)
    res = sb.run("cluster/init.sh", INIT, stdin=init_config())
    assert res.ok, res
    config = f"{sb.root}/etc/kubernetes/katak8s/kubeadm-init.yaml"
    assert [c.args for c in res.called("kubeadm")] == [f"init --config {config}"]
    assert sb.read("etc/kubernetes/katak8s/kubeadm-init.yaml") == init_config()
    assert sb.path("etc/kubernetes/katak8s/kubeadm-init.yaml").stat().st_mode & 0o777 == 0o600
    # kubeadm's output (with its bootstrap token) stays in a root-only log on the node.
    log = sb.path("var/log/katak8s/kubeadm-init.log")
    assert TOKEN in log.read_text() and log.stat().st_mode & 0o777 == 0o600
    assert leaked(res, TOKEN) == []
    assert res.called("kubectl", "*get --raw=/readyz")

    as_running(sb, "dev-cp-0")  # what the node phases and the init left: packages, kubelet, its Node
    before = sb.snapshot()
    again = sb.run("cluster/init.sh", INIT, stdin=init_config())
    assert again.ok, again
    assert again.changing() == [] and not again.called("kubeadm")
    assert "nothing to initialise" in again.stderr
    assert sb.snapshot() == before


def test_init_refuses_a_downgrade_of_a_live_cluster(tmp_path):
    """An older cluster is upgraded (tests/test_upgrade_scripts.py); a newer one is refused."""
    sb = make_sandbox(tmp_path)
    live_cluster(sb, version="v1.37.1")
    res = sb.run("cluster/init.sh", INIT, stdin=init_config())
    assert res.rc == 1, res
    assert "the cluster runs Kubernetes v1.37.1, newer than the v1.36.4 the stack asks for" in res.stderr
    assert "Set katak8s:kubernetesVersion back to 1.37.1" in res.stderr
    assert not res.called("kubeadm") and res.changing() == []


def test_init_refuses_a_new_api_endpoint_on_a_live_cluster(tmp_path):
    sb = make_sandbox(tmp_path)
    live_cluster(sb, endpoint="10.42.0.250:6443")
    res = sb.run("cluster/init.sh", INIT, stdin=init_config())
    assert res.rc == 1 and "cannot move controlPlaneEndpoint" in res.stderr, res
    assert not res.called("kubeadm")


@pytest.mark.parametrize("change", [{"pod_subnet": "10.244.0.0/16"}, {"service_subnet": "10.100.0.0/16"}])
def test_init_refuses_new_pod_or_service_subnets_on_a_live_cluster(tmp_path, change):
    sb = make_sandbox(tmp_path, hostname="dev-cp-0")
    sb.stub("kubeadm", "init *", **KUBEADM_INIT)
    assert sb.run("cluster/init.sh", INIT, stdin=init_config()).ok
    as_running(sb, "dev-cp-0")
    assert sb.run("cluster/init.sh", INIT, stdin=init_config()).ok  # unchanged: accepted
    res = sb.run("cluster/init.sh", INIT, stdin=init_config(**change))
    [(key, value)] = change.items()
    name, old = ("podSubnet", "192.168.0.0/16") if key == "pod_subnet" else ("serviceSubnet", "10.96.0.0/12")
    assert res.rc == 1 and f"initialised with {name} {old}, but the stack now asks for {value}" in res.stderr, res
    assert not res.called("kubeadm")


@pytest.mark.parametrize("initialised", [True, False])
def test_init_refuses_to_change_kubelet_serving_certificates_of_a_live_cluster(tmp_path, initialised):
    """Only a stack that lost its outputs (or whose first `up` stopped after init) asks for
    the other setting: the approver the kubelets need must never go silently."""
    sb = make_sandbox(tmp_path, hostname="dev-cp-0")
    sb.stub("kubeadm", "init *", **KUBEADM_INIT)
    assert sb.run("cluster/init.sh", INIT, stdin=init_config(serving_certificates=initialised)).ok
    as_running(sb, "dev-cp-0")
    again = sb.run("cluster/init.sh", INIT, stdin=init_config(serving_certificates=initialised))
    assert again.ok and again.changing() == [], again  # unchanged: accepted
    res = sb.run("cluster/init.sh", INIT, stdin=init_config(serving_certificates=not initialised))
    assert res.rc == 1, res
    want = "metricsServer true for the next" if initialised else "Set katak8s:metricsServer false"
    assert want in res.stderr and not res.called("kubeadm")
    assert sb.read("etc/kubernetes/katak8s/kubeadm-init.yaml") == init_config(serving_certificates=initialised)


def test_init_half_done_is_not_taken_for_done(tmp_path):
    sb = make_sandbox(tmp_path)
    sb.write("etc/kubernetes/admin.conf", ADMIN_CONF)  # kubeadm stopped before the manifests
    sb.stub("kubectl", "*get --raw=/readyz", exit=1, stderr="connection refused\n")
    res = sb.run("cluster/init.sh", INIT, stdin=init_config())  # and its API does not answer
    assert res.rc == 1 and "kubeadm reset -f" in res.stderr and "never completed" in res.stderr, res
    assert "does not answer" in res.stderr and not res.called("kubeadm")


def test_init_that_stopped_after_its_manifests_is_not_taken_for_done(tmp_path):
    # kubeadm init failed (or was killed) in wait-control-plane: admin.conf and the static
    # pods exist with the right version, but upload-config, bootstrap-token and the addons
    # never ran. Taking that for a cluster would make every join fail later.
    sb = make_sandbox(tmp_path)
    live_cluster(sb, done=False)
    sb.stub("kubectl", "*get --raw=/readyz", exit=1, stderr="connection refused\n")  # nothing proves it safe
    res = sb.run("cluster/init.sh", INIT, stdin=init_config())
    assert res.rc == 1 and "never completed" in res.stderr and "kubeadm reset -f" in res.stderr, res
    assert not res.called("kubeadm") and "nothing to initialise" not in res.stderr


def test_init_failure_shows_the_log_without_the_token(tmp_path):
    sb = make_sandbox(tmp_path)
    sb.stub("kubeadm", "init *", exit=1,
            stdout=f"[bootstrap-token] Using token: {TOKEN}\n[certificate-key] {CERT_KEY}\n",
            stderr="error execution phase wait-control-plane: timed out\n")
    res = sb.run("cluster/init.sh", INIT, stdin=init_config())
    assert res.rc == 1, res
    assert "timed out" in res.stderr and "<token>" in res.stderr and "<hex>" in res.stderr
    assert "resets the half-made control plane first when that is safe" in res.stderr
    assert leaked(res, TOKEN, CERT_KEY) == []


def test_init_wait_for_readyz_is_bounded(tmp_path):
    sb = make_sandbox(tmp_path)
    live_cluster(sb)
    sb.stub("kubectl", "*get --raw=/readyz*", exit=1, stderr="connection refused\n")
    res = sb.run("cluster/init.sh", INIT, stdin=init_config(), timeout=30)
    assert res.rc == 1 and "not ready after 20s" in res.stderr, res
    assert 1 <= len(res.called("kubectl", "*readyz*")) <= 10


def test_kubeconfig_prints_admin_conf_and_nothing_else(tmp_path):
    sb = make_sandbox(tmp_path)
    params = KubeconfigParams(node_name="dev-cp-0")
    assert "kubeadm init has not completed" in sb.run("cluster/kubeconfig.sh", params).stderr
    sb.write("etc/kubernetes/admin.conf", ADMIN_CONF, 0o600)
    res = sb.run("cluster/kubeconfig.sh", params)
    assert res.ok and res.stdout == ADMIN_CONF and res.changing() == [], res
    # A cut-off file is refused before anything is printed (review-pulumi F17).
    sb.write("etc/kubernetes/admin.conf", ADMIN_CONF.split("users:")[0], 0o600)
    res = sb.run("cluster/kubeconfig.sh", params)
    assert res.rc == 1 and res.stdout == "" and "no users:" in res.stderr, res


def test_the_kubeconfig_bundle_does_not_change_with_the_shared_library():
    """review-pulumi F8: its stdout configures the Kubernetes provider."""
    bundle = phase.render_program("kubeconfig", "cluster/kubeconfig.sh", KubeconfigParams(node_name="dev-cp-0"))
    # Whole, with neither the library's sums nor launch.sh (whose edits would then replace it).
    assert "KATAK8S_FILES" not in bundle and "katak8s_copy_matches" not in bundle
    assert phase._body("cluster/kubeconfig.sh") in bundle


# --- join credentials -----------------------------------------------------------------------

def make_ca(sb: Sandbox, algorithm: str) -> str:
    """A real CA certificate at etc/kubernetes/pki/ca.crt; returns its expected pin,
    sha256 of the DER SubjectPublicKeyInfo (computed here without the script's pipeline)."""
    pki = sb.path("etc/kubernetes/pki")
    pki.mkdir(parents=True)
    key_opt = ["-newkey", "rsa:2048"] if algorithm == "rsa" else ["-newkey", "ec", "-pkeyopt",
                                                                      "ec_paramgen_curve:P-256"]
    subprocess.run(["openssl", "req", "-x509", *key_opt, "-nodes", "-keyout", str(pki / "ca.key"),
                    "-out", str(pki / "ca.crt"), "-subj", "/CN=kubernetes", "-days", "1"],
                   check=True, capture_output=True)
    pem = subprocess.run(["openssl", "x509", "-pubkey", "-noout", "-in", str(pki / "ca.crt")],
                         check=True, capture_output=True, text=True).stdout
    der = base64.b64decode("".join(line for line in pem.splitlines() if "-----" not in line))
    return "sha256:" + hashlib.sha256(der).hexdigest()


@pytest.mark.parametrize("algorithm", ["rsa", "ec"])
def test_worker_credentials_are_minted_fresh_and_only_printed(tmp_path, algorithm):
    sb = make_sandbox(tmp_path)
    sb.write("etc/kubernetes/admin.conf", ADMIN_CONF)
    want_hash = make_ca(sb, algorithm)
    sb.stub("kubeadm", "token create *", stdout=TOKEN + "\n")
    params = CredentialParams(node_name="dev-worker-5", token_ttl="30m", control_plane=False,
                              readyz_timeout=20,
                              kubernetes_version="v1.36.4", **CLUSTER_UPGRADE)
    res = sb.run("cluster/join-credentials.sh", params)
    assert res.ok, res
    creds = kubeadm.parse_join_credentials(res.stdout, node="dev-worker-5", control_plane=False)
    assert (creds.token, creds.ca_cert_hash) == (TOKEN, want_hash)
    [create] = res.called("kubeadm", "token create*")
    assert create.argv[1:] == ("token", "create", "--kubeconfig", f"{sb.root}/etc/kubernetes/admin.conf",
                               "--ttl", "30m", "--description", "katak8s: join of dev-worker-5")
    assert not res.called("kubeadm", "init phase upload-certs*")
    assert TOKEN not in res.stderr and all(TOKEN not in c.line for c in res.calls)


def test_control_plane_credentials_upload_the_certificates_under_a_new_key(tmp_path):
    sb = make_sandbox(tmp_path)
    sb.write("etc/kubernetes/admin.conf", ADMIN_CONF)
    sb.write("etc/kubernetes/katak8s/kubeadm-init.yaml", init_config(), 0o600)
    make_ca(sb, "rsa")
    sb.stub("kubeadm", "token create *", stdout=TOKEN + "\n")
    sb.stub("kubeadm", "init phase upload-certs *", stdout=(
        '[upload-certs] Storing the certificates in Secret "kubeadm-certs" in the "kube-system" Namespace\n'
        f"[upload-certs] Using certificate key:\n{CERT_KEY}\n"))
    params = CredentialParams(node_name="dev-cp-1", token_ttl="30m", control_plane=True, readyz_timeout=20,
                              kubernetes_version="v1.36.4", **CLUSTER_UPGRADE)
    res = sb.run("cluster/join-credentials.sh", params)
    assert res.ok, res
    creds = kubeadm.parse_join_credentials(res.stdout, node="dev-cp-1", control_plane=True)
    assert creds.certificate_key == CERT_KEY
    [upload] = res.called("kubeadm", "init phase upload-certs*")
    assert upload.args == ("init phase upload-certs --upload-certs --config "
                           f"{sb.root}/etc/kubernetes/katak8s/kubeadm-init.yaml")
    assert leaked(res, CERT_KEY) == [CERT_KEY]  # only in stdout, which Pulumi keeps secret
    assert CERT_KEY in res.stdout and CERT_KEY not in res.stderr


@pytest.mark.parametrize("failing", ["upload-certs", "ca-hash"])
def test_credentials_failing_after_the_token_print_nothing(tmp_path, failing):
    # pulumi-command puts a failed command's stdout, unscrubbed, in its error message: a
    # token minted before a later step fails must not have been printed.
    sb = make_sandbox(tmp_path)
    sb.write("etc/kubernetes/admin.conf", ADMIN_CONF)
    if failing == "upload-certs":
        make_ca(sb, "rsa")
        sb.stub("kubeadm", "init phase upload-certs *", exit=1,
                stderr="error execution phase upload-certs: error uploading certs: etcdserver: timeout\n")
    sb.stub("kubeadm", "token create *", stdout=TOKEN + "\n")
    params = CredentialParams(node_name="dev-cp-1", token_ttl="30m", control_plane=True, readyz_timeout=20,
                              kubernetes_version="v1.36.4", **CLUSTER_UPGRADE)
    res = sb.run("cluster/join-credentials.sh", params)
    assert res.rc == 1 and res.called("kubeadm", "token create*"), res
    assert res.stdout == "" and TOKEN not in res.stderr, res
    assert ("upload-certs failed" if failing == "upload-certs" else "not the first control plane") in res.stderr


def test_credentials_need_a_live_api(tmp_path):
    sb = make_sandbox(tmp_path)
    params = CredentialParams(node_name="dev-worker-0", token_ttl="30m", control_plane=False,
                              readyz_timeout=20,
                              kubernetes_version="v1.36.4", **CLUSTER_UPGRADE)
    res = sb.run("cluster/join-credentials.sh", params)
    assert res.rc == 1 and "not initialised" in res.stderr and res.stdout == "", res


# --- kubeadm join ---------------------------------------------------------------------------

def join_config(token: str = TOKEN) -> str:
    return kubeadm.render_join_config(kubeadm.JoinSpec(
        api_server_endpoint=ENDPOINT,
        node=kubeadm.NodeRegistration(name="dev-worker-0", cri_socket=CONTAINERD, node_ip="10.42.0.20",
                                      taints=()),
        credentials=kubeadm.JoinCredentials(token=token, ca_cert_hash=CA_HASH)))


JOIN = JoinParams(node_name="dev-worker-0", kubernetes_version="v1.36.4", cri_socket=CONTAINERD,
                  control_plane=False, mint_resource="dev-cp-0-join-credentials-dev-worker-0", **NODE_UPGRADE)
# The stub keeps what kubeadm join saw: the file's mode and content.
KUBEADM_JOIN = """cfg=${3:?}
stat -c %a "$cfg" >"$SB/join-mode"
cp "$cfg" "$SB/join-seen.yaml"
mkdir -p "$ROOT/etc/kubernetes"
echo 'apiVersion: v1' >"$ROOT/etc/kubernetes/kubelet.conf"
"""


def test_join_bundle_reads_the_token_from_stdin_and_never_shows_it(tmp_path):
    sb = make_sandbox(tmp_path, hostname="dev-worker-0")
    sb.write("run/containerd/containerd.sock", "")
    sb.stub("kubeadm", "join *", run=KUBEADM_JOIN)
    # The exact file the node runs: parameters + scripts/remote/lib/common.sh + join.sh.
    res = sb.run_bundle(phase.render_program("kubeadm-join", "cluster/join.sh", JOIN), stdin=join_config())
    assert res.ok, res
    config = f"{sb.root}/etc/kubernetes/katak8s/kubeadm-join.yaml"
    assert [c.args for c in res.called("kubeadm")] == [f"join --config {config}"]
    assert (sb.base / "join-seen.yaml").read_text() == join_config()
    assert (sb.base / "join-mode").read_text().strip() == "600"
    assert not sb.exists("etc/kubernetes/katak8s/kubeadm-join.yaml")  # the spent token is removed
    assert leaked(res, TOKEN) == []


def test_a_joined_node_is_checked_not_joined_again(tmp_path):
    sb = make_sandbox(tmp_path, hostname="dev-worker-0")
    as_running(sb, "dev-worker-0")
    before = sb.snapshot()
    res = sb.run("cluster/join.sh", JOIN, stdin=join_config())
    assert res.ok and "already joined" in res.stderr, res
    assert not res.called("kubeadm") and res.changing() == [] and sb.snapshot() == before

    # The runtime the kubelet was joined with (kubeadm's flags file) is checked too.
    sb.write("var/lib/kubelet/kubeadm-flags.env",
             'KUBELET_KUBEADM_ARGS="--container-runtime-endpoint=unix:///var/run/crio/crio.sock"\n')
    res = sb.run("cluster/join.sh", JOIN, stdin=join_config())
    assert res.rc == 1 and "joined with the runtime at unix:///var/run/crio/crio.sock" in res.stderr, res
    sb.write("var/lib/kubelet/kubeadm-flags.env",
             f'KUBELET_KUBEADM_ARGS="--container-runtime-endpoint={CONTAINERD}"\n')
    assert sb.run("cluster/join.sh", JOIN, stdin=join_config()).ok

    # An older kubelet is upgraded (tests/test_upgrade_scripts.py); a newer one is refused.
    sb.stub("kubelet", "--version", stdout="Kubernetes v1.37.1\n")
    res = sb.run("cluster/join.sh", JOIN, stdin=join_config())
    assert res.rc == 1 and "runs kubelet v1.37.1, newer than the v1.36.4 the stack asks for" in res.stderr, res
    assert "Set katak8s:kubernetesVersion back to 1.37.1" in res.stderr
    assert not res.called("kubeadm")


def test_a_join_killed_half_way_is_not_taken_for_done(tmp_path):
    # kubelet.conf exists from kubelet-start, but the join (for a control plane: its etcd
    # member and static pods) never completed: no completion mark.
    sb = make_sandbox(tmp_path)
    sb.write("run/containerd/containerd.sock", "")
    sb.write("etc/kubernetes/kubelet.conf", "apiVersion: v1\n")
    sb.stub("kubelet", "--version", stdout="Kubernetes v1.36.4\n")
    sb.stub("kubectl", "*get node dev-worker-0*", stdout="node/dev-worker-0\n")
    res = sb.run("cluster/join.sh", JOIN, stdin=join_config())
    assert res.rc == 1 and "never completed" in res.stderr and "kubeadm reset -f" in res.stderr, res
    assert not res.called("kubeadm") and "already joined" not in res.stderr


def test_join_refuses_a_node_without_the_requested_runtime(tmp_path):
    sb = make_sandbox(tmp_path)
    sb.write("var/run/crio/crio.sock", "")
    res = sb.run("cluster/join.sh", JOIN, stdin=join_config())
    assert res.rc == 1 and "containerRuntime" in res.stderr and not res.called("kubeadm"), res


def test_a_join_with_an_expired_token_says_how_to_mint_a_new_one(tmp_path):
    sb = make_sandbox(tmp_path)
    sb.write("run/containerd/containerd.sock", "")
    sb.stub("kubeadm", "join *", exit=1, stderr=(
        f"[discovery] token {TOKEN}\nerror execution phase preflight: couldn't validate the identity of the "
        'API Server: could not find a JWS signature in the cluster-info ConfigMap for token ID "k8stok"\n'))
    res = sb.run("cluster/join.sh", JOIN, stdin=join_config())
    assert res.rc == 1, res
    assert "pulumi up --replace" in res.stderr and "dev-cp-0-join-credentials-dev-worker-0" in res.stderr
    assert res.called("kubeadm", f"reset -f --cri-socket {CONTAINERD}")  # the failed attempt is undone
    assert not sb.exists("etc/kubernetes/katak8s/kubeadm-join.yaml")
    assert leaked(res, TOKEN) == []


@pytest.mark.parametrize("control_plane,warned", [(True, True), (False, False)])
def test_a_failed_control_plane_join_says_when_its_etcd_member_is_left(tmp_path, control_plane, warned):
    """Issue #12 s5: like scale-in's reset, the undo of a failed control-plane join names the
    etcd member it could not remove and how to remove it, with the bundle as the node runs it."""
    sb = make_sandbox(tmp_path)
    sb.write("run/containerd/containerd.sock", "")
    sb.stub("kubeadm", "join *", exit=1, stderr="error execution phase control-plane-join/etcd: timeout\n")
    sb.stub("kubeadm", "reset *", stdout="[reset] failed to remove etcd member: context deadline exceeded\n")
    params = dataclasses.replace(JOIN, control_plane=control_plane)
    res = sb.run_bundle(phase.render_program("kubeadm-join", "cluster/join.sh", params), stdin=join_config())
    assert res.rc == 1, res
    assert ("did NOT remove the etcd member of dev-worker-0" in res.stderr) is warned, res.stderr
    assert ("member remove <ID of dev-worker-0>" in res.stderr) is warned
    assert leaked(res, TOKEN) == []



# --- a half-made init recovers by itself when that is provably safe (review-node F18) -------

def _half_made_api(sb: Sandbox, *, kubeadm_config: bool = False, nodes: str = "node/dev-cp-0\n") -> None:
    live_cluster(sb, done=False)
    sb.stub("kubectl", "*get --raw=/readyz", stdout="ok")
    sb.stub("kubectl", "*get configmap kubeadm-config*", stdout="configmap/kubeadm-config\n" if kubeadm_config else "")
    sb.stub("kubectl", "*get nodes -o name*", stdout=nodes)


def test_a_half_made_init_that_no_node_can_have_joined_is_reset_and_run_again(tmp_path):
    sb = make_sandbox(tmp_path, hostname="dev-cp-0")
    _half_made_api(sb)
    sb.stub("kubeadm", "reset *", run='rm -f "$ROOT/etc/kubernetes/admin.conf" "$ROOT/etc/kubernetes/manifests/"*')
    sb.stub("kubeadm", "init *", **KUBEADM_INIT)
    res = sb.run("cluster/init.sh", INIT, stdin=init_config())
    assert res.ok, res
    assert [c.args.split()[0] for c in res.called("kubeadm")] == ["reset", "init"]
    assert res.called("kubeadm", f"reset -f --cri-socket {CONTAINERD}")
    assert sb.exists("var/lib/katak8s/kubeadm-init.done") and "never completed" in res.stderr
    as_running(sb, "dev-cp-0")
    again = sb.run("cluster/init.sh", INIT, stdin=init_config())
    assert again.ok and not again.called("kubeadm"), again  # done now: never reset again


def test_an_init_that_failed_before_any_kubeconfig_is_reset_and_run_again(tmp_path):
    sb = make_sandbox(tmp_path, hostname="dev-cp-0")
    sb.write("etc/kubernetes/pki/ca.crt", "-----BEGIN CERTIFICATE-----\n")  # stopped in the certs phase
    sb.stub("kubeadm", "init *", **KUBEADM_INIT)
    res = sb.run("cluster/init.sh", INIT, stdin=init_config())
    assert res.ok and [c.args.split()[0] for c in res.called("kubeadm")] == ["reset", "init"], res


@pytest.mark.parametrize("kw,why", [
    ({"kubeadm_config": True}, "its kubeadm-config exists"),
    ({"nodes": "node/dev-cp-0\nnode/dev-worker-0\n"}, "its API knows other nodes: node/dev-worker-0"),
    ({"config_fails": True}, "its API did not say whether kubeadm-config exists"),  # a 403, a timeout
    ({"nodes_fail": True}, "its API did not list its nodes"),
    ({"kubeadm_running": True}, "a kubeadm process still runs there"),
])
def test_a_half_made_init_is_never_reset_without_proof(tmp_path, kw, why):
    sb = make_sandbox(tmp_path, hostname="dev-cp-0")
    kw = dict(kw)
    config_fails, nodes_fail, running = (kw.pop(k, False) for k in ("config_fails", "nodes_fail", "kubeadm_running"))
    _half_made_api(sb, **kw)
    if config_fails:
        sb.stub("kubectl", "*get configmap kubeadm-config*", exit=1, stderr="Error from server (Forbidden)\n")
    if nodes_fail:
        sb.stub("kubectl", "*get nodes -o name*", exit=1, stderr="Unable to connect to the server\n")
    if running:
        sb.stub("pgrep", "-x kubeadm", exit=0, stdout="4242\n")
    res = sb.run("cluster/init.sh", INIT, stdin=init_config())
    assert res.rc == 1 and why in res.stderr and f"kubeadm reset -f --cri-socket {CONTAINERD}" in res.stderr, res
    assert not res.called("kubeadm")
