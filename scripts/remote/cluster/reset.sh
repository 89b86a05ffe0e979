#!/usr/bin/env bash
set -euo pipefail
# Scale-in of one node, step 2 of 3, on the node itself, after drain.sh drained it and
# while its Node object still exists: kubeadm reset, then what reset leaves behind (CNI
# config, iptables rules; upstream-bootstrap.md §3.6). On a control plane, kubeadm reset
# also removes its etcd member; it finds the member through the Node object, and only
# WARNS when it cannot, so that warning stops the scale-in here (before delete-node.sh and
# the server deletion) instead of leaving a dead member that counts against etcd's quorum.
# inputs: NODE_NAME, CRI_SOCKET
# shellcheck source=scripts/remote/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
# shellcheck source=/dev/null
source "${KATAK8S_PARAMS:-${1:?usage: $0 PARAMS_FILE}}"
# katak8s-lib: lib/etcd.sh
# shellcheck source=scripts/remote/lib/etcd.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/etcd.sh"

K8S_DIR="${KATAK8S_ROOT}/etc/kubernetes"
ETCD_MANIFEST="${K8S_DIR}/manifests/etcd.yaml"

# joined: anything kubeadm join or init leaves on a node.
joined() {
  [[ -f "${K8S_DIR}/kubelet.conf" || -f "${K8S_DIR}/bootstrap-kubelet.conf" ]] \
    || compgen -G "${K8S_DIR}/manifests/*.yaml" >/dev/null
}

# flush_iptables: kube-proxy's and Calico's rules (kubeadm reset leaves them).
flush_iptables() {
  iptables -F && iptables -t nat -F && iptables -t mangle -F && iptables -X
}

# reset_node: kubeadm reset, then the CNI config and the iptables rules it keeps. Prints
# kubeadm's output on stderr and keeps it in RESET_OUTPUT.
reset_node() {
  RESET_OUTPUT=$(kubeadm reset -f --cri-socket "${CRI_SOCKET}" 2>&1) || {
    printf '%s\n' "${RESET_OUTPUT}" >&2
    fatal "kubeadm reset failed on ${NODE_NAME} (output above); fix the cause and run 'pulumi up' again"
  }
  printf '%s\n' "${RESET_OUTPUT}" >&2
  rm -rf "${KATAK8S_ROOT}/etc/cni/net.d"
  if ! flush_iptables; then
    log_warn "could not flush iptables on ${NODE_NAME}; reboot it or flush by hand"
  fi
  rm -f "${K8S_DIR}/katak8s/kubeadm-join.yaml" "${KATAK8S_STATE_DIR}/kubeadm-join.done"
}

# check_etcd_member: a control plane's reset must have removed its etcd member.
check_etcd_member() {
  etcd_member_left "${RESET_OUTPUT}" || return 0
  fatal "kubeadm reset on ${NODE_NAME} did NOT remove its etcd member (kubeadm's warning above), so" \
    "the scale-in stopped here: the node is reset, its Node object and server are kept." \
    "$(etcd_member_fix "${NODE_NAME}"), then run 'pulumi up' again"
}

main() {
  local control_plane=false
  require_root
  if ! joined; then
    log_info "${NODE_NAME} holds no kubeadm state: nothing to reset"
    return 0
  fi
  [[ -f "${ETCD_MANIFEST}" ]] && control_plane=true
  reset_node
  if [[ "${control_plane}" == true ]]; then
    check_etcd_member
  fi
  log_info "${NODE_NAME} reset"
}

main "$@"
