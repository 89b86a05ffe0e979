#!/usr/bin/env bash
set -euo pipefail
# katak8s: the node half of an in-place upgrade (components/cluster/upgrade.py), on a node
# the first control plane has drained: `kubeadm upgrade node`, CRI-O's minor, the pause
# image of the new kubeadm, kubelet and kubectl, and the kubelet restarted onto the new
# version. Used by scripts/remote/cluster/init.sh and join.sh, after scripts/remote/lib/kube.sh.
# Functions only.
# reads: KUBERNETES_VERSION (vX.Y.Z), CRIO_REPO_URL, CRI_SOCKET, CONTAINER_RUNTIME,
#        RUNTIME_WAIT_SECONDS, NODE_NAME; KUBELET_CONF (kube.sh).

UPGRADE_LOG="${KATAK8S_ROOT}/var/log/katak8s/kubeadm-upgrade.log"

# --- the node half of an upgrade -------------------------------------------------------------

# self_field NODE JSONPATH: a field of this node's own Node object, read with the kubelet's
# credentials (the Node authorizer lets a kubelet read its own Node).
self_field() {
  KUBECONFIG="${KUBELET_CONF}" kubectl get node "$1" -o "jsonpath=$2"
}

# crio_at_minor MINOR: CRI-O is not the runtime, or its package is at MINOR (1.M).
crio_at_minor() {
  [[ ${CONTAINER_RUNTIME} != crio ]] && return 0
  local have
  have=$(pkg_version cri-o)
  [[ ${have} == "$1".* ]]
}

# upgrade_crio MINOR: CRI-O follows the Kubernetes minor, from that minor's stream, inside the
# drain window (upgrades.md §3.1: kubespray runs the container-engine role there too).
upgrade_crio() {
  local minor=$1
  crio_at_minor "${minor}" && return 0
  apt_source cri-o "${CRIO_REPO_URL}" || true
  apt_update "check the node's route to download.opensuse.org, then re-run"
  apt_get install --allow-change-held-packages cri-o || fatal "apt-get install cri-o from ${CRIO_REPO_URL} failed"
  hold_packages cri-o
  crio_at_minor "${minor}" || fatal "${CRIO_REPO_URL} installed cri-o $(pkg_version cri-o), not ${minor}.x;" \
    "check the repository, then run 'pulumi up' again"
  runtime_lock
  systemctl restart crio || fatal "crio did not restart; see 'journalctl -u crio'"
  wait_for "${RUNTIME_WAIT_SECONDS:-120}" "CRI-O API" crictl --runtime-endpoint "${CRI_SOCKET}" info \
    || fatal "CRI-O did not answer after its upgrade; see 'journalctl -u crio'"
  runtime_unlock
}

# reports_kubelet NODE VERSION: the Node object shows kubelet vVERSION.
reports_kubelet() {
  [[ "$(self_field "$1" '{.status.nodeInfo.kubeletVersion}')" == "v$2" ]]
}

# node_at NODE VERSION: kubelet and kubectl installed at VERSION (1.M.P), CRI-O (if it is the
# runtime) at its minor, and NODE's running kubelet reporting VERSION: the node half is done.
node_at() {
  at_patch "$2" kubelet kubectl && crio_at_minor "${2%.*}" && reports_kubelet "$1" "$2"
}

# upgrade_node_packages NODE VERSION TIMEOUT: on a node the first control plane has drained:
# the runtime (CRI-O's minor; the pause image of the new kubeadm), then kubelet and kubectl,
# a restart, and a bounded wait until the node reports the new kubelet. Refused on a node
# that is not cordoned: the kubelet of a minor upgrade must not restart under its pods
# (kubernetes.io version-skew policy: in-place minor kubelet upgrades are not supported).
upgrade_node_packages() {
  local node=$1 version=$2 timeout=$3
  if node_at "${node}" "${version}"; then
    log_info "${node} already runs kubelet v${version}"
    return 0
  fi
  [[ "$(self_field "${node}" '{.spec.unschedulable}')" == true ]] || fatal "${node} is not cordoned, so its" \
    "kubelet and runtime are not upgraded under its pods. The drain step on the first control plane" \
    "(its join-credentials command) runs before this one: run 'pulumi up' again"
  upgrade_crio "${version%.*}"
  align_pause_image "${version}" true
  install_kube "${version}" kubelet kubectl
  systemctl daemon-reload
  systemctl restart kubelet || fatal "the kubelet did not restart on ${node}; see 'journalctl -u kubelet'"
  wait_for "${timeout}" "${node} reporting kubelet v${version}" reports_kubelet "${node}" "${version}" \
    || fatal "${node} does not report kubelet v${version} after ${timeout}s; see 'journalctl -u kubelet'" \
      "there. 'pulumi up' again resumes here"
}

# --- kubeadm's own upgrade step on this node (kubeadm upgrade is designed to be re-run,
# upgrades.md §0.4) ---

# manifests_at VERSION: the control-plane static pods run VERSION.
manifests_at() {
  local c
  for c in kube-apiserver kube-controller-manager kube-scheduler; do
    grep -qE "image:.*/${c}:$1([\"'[:space:]]|$)" "${KATAK8S_ROOT}/etc/kubernetes/manifests/${c}.yaml" 2>/dev/null \
      || return 1
  done
}

# run_kubeadm_upgrade ARGS...: kubeadm upgrade with its output in a root-only log.
run_kubeadm_upgrade() {
  mkdir -p "$(dirname "${UPGRADE_LOG}")"
  log_info "kubeadm upgrade $* on ${NODE_NAME}; log: ${UPGRADE_LOG#"${KATAK8S_ROOT}"}"
  if ! (umask 077 && kubeadm upgrade "$@" >>"${UPGRADE_LOG}" 2>&1); then
    tail -n 25 "${UPGRADE_LOG}" >&2
    fatal "kubeadm upgrade $1 failed on ${NODE_NAME} (above; ${UPGRADE_LOG#"${KATAK8S_ROOT}"} there). kubeadm" \
      "rolls back a static pod that does not come up (backups in /etc/kubernetes/tmp). Fix the cause" \
      "and run 'pulumi up' again: kubeadm upgrade is designed to be re-run"
  fi
}

# kubeadm_upgrade_node: every other node; it rewrites the kubelet config (and, on a control
# plane, its static pods) from the cluster's configuration. Once per target.
kubeadm_upgrade_node() {
  step_done kubeadm-upgrade "${KUBERNETES_VERSION}" && return 0
  run_kubeadm_upgrade node
  mark_step kubeadm-upgrade "${KUBERNETES_VERSION}"
}
