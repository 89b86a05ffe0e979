#!/usr/bin/env bash
set -euo pipefail
# Wait, from the first control plane, until the OpenStack cloud controller initialized every
# Node: each kubelet registers with the node.cloudprovider.kubernetes.io/uninitialized taint
# (cloud-provider external), which only the controller removes. Its Helm release being
# "ready" does not show that: while the nodes are NotReady the DaemonSet desires no pod, so
# helm's readiness passes at once (helm pkg/kube/ready.go daemonSetReady). Bounded; on a
# timeout the tainted nodes and the controller's last log lines say why.
# inputs: UNINITIALIZED_TAINT, INIT_TIMEOUT (seconds), CONTROLLER (its DaemonSet, kube-system)
# shellcheck source=scripts/remote/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
# shellcheck source=/dev/null
source "${KATAK8S_PARAMS:-${1:?usage: $0 PARAMS_FILE}}"

ADMIN_CONF="${KATAK8S_ROOT}/etc/kubernetes/admin.conf"
TAINTS='{range .items[*]}{.metadata.name}{" "}{.spec.taints[*].key}{"\n"}{end}'

kube() { KUBECONFIG="${ADMIN_CONF}" kubectl --request-timeout=30s "$@"; }

# uninitialized: the nodes that still carry the taint; fails when the API does not answer.
uninitialized() {
  local out
  out=$(kube get nodes -o "jsonpath=${TAINTS}") || return 1
  awk -v t="${UNINITIALIZED_TAINT}" '{ for (i = 2; i <= NF; i++) if ($i == t) print $1 }' <<<"${out}"
}

all_initialized() {
  local left
  left=$(uninitialized) || return 1
  [[ -z "${left}" ]]
}

main() {
  require_root
  [[ -f "${ADMIN_CONF}" ]] || fatal "no ${ADMIN_CONF#"${KATAK8S_ROOT}"} here: not the first control plane"
  if wait_for "${INIT_TIMEOUT}" "every node initialized by the cloud controller" all_initialized; then
    return 0
  fi
  local left logs
  left=$(uninitialized 2>/dev/null || echo "(the API does not answer)")
  logs=$(kube --namespace kube-system logs "daemonset/${CONTROLLER}" --tail=20 2>&1 || true)
  fatal "after ${INIT_TIMEOUT}s the cloud controller has not initialized: ${left//$'\n'/ }. Its last log" \
    "lines: ${logs//$'\n'/ | }. Usual causes: its application credential lacks a role" \
    "(cloudCredentialRoles), Keystone's public endpoint or its CA is not reachable from the nodes, or a" \
    "node's provider ID names no server. Fix it and run 'pulumi up' again"
}

main "$@"
