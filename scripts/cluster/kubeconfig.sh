#!/usr/bin/env bash
set -euo pipefail
# Print the cluster's admin kubeconfig on stdout, for Pulumi to keep as a secret output
# (the command runs with logging off and a secret stdout). Reads only; changes nothing.
# inputs: NODE_NAME
# shellcheck source=scripts/lib/common.sh
source "${KATAK8S_LIB:-$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh}"
# shellcheck source=/dev/null
source "${KATAK8S_PARAMS:-${1:?usage: $0 PARAMS_FILE}}"

ADMIN_CONF="${KATAK8S_ROOT}/etc/kubernetes/admin.conf"

# print_admin_conf: the file as kubeadm wrote it; the program rewrites its server address.
print_admin_conf() {
  [[ -s "${ADMIN_CONF}" ]] || fatal "${ADMIN_CONF#"${KATAK8S_ROOT}"} is missing or empty on" \
    "${NODE_NAME}: kubeadm init has not completed there; run 'pulumi up' again"
  grep -q '^clusters:' "${ADMIN_CONF}" || fatal "${ADMIN_CONF#"${KATAK8S_ROOT}"} on ${NODE_NAME}" \
    "is not a kubeconfig (no clusters:); regenerate it with 'sudo kubeadm init phase kubeconfig admin'"
  cat "${ADMIN_CONF}"
}

main() {
  require_root
  print_admin_conf
}

main "$@"
