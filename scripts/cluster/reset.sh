#!/usr/bin/env bash
# Undo a join on the node itself, after drain.sh removed it from the cluster: kubeadm
# reset, then what reset leaves behind (CNI config, iptables rules; upstream-bootstrap.md
# §3.6). On a control plane, kubeadm reset also removes its etcd member.
# inputs: NODE_NAME, CRI_SOCKET
set -euo pipefail
# shellcheck source=scripts/lib/common.sh
source "${KATAK8S_LIB:-$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh}"
# shellcheck source=/dev/null
source "${KATAK8S_PARAMS:-${1:?usage: $0 PARAMS_FILE}}"

K8S_DIR="${KATAK8S_ROOT}/etc/kubernetes"

# joined: anything kubeadm join or init leaves on a node.
joined() {
  [[ -f "${K8S_DIR}/kubelet.conf" || -f "${K8S_DIR}/bootstrap-kubelet.conf" ]] \
    || compgen -G "${K8S_DIR}/manifests/*.yaml" >/dev/null
}

# flush_iptables: kube-proxy's and Calico's rules (kubeadm reset leaves them).
flush_iptables() {
  iptables -F && iptables -t nat -F && iptables -t mangle -F && iptables -X
}

# reset_node: kubeadm reset, then the CNI config and the iptables rules it keeps.
reset_node() {
  kubeadm reset -f --cri-socket "${CRI_SOCKET}" >&2 || fatal "kubeadm reset failed on ${NODE_NAME}"
  rm -rf "${KATAK8S_ROOT}/etc/cni/net.d"
  if ! flush_iptables; then
    log_warn "could not flush iptables on ${NODE_NAME}; reboot it or flush by hand"
  fi
  rm -f "${K8S_DIR}/katak8s/kubeadm-join.yaml"
}

main() {
  require_root
  if ! joined; then
    log_info "${NODE_NAME} holds no kubeadm state: nothing to reset"
    return 0
  fi
  reset_node
  log_info "${NODE_NAME} reset"
}

main "$@"
