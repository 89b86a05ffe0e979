"""A test cluster for the upgrade steps: one stub sandbox per node (tests/sandbox.py) around
one fake Kubernetes API (tests/fake_kubectl.sh), with kubeadm, the kubelet and the package
repositories faked just enough to carry a node from one version to the next.

    cluster = FakeCluster(tmp_path, runtime="containerd", ubuntu="24.04")
    cp0 = cluster.node("dev-cp-0", "1.36.4", control_plane=True, first=True)
    w0 = cluster.node("dev-worker-0", "1.36.4")
    cluster.offer("1.37.1")                      # pkgs.k8s.io (and CRI-O) carry the target
    res = cluster.run(cp0, "cluster/init.sh", params, stdin=...)

The fakes keep state where a real node keeps it: the packages in the sandbox's dpkg state,
the static pods' image tags in /etc/kubernetes/manifests, the kubelet's reported version
and the cordon and annotations on the fake Node (written when `systemctl restart kubelet`
runs: the running kubelet is the installed one from then on).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from sandbox import Sandbox

from components import versions as v

FAKE_KUBECTL = (Path(__file__).resolve().parent / "fake_kubectl.sh").read_text()
ADMIN_CONF = ("apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    server: https://10.42.0.11:6443\n"
              "  name: dev\nusers:\n- name: kubernetes-admin\n  user: {}\n")
CONTROL_PLANE = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")

# kubeadm: `upgrade apply vX` rewrites the static pods and kubeadm-config; `upgrade node`
# rewrites a control plane's static pods to the version of the installed kubeadm;
# `config images list` names the minor's pause image (versions.PAUSE_IMAGES).
FAKE_KUBEADM = r"""
api=${FAKE_API:-${SB}/api}
want=""
case "$1 $2" in
  "upgrade apply") want=$3 ;;
  "upgrade node") want=v$(cut -d- -f1 "${STATE}/dpkg/kubeadm") ;;
  "config images") v=${5#v}; grep "^${v%.*} " "${SB}/pause-images" | cut -d' ' -f2; exit 0 ;;
  "token create") echo "abcdef.0123456789abcdef"; exit 0 ;;
  *) exit 0 ;;
esac
[[ -f ${SB}/kubeadm-upgrade-fails ]] && { echo "[upgrade] FATAL: fake failure" >&2; exit 1; }
if [[ $2 == apply ]]; then
  sed -i "s/^kubernetesVersion: .*/kubernetesVersion: ${want}/" "${api}/cluster-config"
fi
for c in kube-apiserver kube-controller-manager kube-scheduler; do
  f=${ROOT}/etc/kubernetes/manifests/${c}.yaml
  [[ -f ${f} ]] && printf '    image: registry.k8s.io/%s:%s\n' "${c}" "${want}" >"${f}"
done
# A failure after the static pods and kubeadm-config moved (in the addon phase, say).
[[ -f ${SB}/kubeadm-fails-late ]] && { echo "[upgrade/addons] FATAL: fake late failure" >&2; exit 1; }
echo "[upgrade] SUCCESS"
"""
FAKE_KUBELET = r"""echo "Kubernetes v$(cut -d- -f1 "${STATE}/dpkg/kubelet")" """
# The running kubelet becomes the installed one when it restarts.
RESTART_KUBELET = r"""
do_systemctl "$@"
api=${FAKE_API:-${SB}/api}
node=$(cat "${STATE}/facts/hostname")
printf 'v%s' "$(cut -d- -f1 "${STATE}/dpkg/kubelet")" >"${api}/nodes/${node}/kubelet"
"""


def deb(version: str) -> str:
    return f"{version}-1.1"


@dataclass
class Node:
    name: str
    sb: Sandbox
    control_plane: bool

    @property
    def api_dir(self) -> Path:
        return Path(self.sb.env_extra["FAKE_API"]) / "nodes" / self.name


def live_node(sb: Sandbox, name: str, version: str, *, api: Path, runtime: str = "containerd",
              control_plane: bool = False, first: bool = False) -> None:
    """Make `sb` a node that joined (or, `first`, initialised) a cluster at `version`, with the
    fake API at `api` (kubectl's default is <sandbox>/api)."""
    (api / "nodes").mkdir(parents=True, exist_ok=True)
    if not (api / "cluster-config").exists():
        (api / "cluster-config").write_text(
            f"apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nkubernetesVersion: v{version}\n")
    sb.stub("kubectl", "*", run=FAKE_KUBECTL)
    sb.stub("kubeadm", "*", run=FAKE_KUBEADM)
    sb.stub("kubelet", "--version", run=FAKE_KUBELET)
    sb.stub("systemctl", "restart kubelet", run=RESTART_KUBELET)
    (sb.base / "pause-images").write_text("".join(f"{m} {p}\n" for m, p in v.PAUSE_IMAGES.items()))
    for pkg in ("kubeadm", "kubelet", "kubectl"):
        sb.installed(pkg, deb(version))
    sb.unit("kubelet")
    sb.unit(runtime)
    sb.write(v.CRI_SOCKETS[runtime].removeprefix("unix:///"), "")
    pause = v.PAUSE_IMAGES[version.rsplit(".", 1)[0]]
    sb.write("etc/katak8s/pause-image", pause + "\n")
    if runtime == "crio":
        sb.installed("cri-o", f"{version.rsplit('.', 1)[0]}.0-1.1")
        sb.write("etc/crio/crio.conf.d/50-katak8s.conf", f'[crio.image]\n  pause_image = "{pause}"\n')
    else:
        sb.write("etc/containerd/conf.d/10-katak8s.toml", f"    sandbox = '{pause}'\n")
    sb.write("etc/kubernetes/kubelet.conf", "apiVersion: v1\n", 0o600)
    sb.write("var/lib/katak8s/kubeadm-join.done", "done\n")
    minor = version.rsplit(".", 1)[0]
    repos = [("kubernetes", v.KUBERNETES_APT_REPO)] + ([("cri-o", v.CRIO_APT_REPO)] if runtime == "crio" else [])
    for repo, url in repos:  # as apt_source (scripts/remote/lib/common.sh) left them
        sb.write(f"etc/apt/keyrings/{repo}-apt-keyring.gpg", "keyring\n")
        sb.write(f"etc/apt/sources.list.d/{repo}.sources",
                 f"Types: deb\nURIs: {url.format(minor=minor)}\nSuites: /\n"
                 f"Signed-By: /etc/apt/keyrings/{repo}-apt-keyring.gpg\n")
    if control_plane:
        sb.write("etc/kubernetes/admin.conf", ADMIN_CONF, 0o600)
        for c in CONTROL_PLANE:
            sb.write(f"etc/kubernetes/manifests/{c}.yaml", f"    image: registry.k8s.io/{c}:v{version}\n")
    if first:
        pki = sb.path("etc/kubernetes/pki")
        pki.mkdir(parents=True)
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-nodes", "-keyout", str(pki / "ca.key"), "-out", str(pki / "ca.crt"),
                        "-subj", "/CN=kubernetes", "-days", "1"], check=True, capture_output=True)
        sb.write("var/lib/katak8s/kubeadm-init.done", "done\n")
        sb.write("etc/kubernetes/katak8s/kubeadm-init.yaml",
                 f"controlPlaneEndpoint: 10.42.0.11:6443\nkubernetesVersion: v{version}\n", 0o600)
    api_node = api / "nodes" / name
    (api_node / "annotations").mkdir(parents=True)
    (api_node / "kubelet").write_text(f"v{version}")


class FakeCluster:
    def __init__(self, base: Path, *, runtime: str = "containerd", ubuntu: str = "24.04",
                 cluster_version: str = "1.36.4"):
        self.base, self.runtime, self.ubuntu = base, runtime, ubuntu
        self.api = base / "api"
        (self.api / "nodes").mkdir(parents=True)
        (self.api / "cluster-config").write_text(
            f"apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nkubernetesVersion: v{cluster_version}\n")
        self.nodes: dict[str, Node] = {}
        self.versions: list[str] = []

    def node(self, name: str, version: str, *, control_plane: bool = False, first: bool = False) -> Node:
        """A node that joined (or, `first`, initialised) the cluster at `version`."""
        sb = Sandbox(self.base / name, ubuntu=self.ubuntu, hostname=name)
        sb.env_extra = {"FAKE_API": str(self.api)}
        live_node(sb, name, version, api=self.api, runtime=self.runtime, control_plane=control_plane, first=first)
        node = Node(name, sb, control_plane)
        self.nodes[name] = node
        for offered in self.versions:
            self._offer(node, offered)
        return node

    def offer(self, version: str) -> None:
        """pkgs.k8s.io (and CRI-O's stream) carry `version` from now on, on every node."""
        self.versions.insert(0, version)
        for node in self.nodes.values():
            self._offer(node, version)

    def _offer(self, node: Node, version: str) -> None:
        known = [deb(x) for x in self.versions]
        for pkg in ("kubeadm", "kubelet", "kubectl"):
            node.sb.package(pkg, *known)
        node.sb.package("cri-o", *(f"{x.rsplit('.', 1)[0]}.0-1.1" for x in self.versions))
        for url in (v.KUBERNETES_APT_REPO, v.CRIO_APT_REPO):
            node.sb.serve(url.format(minor=version.rsplit(".", 1)[0]) + "Release.key",
                          "-----BEGIN PGP PUBLIC KEY BLOCK-----\n")

    def run(self, node: Node, script: str, params, *, stdin: str | None = None):
        return node.sb.run(script, params, env=node.sb.env_extra, stdin=stdin)

    def api_log(self) -> list[str]:
        log = self.api / "log"
        return log.read_text().splitlines() if log.exists() else []

    def cordoned(self) -> set[str]:
        return {d.name for d in (self.api / "nodes").iterdir() if (d / "unschedulable").exists()}

    def kubelet(self, name: str) -> str:
        return (self.api / "nodes" / name / "kubelet").read_text()

    def annotations(self, name: str) -> dict[str, str]:
        d = self.api / "nodes" / name / "annotations"
        return {p.name.replace("_", "/"): p.read_text() for p in d.iterdir()}

    def cluster_version(self) -> str:
        text = (self.api / "cluster-config").read_text()
        return next(line.split(": ")[1] for line in text.splitlines() if line.startswith("kubernetesVersion"))


# Upgrade parameters for tests that build a script's parameters by hand (the program's come
# from components/cluster/upgrade.py).
NODE_UPGRADE = dict(kubernetes_repo_url=v.KUBERNETES_APT_REPO.format(minor="1.36"), container_runtime="containerd",
                    crio_repo_url="", ready_timeout=20, runtime_wait_seconds=20)
CLUSTER_UPGRADE = dict(drain_timeout=60, upgrade_batch=1)
