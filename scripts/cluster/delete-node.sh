#!/usr/bin/env bash
set -euo pipefail
# Last step of one node's scale-in, run from the first control plane: delete its Node
# object, after drain.sh drained it and reset.sh ran `kubeadm reset` on it. This is
# upstream's order (drain, reset, delete; upstream-bootstrap.md §3.6): a control plane's
# `kubeadm reset` reads its Node object to find and remove its etcd member, so the Node
# must still exist then. Only a cordoned or not-Ready node is deleted: a schedulable, Ready
# one was not drained by katak8s (its credentials were replaced by hand?), and deleting it
# would cut a live node out of the cluster.
# inputs: NODE_NAME
# shellcheck source=scripts/lib/common.sh
source "${KATAK8S_LIB:-$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh}"
# shellcheck source=/dev/null
source "${KATAK8S_PARAMS:-${1:?usage: $0 PARAMS_FILE}}"

ADMIN_CONF="${KATAK8S_ROOT}/etc/kubernetes/admin.conf"
# "<name>,<unschedulable>,<Ready status>"; nothing at all when the Node does not exist.
STATE_PATH='jsonpath={.metadata.name},{.spec.unschedulable},{.status.conditions[?(@.type=="Ready")].status}'

kube() { KUBECONFIG="${ADMIN_CONF}" kubectl "$@"; }

# node_state: the Node's state; an unreachable API is an error, not "absent".
node_state() {
  [[ -f "${ADMIN_CONF}" ]] || fatal "no ${ADMIN_CONF#"${KATAK8S_ROOT}"} here: cannot delete node ${NODE_NAME}"
  retry 5 kube get node "${NODE_NAME}" --ignore-not-found -o "${STATE_PATH}" \
    || fatal "cannot reach the API to delete node ${NODE_NAME}; its server was NOT deleted. Fix the" \
      "control plane, then run 'pulumi up' again"
}

main() {
  local state name unschedulable ready
  require_root
  state=$(node_state)
  if [[ -z "${state}" ]]; then
    log_info "${NODE_NAME} is not in the cluster: no Node object to delete"
    return 0
  fi
  IFS=, read -r name unschedulable ready <<<"${state}"
  if [[ "${unschedulable}" != true && "${ready}" == True ]]; then
    fatal "${NODE_NAME} is schedulable and Ready: it was not drained, so its Node object is kept." \
      "To remove the node, drain it first ('kubectl drain ${NODE_NAME} --ignore-daemonsets" \
      "--delete-emptydir-data'), then run 'pulumi up' again"
  fi
  kube delete node "${name}" --ignore-not-found >&2
  log_info "${NODE_NAME} removed from the cluster"
}

main "$@"
