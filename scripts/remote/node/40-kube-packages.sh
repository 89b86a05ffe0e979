#!/usr/bin/env bash
set -euo pipefail
# kubeadm, kubelet and kubectl from pkgs.k8s.io for the Kubernetes minor, at the exact patch
# (the Debian revision read from `apt-cache madison`, never constructed) and held. A node
# that already joined at an older version keeps its packages: the upgrade steps move it,
# drained (scripts/remote/lib/upgrade.sh). Control-plane nodes pre-pull their images.
# inputs: KUBERNETES_VERSION (1.M.P), KUBERNETES_REPO_URL, CRI_SOCKET, PREPULL_IMAGES,
#         CONTAINER_RUNTIME
# shellcheck source=scripts/remote/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
# shellcheck source=/dev/null
source "${KATAK8S_PARAMS:-${1:?usage: $0 PARAMS_FILE}}"

# katak8s-lib: lib/kube.sh
# shellcheck source=scripts/remote/lib/kube.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/kube.sh"

# --- a joined node changes version only through the upgrade steps, drained, one node (or
# one batch) at a time (components/cluster/upgrade.py): here it keeps its packages ---
JOINED_OLDER=false
check_joined_version() {
  local have
  [[ -f "${KUBELET_CONF}" ]] || return 0
  # The kubelet decides, not kubeadm: the first control plane's upgrade installs the new
  # kubeadm before its drain, and a re-run here must not then move the kubelet undrained.
  have=$(pkg_version kubelet)
  have=${have%%-*}
  [[ -n ${have} && ${have} != "${KUBERNETES_VERSION}" ]] || return 0
  if [[ "$(printf '%s\n%s\n' "${have}" "${KUBERNETES_VERSION}" | sort -V | head -n1)" == "${KUBERNETES_VERSION}" ]]; then
    fatal "this node runs kubelet ${have}, newer than the ${KUBERNETES_VERSION} the stack asks for;" \
      "kubeadm has no downgrade. Set katak8s:kubernetesVersion back to ${have}"
  fi
  JOINED_OLDER=true
  log_info "this node joined the cluster at ${have}: the upgrade steps move it to ${KUBERNETES_VERSION}," \
    "drained; its packages stay as they are here"
}

# --- control planes pull their images before kubeadm init/join (once per version) ---
prepull_images() {
  [[ ${PREPULL_IMAGES} == true ]] || return 0
  step_done images "${KUBERNETES_VERSION}" && return 0
  retry 3 kubeadm config images pull --kubernetes-version "v${KUBERNETES_VERSION}" \
    --cri-socket "${CRI_SOCKET}" >&2 || fatal "cannot pull the control-plane images; check the" \
    "node's route to registry.k8s.io"
  mark_step images "${KUBERNETES_VERSION}"
}

main() {
  require_root
  check_joined_version
  kube_repository
  [[ ${JOINED_OLDER} == true ]] && return 0
  install_kube "${KUBERNETES_VERSION}" kubeadm kubelet kubectl
  systemctl is-enabled --quiet kubelet || systemctl enable kubelet
  # The runtime's sandbox image follows the installed kubeadm (review-node F12): switched,
  # with a runtime restart, only while the node has not joined (no pods); warned otherwise.
  if [[ -f "${KUBELET_CONF}" ]]; then
    align_pause_image "${KUBERNETES_VERSION}" false
  else
    align_pause_image "${KUBERNETES_VERSION}" true
  fi
  prepull_images
  log_info "kubeadm, kubelet and kubectl ${KUBERNETES_VERSION} installed and held"
}

main "$@"
