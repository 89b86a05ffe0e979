#!/usr/bin/env bash
set -euo pipefail
# kubeadm join of one node (a worker, or an extra control plane), once. The rendered
# JoinConfiguration arrives on stdin because it holds a bootstrap token (and for a control
# plane a certificate key): it is written root-only, used, and removed; never echoed.
# A node that already has /etc/kubernetes/kubelet.conf is not joined again; it is checked
# against the stack instead (its join completed, container runtime) and drift is refused.
# A joined node at an older Kubernetes is upgraded here, after the first control plane
# drained it (its join-credentials step): kubeadm, `kubeadm upgrade node`, the runtime,
# kubelet and kubectl (scripts/remote/lib/node-upgrade.sh).
# inputs: NODE_NAME, KUBERNETES_VERSION (vX.Y.Z), CRI_SOCKET, CONTROL_PLANE (true|false),
#         MINT_RESOURCE (the Pulumi name of this node's join-credentials command),
#         KUBERNETES_REPO_URL, CONTAINER_RUNTIME, CRIO_REPO_URL, READY_TIMEOUT, RUNTIME_WAIT_SECONDS;
# stdin: the rendered JoinConfiguration (components/cluster/kubeadm.py render_join_config).
# shellcheck source=scripts/remote/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
# shellcheck source=/dev/null
source "${KATAK8S_PARAMS:-${1:?usage: $0 PARAMS_FILE}}"
# katak8s-lib: lib/etcd.sh
# shellcheck source=scripts/remote/lib/etcd.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/etcd.sh"
# katak8s-lib: lib/kube.sh
# shellcheck source=scripts/remote/lib/kube.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/kube.sh"
# katak8s-lib: lib/node-upgrade.sh
# shellcheck source=scripts/remote/lib/node-upgrade.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/node-upgrade.sh"

K8S_DIR="${KATAK8S_ROOT}/etc/kubernetes"
CONFIG="${K8S_DIR}/katak8s/kubeadm-join.yaml"
LOG="${KATAK8S_ROOT}/var/log/katak8s/kubeadm-join.log"
JOIN_DONE="${KATAK8S_STATE_DIR}/kubeadm-join.done"

# check_runtime: the requested runtime's socket must exist (the runtime phase made it).
check_runtime() {
  local socket="${KATAK8S_ROOT}${CRI_SOCKET#unix://}"
  [[ -e "${socket}" ]] || fatal "${NODE_NAME} has no ${CRI_SOCKET}: its container runtime is not" \
    "the one the stack asks for. Changing containerRuntime on a deployed node is refused;" \
    "restore the previous value, or scale the node in and out again"
}

# check_joined_node: a joined node must be registered, run the requested kubelet version
# and use the requested runtime.
check_joined_node() {
  local have endpoint
  # kubelet.conf comes from kubelet-start, before a control plane's etcd join: without the
  # mark, a killed join (SSH drop, interrupt) would pass for a complete one.
  [[ -f "${JOIN_DONE}" ]] || fatal "${NODE_NAME} has ${KUBELET_CONF#"${KATAK8S_ROOT}"} but its kubeadm" \
    "join never completed (killed half-way?). Run 'sudo kubeadm reset -f' on ${NODE_NAME} and, if" \
    "it is listed, 'kubectl delete node ${NODE_NAME}', then 'pulumi up' again"
  retry 3 env KUBECONFIG="${KUBELET_CONF}" kubectl get node "${NODE_NAME}" -o name >/dev/null \
    || fatal "${NODE_NAME} has ${KUBELET_CONF#"${KATAK8S_ROOT}"} but cannot read its Node object: the" \
      "API is unreachable, a previous join stopped half-way, or the node was deleted from the" \
      "cluster. In the last two cases run 'sudo kubeadm reset -f' on ${NODE_NAME}, then 'pulumi up'"
  have=$(kubelet --version | awk '{print $2}')
  if older "${KUBERNETES_VERSION}" "${have}"; then
    fatal "${NODE_NAME} runs kubelet ${have}, newer than the ${KUBERNETES_VERSION} the stack asks for;" \
      "kubeadm has no downgrade. Set katak8s:kubernetesVersion back to ${have#v}"
  fi
  endpoint=$(joined_runtime_endpoint)
  if [[ -n "${endpoint}" ]] && ! same_socket "${endpoint}" "${CRI_SOCKET}"; then
    fatal "${NODE_NAME} joined with the runtime at ${endpoint}, but the stack asks for ${CRI_SOCKET}." \
      "Changing containerRuntime on a joined node is refused; restore the previous value, or" \
      "scale the node in and out again"
  fi
  check_runtime
  upgrade_joined_node
}

# upgrade_joined_node: bring a joined node to KUBERNETES_VERSION; nothing when it runs it.
upgrade_joined_node() {
  local want=${KUBERNETES_VERSION#v}
  if node_at "${NODE_NAME}" "${want}"; then
    log_info "${NODE_NAME} already joined and runs ${KUBERNETES_VERSION}: nothing to do"
    return 0
  fi
  log_info "upgrading ${NODE_NAME} to ${KUBERNETES_VERSION}"
  kube_repository
  install_kube "${want}" kubeadm
  kubeadm_upgrade_node
  upgrade_node_packages "${NODE_NAME}" "${want}" "${READY_TIMEOUT}"
  log_info "${NODE_NAME} runs ${KUBERNETES_VERSION}; the first control plane uncordons it next"
}

# save_config: the JoinConfiguration, readable by root only.
save_config() {
  [[ -n "${JOIN_CONFIG}" ]] || fatal "no JoinConfiguration on stdin; run this phase through 'pulumi up'"
  (umask 077 && mkdir -p "$(dirname "${CONFIG}")")
  printf '%s\n' "${JOIN_CONFIG}" | write_file "${CONFIG}" 0600 || true
}

# explain_failure: turn kubeadm's known join errors into what the operator must do.
explain_failure() {
  if grep -qiE 'JWS signature|token id .* is invalid|expired' "${LOG}"; then
    log_warn "the bootstrap token was refused: it expired (it lives a short while) before the join" \
      "ran. Mint a fresh one: find the URN of ${MINT_RESOURCE} with 'pulumi stack --show-urns'" \
      "and run 'pulumi up --replace <that URN>'"
  elif grep -qi 'already exists in the cluster' "${LOG}"; then
    log_warn "a Node named ${NODE_NAME} is still registered; drain and delete it first:" \
      "kubectl drain ${NODE_NAME} --ignore-daemonsets --delete-emptydir-data; kubectl delete node ${NODE_NAME}"
  fi
}

# join: kubeadm join; its output goes to a root-only log. A failed join is reset at once:
# the node had no kubelet.conf before, so this only undoes the failed attempt.
join() {
  log_info "kubeadm join of ${NODE_NAME} (control plane: ${CONTROL_PLANE}); log: ${LOG#"${KATAK8S_ROOT}"}"
  mkdir -p "$(dirname "${LOG}")"
  if ! (umask 077 && kubeadm join --config "${CONFIG}" >"${LOG}" 2>&1); then
    tail -n 25 "${LOG}" | sed -E 's/[a-z0-9]{6}\.[a-z0-9]{16}/<token>/g; s/[0-9a-f]{64}/<hex>/g' >&2
    explain_failure
    log_warn "undoing the partial join with 'kubeadm reset -f' so the next 'pulumi up' starts clean"
    local reset_output
    reset_output=$(kubeadm reset -f --cri-socket "${CRI_SOCKET}" 2>&1) || log_warn "kubeadm reset failed too"
    printf '%s\n' "${reset_output}" >>"${LOG}"
    # A control plane that got as far as its etcd join leaves a member behind unless the
    # reset removed it (issue #12): say so, as scale-in does (scripts/remote/cluster/reset.sh).
    if [[ "${CONTROL_PLANE}" == true ]] && etcd_member_left "${reset_output}"; then
      log_warn "the reset did NOT remove the etcd member of ${NODE_NAME}. $(etcd_member_fix "${NODE_NAME}")," \
        "before 'pulumi up' tries the join again"
    fi
    rm -f "${CONFIG}"
    fatal "kubeadm join failed on ${NODE_NAME} (see above and ${LOG#"${KATAK8S_ROOT}"} there)"
  fi
  rm -f "${CONFIG}"
  mark_done kubeadm-join
}

main() {
  require_root
  JOIN_CONFIG=$(cat)
  if [[ -f "${KUBELET_CONF}" ]]; then
    check_joined_node
    return 0
  fi
  check_runtime
  save_config
  join
}

main "$@"
