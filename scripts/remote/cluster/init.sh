#!/usr/bin/env bash
set -euo pipefail
# kubeadm init on the first control plane, exactly once. A node that already has
# /etc/kubernetes/admin.conf is never initialised again. If that init completed (its mark
# in /var/lib/katak8s), the node is checked against the stack instead: a different API
# endpoint or network is refused, and an older Kubernetes is upgraded in place, the first
# step of the whole upgrade (upgrade_first_control_plane: the version gate, kubeadm-config's
# removed gates, `kubeadm upgrade apply`, then this node drained, its kubelet upgraded,
# uncordoned; scripts/remote/lib/upgrade.sh, components/cluster/upgrade.py); if it did not (kubeadm failed or was killed, e.g. in
# wait-control-plane, before upload-config, bootstrap-token and the addons), the half-made
# control plane is reset and initialised again when that is provably safe, and refused with
# the exact command otherwise (review-node F18). Ends with a bounded wait on /readyz.
# inputs: NODE_NAME, KUBERNETES_VERSION (vX.Y.Z), READYZ_TIMEOUT (seconds), CRI_SOCKET;
#         for upgrades KUBERNETES_REPO_URL, CONTAINER_RUNTIME, CRIO_REPO_URL, READY_TIMEOUT,
#         RUNTIME_WAIT_SECONDS, DRAIN_TIMEOUT, UPGRADE_BATCH, REMOVED_GATES and the annotations;
# stdin: the rendered kubeadm config (components/cluster/kubeadm.py render_init_config).
# shellcheck source=scripts/remote/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
# shellcheck source=/dev/null
source "${KATAK8S_PARAMS:-${1:?usage: $0 PARAMS_FILE}}"
# katak8s-lib: lib/kube.sh
# shellcheck source=scripts/remote/lib/kube.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/kube.sh"
# katak8s-lib: lib/node-upgrade.sh
# shellcheck source=scripts/remote/lib/node-upgrade.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/node-upgrade.sh"
# katak8s-lib: lib/upgrade.sh
# shellcheck source=scripts/remote/lib/upgrade.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/upgrade.sh"

K8S_DIR="${KATAK8S_ROOT}/etc/kubernetes"
APISERVER_MANIFEST="${K8S_DIR}/manifests/kube-apiserver.yaml"
CONFIG="${K8S_DIR}/katak8s/kubeadm-init.yaml"
LOG="${KATAK8S_ROOT}/var/log/katak8s/kubeadm-init.log"
INIT_DONE="${KATAK8S_STATE_DIR}/kubeadm-init.done"

# config_value KEY: a top-level scalar of the requested config (quotes stripped).
config_value() {
  sed -n "s/^$1:[[:space:]]*//p" <<<"${REQUESTED}" | head -n1 | tr -d "\"'"
}

# saved_value KEY: a (possibly nested) scalar of the config kubeadm init used, if kept.
saved_value() {
  [[ -f "${CONFIG}" ]] || return 0
  sed -n "s/^[[:space:]]*$1:[[:space:]]*//p" "${CONFIG}" | head -n1 | tr -d "\"'"
}

# live_version: the Kubernetes version the API server static pod runs (from its image tag).
live_version() {
  [[ -f "${APISERVER_MANIFEST}" ]] || return 0
  sed -n 's#^[[:space:]-]*image:.*/kube-apiserver:\(v[0-9][0-9a-z.+-]*\).*#\1#p' "${APISERVER_MANIFEST}" | head -n1
}

# check_live_cluster: an initialised node must have finished its init and run what the
# stack asks for.
check_live_cluster() {
  local live want_endpoint live_endpoint
  [[ -f "${INIT_DONE}" ]] || fatal "${ADMIN_CONF#"${KATAK8S_ROOT}"} exists but kubeadm init never" \
    "completed on ${NODE_NAME}: a previous kubeadm init stopped half-way, so the cluster lacks what its" \
    "last phases create (kubeadm-config, bootstrap-token RBAC, kube-proxy, CoreDNS) and no node" \
    "could join. Run 'sudo kubeadm reset -f' on ${NODE_NAME} (this wipes that half-made control" \
    "plane), then 'pulumi up' again"
  live=$(live_version)
  [[ -n "${live}" ]] || fatal "${ADMIN_CONF#"${KATAK8S_ROOT}"} exists but no kube-apiserver manifest" \
    "names a version: a previous kubeadm init stopped half-way. Run 'sudo kubeadm reset -f' on" \
    "${NODE_NAME} (this wipes that half-made control plane), then 'pulumi up' again"
  if older "${KUBERNETES_VERSION}" "${live}"; then
    fatal "the cluster runs Kubernetes ${live}, newer than the ${KUBERNETES_VERSION} the stack asks for;" \
      "kubeadm has no downgrade. Set katak8s:kubernetesVersion back to ${live#v}"
  fi
  want_endpoint=$(config_value controlPlaneEndpoint)
  live_endpoint=$(sed -n 's#^[[:space:]]*server:[[:space:]]*https://##p' "${ADMIN_CONF}" | head -n1)
  if [[ "${live_endpoint}" != "${want_endpoint}" ]]; then
    fatal "the cluster's API endpoint is ${live_endpoint} but the stack now asks for" \
      "${want_endpoint}. kubeadm cannot move controlPlaneEndpoint of a live cluster (it is in" \
      "every certificate and kubeconfig): restore the previous controlPlaneCount / API" \
      "endpoint, or rebuild the cluster (pulumi destroy, then pulumi up)"
  fi
  check_networks
  check_serving_certificates
  log_info "${NODE_NAME} was initialised (Kubernetes ${live} at ${live_endpoint}): nothing to initialise"
}

# control_plane_at VERSION: kubeadm init or upgrade apply brought the control plane to VERSION
# (their mark); a cluster initialised before the mark existed counts when its static pods run
# it. Only for skipping the whole upgrade: kubeadm_upgrade_apply itself trusts the mark alone.
control_plane_at() {
  step_done kubeadm-upgrade-apply "$1" && return 0
  [[ ! -f "${KATAK8S_STATE_DIR}/kubeadm-upgrade-apply.done" ]] && manifests_at "$1"
}

# upgrade_first_control_plane: the first node of an upgrade to KUBERNETES_VERSION, in
# kubeadm's order (upgrades.md §1.3): apply BEFORE the drain (its health check needs a
# schedulable node), then drain, runtime and kubelet, uncordon. Each part skips what is done.
upgrade_first_control_plane() {
  local want=${KUBERNETES_VERSION#v}
  if node_at "${NODE_NAME}" "${want}" && control_plane_at "${KUBERNETES_VERSION}"; then
    finish_upgrade "${NODE_NAME}" >/dev/null  # nothing to do, or a run stopped before the uncordon
    return 0
  fi
  log_info "upgrading the cluster to ${KUBERNETES_VERSION}, starting with ${NODE_NAME}"
  check_cluster_versions
  strip_removed_gates
  kube_repository
  install_kube "${want}" kubeadm
  kubeadm_upgrade_apply
  drain_for_upgrade "${NODE_NAME}"
  upgrade_node_packages "${NODE_NAME}" "${want}" "${READY_TIMEOUT}"
  finish_upgrade "${NODE_NAME}" >/dev/null
}

# check_networks: podSubnet and serviceSubnet are fixed at init (kube-apiserver,
# kube-controller-manager, kube-proxy and every Service IP use them); a change is refused.
check_networks() {
  local key want have
  for key in podSubnet serviceSubnet; do
    have=$(saved_value "${key}")
    want=$(sed -n "s/^[[:space:]]*${key}:[[:space:]]*//p" <<<"${REQUESTED}" | head -n1 | tr -d "\"'")
    [[ -z "${have}" || "${have}" == "${want}" ]] || fatal "the cluster was initialised with ${key}" \
      "${have}, but the stack now asks for ${want}. kubeadm cannot change it on a live cluster:" \
      "set podCidr / serviceCidr back to ${have}, or rebuild the cluster (pulumi destroy, then pulumi up)"
  done
}

# check_serving_certificates: serverTLSBootstrap is fixed at init too (kubeadm uploads it in
# the kubelet-config ConfigMap every node reads). The stack settles it from its last outputs
# (components/deployed.py); when they were lost, or a first `pulumi up` stopped after this
# init, it may ask otherwise, and the approver the kubelets need could go: refused. A node
# without the saved configuration says nothing either way (as check_networks).
check_serving_certificates() {
  local have want
  [[ -f "${CONFIG}" ]] || return 0
  have=$(saved_value serverTLSBootstrap)
  want=$(sed -n 's/^serverTLSBootstrap:[[:space:]]*//p' <<<"${REQUESTED}" | head -n1)
  [[ "${have:-false}" != "${want:-false}" ]] || return 0
  if [[ "${have}" == true ]]; then
    fatal "the cluster was initialised with kubelet serving certificates (serverTLSBootstrap), which" \
      "kubelet-csr-approver must keep approving, but the stack now asks for a cluster without them (its" \
      "last outputs could not be read, or its first 'pulumi up' stopped after kubeadm init). Set" \
      "katak8s:metricsServer true for the next 'pulumi up'; once one completes, metricsServer may go" \
      "false again (the approver stays: docs/kubernetes.md 'Metrics')"
  fi
  fatal "the cluster was initialised without kubelet serving certificates (its kubelets sign their own," \
    "which metrics-server cannot verify), but the stack now asks for them. Set katak8s:metricsServer" \
    "false (docs/kubernetes.md 'Metrics')"
}

# --- a kubeadm init that started here and never completed (no mark). Provably safe to reset:
# - kubeadm wrote no admin.conf: it stopped before any control-plane component existed (it
#   writes the kubeconfigs before the static pod manifests), so nothing ever ran;
# - or the half-made API answers, has no kubeadm-config ConfigMap (upload-config, the phase
#   after wait-control-plane, never ran, so no node could join: joins read it) and knows no
#   other node.
# Anything else (an API that does not answer, a kubeadm-config, other nodes) is not proof:
# refused with the exact command ---
half_made() {
  [[ ! -f "${INIT_DONE}" ]] || return 1
  [[ -f "${ADMIN_CONF}" ]] || compgen -G "${K8S_DIR}/manifests/*.yaml" >/dev/null \
    || [[ -d "${K8S_DIR}/pki" ]]
}

kube_quick() { KUBECONFIG="${ADMIN_CONF}" timeout 20 kubectl --request-timeout=10s "$@" 2>/dev/null; }

# Every probe must answer for the reset to be proven safe: a failed or refused query
# (a timeout, a 5xx, a 403 before kubeadm bound admin.conf's group) is no proof.
recover_half_made() {
  local why="" config others
  if pgrep -x kubeadm >/dev/null 2>&1; then
    why="a kubeadm process still runs there (an earlier init whose SSH session dropped?)"
  elif [[ -f "${ADMIN_CONF}" ]]; then
    if ! wait_for 120 "the half-made API server on ${NODE_NAME}" apiserver_ready; then
      why="its API server does not answer, so nothing proves no node joined it"
    elif ! config=$(kube_quick -n kube-system get configmap kubeadm-config --ignore-not-found -o name); then
      why="its API did not say whether kubeadm-config exists"
    elif [[ -n "${config}" ]]; then
      why="its kubeadm-config exists (init got past upload-config; nodes may have joined)"
    elif ! others=$(kube_quick get nodes -o name); then
      why="its API did not list its nodes"
    else
      others=$(grep -vxF "node/${NODE_NAME}" <<<"${others}" || true)
      [[ -z "${others}" ]] || why="its API knows other nodes: ${others//$'\n'/ }"
    fi
  fi
  [[ -z "${why}" ]] || fatal "a previous kubeadm init on ${NODE_NAME} never completed, and it is not" \
    "reset automatically: ${why}. Check it; to start over, run 'sudo kubeadm reset -f --cri-socket" \
    "${CRI_SOCKET}' on ${NODE_NAME} (this wipes that control plane), then 'pulumi up' again"
  log_warn "a previous kubeadm init on ${NODE_NAME} never completed and no node can have joined it:" \
    "resetting it and initialising again"
  kubeadm reset -f --cri-socket "${CRI_SOCKET}" >&2 || fatal "kubeadm reset failed on ${NODE_NAME}; run" \
    "'sudo kubeadm reset -f --cri-socket ${CRI_SOCKET}' there, then 'pulumi up' again"
  rm -f "${ADMIN_CONF}"  # kubeadm reset removes it; never taken for a cluster again
}

# save_config: the exact config kubeadm init reads, root-only.
save_config() {
  [[ -n "${REQUESTED}" ]] || fatal "no kubeadm configuration on stdin; run this phase through 'pulumi up'"
  [[ "$(config_value kubernetesVersion)" == "${KUBERNETES_VERSION}" ]] \
    || fatal "the kubeadm configuration on stdin is not for ${KUBERNETES_VERSION}"
  printf '%s\n' "${REQUESTED}" | write_file "${CONFIG}" 0600 || true
}

# redacted_tail FILE: the end of kubeadm's log with bootstrap tokens and keys masked.
redacted_tail() {
  tail -n 25 "$1" | sed -E 's/[a-z0-9]{6}\.[a-z0-9]{16}/<token>/g; s/[0-9a-f]{64}/<hex>/g' >&2
}

# initialise: kubeadm init. Its output names a bootstrap token, so it goes to a root-only
# log file on the node, never to Pulumi's log.
initialise() {
  log_info "kubeadm init on ${NODE_NAME} (Kubernetes ${KUBERNETES_VERSION}); log: ${LOG#"${KATAK8S_ROOT}"}"
  mkdir -p "$(dirname "${LOG}")"
  if ! (umask 077 && kubeadm init --config "${CONFIG}" >"${LOG}" 2>&1); then
    redacted_tail "${LOG}"
    fatal "kubeadm init failed on ${NODE_NAME} (last lines above; full log in" \
      "${LOG#"${KATAK8S_ROOT}"} there). Fix the cause and run 'pulumi up' again: it resets the" \
      "half-made control plane first when that is safe (or says 'sudo kubeadm reset -f' otherwise)"
  fi
  mark_done kubeadm-init
  mark_step kubeadm-upgrade-apply "${KUBERNETES_VERSION}"  # the control plane's version (upgrade_first_control_plane)
}

# apiserver_ready: one /readyz probe through the admin kubeconfig.
apiserver_ready() {
  [[ "$(KUBECONFIG="${ADMIN_CONF}" kubectl get --raw=/readyz 2>/dev/null)" == "ok" ]]
}

wait_ready() {
  wait_for "${READYZ_TIMEOUT}" "kube-apiserver /readyz on ${NODE_NAME}" apiserver_ready \
    || fatal "the API server on ${NODE_NAME} is not ready after ${READYZ_TIMEOUT}s; inspect" \
      "'crictl ps -a' and 'journalctl -u kubelet' there. If kubeadm init never finished," \
      "run 'sudo kubeadm reset -f' on ${NODE_NAME} and 'pulumi up' again"
}

main() {
  require_root
  REQUESTED=$(cat)
  if half_made; then recover_half_made; fi
  if [[ -f "${ADMIN_CONF}" ]]; then
    check_live_cluster
    wait_ready
    upgrade_first_control_plane
  else
    save_config
    initialise
    wait_ready
  fi
  # What the stack records as the cluster's version (components/cluster/upgrade.py): the
  # kubelet this node runs, read here, not assumed.
  local have
  have=$(node_field "${NODE_NAME}" .status.nodeInfo.kubeletVersion)
  printf 'kubelet=%s\n' "${have}"
}

main "$@"
