#!/usr/bin/env bash
set -euo pipefail
# Scale-in of one node, step 1 of 3, run from the first control plane: cordon and drain it
# (through the eviction API, so PodDisruptionBudgets hold; bounded by DRAIN_TIMEOUT). The
# Node object stays: reset.sh (step 2, on the node) needs it to remove a control plane's
# etcd member, and delete-node.sh (step 3) deletes it afterwards. A drain that fails or
# times out stops here with a non-zero exit, so Pulumi stops the deletion: nothing is forced.
# Then it waits until no volume is attached to the node any more (its VolumeAttachments
# gone): the pods' volumes are detached while the node still exists, so they attach where
# the pods went instead of waiting on a server that is being deleted. Drain and detach
# together stay within DRAIN_TIMEOUT + DETACH_RESERVE seconds.
# inputs: NODE_NAME, DRAIN_TIMEOUT, DETACH_RESERVE (seconds)
# shellcheck source=scripts/remote/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
# shellcheck source=/dev/null
source "${KATAK8S_PARAMS:-${1:?usage: $0 PARAMS_FILE}}"

ADMIN_CONF="${KATAK8S_ROOT}/etc/kubernetes/admin.conf"

kube() { KUBECONFIG="${ADMIN_CONF}" kubectl "$@"; }

# node_present: true when the Node exists; an unreachable API is an error, not "absent".
node_present() {
  local out
  [[ -f "${ADMIN_CONF}" ]] || fatal "no ${ADMIN_CONF#"${KATAK8S_ROOT}"} here: cannot drain ${NODE_NAME}"
  out=$(retry 5 kube get node "${NODE_NAME}" --ignore-not-found -o name) \
    || fatal "cannot reach the API to drain ${NODE_NAME}; nothing was deleted. Fix the control" \
      "plane, then run 'pulumi up' again"
  [[ -n "${out}" ]]
}

# drain: cordon, then evict everything but DaemonSet pods. No --force (bare pods stop the
# drain) and no --disable-eviction (PDBs hold). emptyDir data is node-local: it goes with
# the node either way.
drain() {
  kube cordon "${NODE_NAME}" >&2
  if ! kube drain "${NODE_NAME}" --ignore-daemonsets --delete-emptydir-data \
    --timeout="${DRAIN_TIMEOUT}s" >&2; then
    fatal "draining ${NODE_NAME} failed or did not finish within ${DRAIN_TIMEOUT}s, so its removal" \
      "stopped here: the node stays cordoned and in the cluster, and its server was NOT deleted." \
      "Usual causes: a PodDisruptionBudget that allows no disruption now, or a pod without a" \
      "controller (see the kubectl output above). Fix the cause and run 'pulumi up' again; or," \
      "to keep the node, 'kubectl uncordon ${NODE_NAME}' and raise workerCount back. Forcing is" \
      "your call, never ours: 'kubectl drain ${NODE_NAME} --ignore-daemonsets" \
      "--delete-emptydir-data --force' then 'pulumi up'"
  fi
}

# attached: the VolumeAttachments still on the node, "<name> <PersistentVolume>" per line (the
# attach-detach controller deletes one once the CSI driver detached its volume; an inline
# volume has no PersistentVolume, hence the name).
attached() {
  kube get volumeattachments -o \
    "jsonpath={range .items[?(@.spec.nodeName==\"${NODE_NAME}\")]}{.metadata.name} {.spec.source.persistentVolumeName}{\"\\n\"}{end}"
}

none_attached() {
  local out
  out=$(attached) || return 1
  [[ -z "${out}" ]]
}

# wait_detached START: bounded by what is left of DRAIN_TIMEOUT + DETACH_RESERVE since START.
wait_detached() {
  local left=$(( $1 + DRAIN_TIMEOUT + DETACH_RESERVE - SECONDS ))
  (( left >= DETACH_RESERVE )) || left=${DETACH_RESERVE}
  if ! wait_for "${left}" "every volume detached from ${NODE_NAME}" none_attached; then
    local still
    still=$(attached 2>&1 | tr '\n' ' ' || true)
    fatal "volumes are still attached to ${NODE_NAME} after ${left}s (${still:-the API did not answer}), so" \
      "its removal stopped here: the node stays drained and cordoned, its server was NOT deleted. Usual" \
      "causes: the Cinder CSI controller is not running ('kubectl -n kube-system get pods | grep" \
      "cinder-csi'), Cinder is slow to detach ('openstack volume show <id>'), or a" \
      "DaemonSet pod still uses a claim. Fix the cause and run 'pulumi up' again"
  fi
}

main() {
  require_root
  if ! node_present; then
    log_info "${NODE_NAME} is not in the cluster: nothing to drain"
    return 0
  fi
  local start=${SECONDS}
  drain
  wait_detached "${start}"
  log_info "${NODE_NAME} drained, its volumes detached; it stays cordoned until its reset, then its Node" \
    "object goes"
}

main "$@"
