#!/usr/bin/env bash
set -euo pipefail
# Last step of one node's scale-in, run from the first control plane: delete its Node
# object, after drain.sh drained it and reset.sh ran `kubeadm reset` on it. This is
# upstream's order (drain, reset, delete; upstream-bootstrap.md §3.6): a control plane's
# `kubeadm reset` reads its Node object to find and remove its etcd member, so the Node
# must still exist then. Only a cordoned or not-Ready node is deleted: a schedulable, Ready
# one was not drained by katak8s (its credentials were replaced by hand?), and deleting it
# would cut a live node out of the cluster. A control plane is deleted only once etcd's own
# member list no longer names it (review-node F10): reset.sh checks kubeadm's output, but
# only on the run that resets, and a retried scale-in must not trust that one-time check.
# inputs: NODE_NAME, CONTROL_PLANE, ETCD_POD
# shellcheck source=scripts/remote/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
# shellcheck source=/dev/null
source "${KATAK8S_PARAMS:-${1:?usage: $0 PARAMS_FILE}}"
# katak8s-lib: lib/etcd.sh
# shellcheck source=scripts/remote/lib/etcd.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/etcd.sh"

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

# refuse_live_etcd_member: etcd still lists NODE_NAME (`etcdctl member list` in the first
# control plane's etcd pod, the image ships etcdctl). An unanswered question is a refusal too:
# deleting the Node and then the server would leave a member that counts against quorum.
refuse_live_etcd_member() {
  local members
  [[ ${CONTROL_PLANE} == true ]] || return 0
  members=$(retry 3 kube -n kube-system exec "${ETCD_POD}" -- etcdctl --endpoints=https://127.0.0.1:2379 \
    --cacert=/etc/kubernetes/pki/etcd/ca.crt --cert=/etc/kubernetes/pki/etcd/server.crt \
    --key=/etc/kubernetes/pki/etcd/server.key member list -w simple) || fatal "cannot list the etcd" \
    "members (kubectl -n kube-system exec ${ETCD_POD} -- etcdctl member list), so ${NODE_NAME} is kept and" \
    "its server was NOT deleted; check etcd on the first control plane, then run 'pulumi up' again"
  if grep -qF ", ${NODE_NAME}, " <<<"${members}"; then
    fatal "etcd still lists a member for ${NODE_NAME}; its Node and server are kept. $(etcd_member_fix \
      "${NODE_NAME}"), then run 'pulumi up' again"
  fi
  # A member added by a join that died before its etcd started has no name yet (etcdctl
  # makeMemberListTable: "unstarted" when the name is empty), so the name cannot find it. It
  # still counts against quorum: refuse while one exists, whoever it was.
  if grep -qE '^[0-9a-f]+, unstarted, ' <<<"${members}"; then
    fatal "etcd lists an unstarted member (a control-plane join that died half-way?); ${NODE_NAME}'s Node" \
      "and server are kept until it is removed. $(etcd_member_fix "that member"), then run 'pulumi up' again"
  fi
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
  refuse_live_etcd_member
  kube delete node "${name}" --ignore-not-found >&2
  log_info "${NODE_NAME} removed from the cluster"
}

main "$@"
