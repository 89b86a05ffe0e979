#!/usr/bin/env bash
set -euo pipefail
# Membership of one node, seen from the first control plane: wait (bounded) until the
# joined node is registered in the API. Its delete twin, drain.sh, removes the node before
# its server goes. Registration, not Ready: a node is Ready only once the CNI runs, and
# Calico is installed after the cluster forms. During an upgrade it is also the node's last
# upgrade step: once the node runs the target and is Ready, it is uncordoned if the upgrade
# cordoned it (scripts/remote/lib/upgrade.sh finish_upgrade). Otherwise it reads only.
# inputs: NODE_NAME, REGISTER_TIMEOUT (seconds), KUBERNETES_VERSION (vX.Y.Z), READY_TIMEOUT,
#         UPGRADE_TARGET_ANNOTATION, UPGRADE_CORDON_ANNOTATION
# shellcheck source=scripts/remote/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
# shellcheck source=/dev/null
source "${KATAK8S_PARAMS:-${1:?usage: $0 PARAMS_FILE}}"
# katak8s-lib: lib/upgrade.sh
# shellcheck source=scripts/remote/lib/upgrade.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/upgrade.sh"

# registered: the Node object exists.
registered() {
  [[ -n "$(KUBECONFIG="${ADMIN_CONF}" kubectl get node "${NODE_NAME}" --ignore-not-found -o name)" ]]
}

main() {
  require_root
  wait_for "${REGISTER_TIMEOUT}" "node ${NODE_NAME} registered" registered \
    || fatal "${NODE_NAME} joined but is not registered after ${REGISTER_TIMEOUT}s; inspect" \
      "'journalctl -u kubelet' on ${NODE_NAME} and 'kubectl get csr' here"
  finish_upgrade "${NODE_NAME}"
}

main "$@"
