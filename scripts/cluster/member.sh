#!/usr/bin/env bash
set -euo pipefail
# Membership of one node, seen from the first control plane: wait (bounded) until the
# joined node is registered in the API. Its delete twin, drain.sh, removes the node before
# its server goes. Registration, not Ready: a node is Ready only once the CNI runs, and
# Calico is installed after the cluster forms. Reads only; changes nothing.
# inputs: NODE_NAME, REGISTER_TIMEOUT (seconds)
# shellcheck source=scripts/lib/common.sh
source "${KATAK8S_LIB:-$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh}"
# shellcheck source=/dev/null
source "${KATAK8S_PARAMS:-${1:?usage: $0 PARAMS_FILE}}"

ADMIN_CONF="${KATAK8S_ROOT}/etc/kubernetes/admin.conf"

# registered: the Node object exists.
registered() {
  [[ -n "$(KUBECONFIG="${ADMIN_CONF}" kubectl get node "${NODE_NAME}" --ignore-not-found -o name)" ]]
}

main() {
  require_root
  wait_for "${REGISTER_TIMEOUT}" "node ${NODE_NAME} registered" registered \
    || fatal "${NODE_NAME} joined but is not registered after ${REGISTER_TIMEOUT}s; inspect" \
      "'journalctl -u kubelet' on ${NODE_NAME} and 'kubectl get csr' here"
}

main "$@"
