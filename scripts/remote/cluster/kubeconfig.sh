#!/usr/bin/env bash
set -euo pipefail
# Print the cluster's admin kubeconfig on stdout, for Pulumi to keep as a secret output
# (the command runs with logging off and a secret stdout). Reads only; changes nothing.
#
# Self-contained on purpose (katak8s-standalone: it sources no shared library): the Kubernetes
# provider's config is this command's stdout, so any change of this program makes the whole
# Kubernetes layer unknown in every PR preview (review-pulumi F8). Keep it tiny and stable.
#
# A failed command's error text carries its whole output, even with logging off
# (pulumi-command commandOutputs.go run), so every check runs BEFORE the first byte is
# printed and printing is the last step: no later failure can put the key into a log.
# inputs: NODE_NAME
# shellcheck source=/dev/null
source "${KATAK8S_PARAMS:-${1:?usage: $0 PARAMS_FILE}}"

ADMIN_CONF="${KATAK8S_ROOT:-}/etc/kubernetes/admin.conf"

fail() {
  printf '[katak8s %s] ERROR %s\n' "${KATAK8S_PHASE:-kubeconfig}" "$*" >&2
  exit 1
}

main() {
  local conf field
  [[ -n "${KATAK8S_ROOT:-}" || "$(id -u)" == 0 ]] || fail "run this phase as root (sudo)"
  [[ -s "${ADMIN_CONF}" ]] || fail "/etc/kubernetes/admin.conf is missing or empty on ${NODE_NAME}:" \
    "kubeadm init has not completed there; run 'pulumi up' again"
  conf=$(<"${ADMIN_CONF}")
  for field in clusters users; do
    grep -q "^${field}:" <<<"${conf}" || fail "/etc/kubernetes/admin.conf on ${NODE_NAME} is not a" \
      "complete kubeconfig (no ${field}:); regenerate it with 'sudo kubeadm init phase kubeconfig admin'"
  done
  printf '%s\n' "${conf}"
}

main "$@"
