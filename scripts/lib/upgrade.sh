#!/usr/bin/env bash
set -euo pipefail
# katak8s in-place Kubernetes upgrades (components/cluster/upgrade.py says which command runs
# which part, in which order): the cluster side, run on the first control plane with its
# admin.conf (the version gate, kubeadm-config's removed gates, drain before and uncordon
# after each node), and kubeadm's own step on each node (`upgrade apply` on the first
# control plane, `upgrade node` elsewhere; kubeadm upgrade is designed to be re-run,
# upgrades.md §0.4). Functions only.
# reads: KUBERNETES_VERSION (vX.Y.Z, the target); DRAIN_TIMEOUT, UPGRADE_BATCH, READY_TIMEOUT,
#        UPGRADE_TARGET_ANNOTATION, UPGRADE_CORDON_ANNOTATION, REMOVED_GATES (array) where used.

ADMIN_CONF="${KATAK8S_ROOT}/etc/kubernetes/admin.conf"
UPGRADE_LOG="${KATAK8S_ROOT}/var/log/katak8s/kubeadm-upgrade.log"

kadm() { KUBECONFIG="${ADMIN_CONF}" kubectl "$@"; }

# minor_of vX.Y.Z -> Y
minor_of() {
  local rest=${1#v}
  rest=${rest#*.}
  printf '%s\n' "${rest%%.*}"
}

# older A B: version A is strictly older than version B (a leading v is ignored).
older() {
  [[ ${1#v} != "${2#v}" && "$(printf '%s\n%s\n' "${1#v}" "${2#v}" | sort -V | head -n1)" == "${1#v}" ]]
}

# annotation_path KEY: the JSONPath of a Node annotation (dots escaped, as kubectl wants).
annotation_path() { printf '.metadata.annotations.%s' "${1//./\\.}"; }

# node_field NODE JSONPATH: one field of a Node ("" when the Node does not exist); an
# unreachable API stops the step rather than passing for "absent".
node_field() {
  retry 5 kadm get node "$1" --ignore-not-found -o "jsonpath={$2}" \
    || fatal "cannot reach the API through ${ADMIN_CONF#"${KATAK8S_ROOT}"}; nothing was changed on $1." \
      "Fix the control plane, then run 'pulumi up' again"
}

# node_table COLUMN_PATH: "name value" per Node.
node_table() {
  retry 5 kadm get nodes --no-headers -o "custom-columns=NAME:.metadata.name,VALUE:$1" \
    || fatal "cannot list the Nodes through ${ADMIN_CONF#"${KATAK8S_ROOT}"}; fix the control plane, then 'pulumi up'"
}

# check_cluster_versions: before the first control plane moves to KUBERNETES_VERSION, no
# kubelet may be newer, none more than one minor older (kubeadm upgrades one minor at a
# time), and the kubelets not yet at the target must all run ONE version. Two would mean an
# earlier upgrade stopped half-way, which the stack cannot see at preview: a failed `pulumi
# up` records no new kubernetesVersion output (components/cluster/upgrade.py).
check_cluster_versions() {
  local name version want others=() behind=() newer=() distinct
  want=$(minor_of "${KUBERNETES_VERSION}")
  while read -r name version; do
    [[ -n ${name} && ${version} == v* && ${version} != "${KUBERNETES_VERSION}" ]] || continue
    if older "${KUBERNETES_VERSION}" "${version}"; then newer+=("${name}=${version}"); continue; fi
    (( want - $(minor_of "${version}") <= 1 )) || behind+=("${name}=${version}")
    others+=("${version}")
  done < <(node_table .status.nodeInfo.kubeletVersion)
  (( ${#newer[@]} == 0 )) || fatal "kubelets newer than ${KUBERNETES_VERSION}: ${newer[*]}. katak8s never" \
    "downgrades; set katak8s:kubernetesVersion to the cluster's version"
  (( ${#behind[@]} == 0 )) || fatal "kubelets more than one minor behind ${KUBERNETES_VERSION}: ${behind[*]}." \
    "kubeadm upgrades one minor at a time: set katak8s:kubernetesVersion to the next minor of those" \
    "nodes, run 'pulumi up' to finish that upgrade, then this one"
  distinct=$(printf '%s\n' "${others[@]}" | sed '/^$/d' | sort -uV)
  (( $(grep -c . <<<"${distinct}" || true) <= 1 )) || fatal "the nodes run kubelets $(tr '\n' ' ' <<<"${distinct}")" \
    "besides ${KUBERNETES_VERSION}: an earlier upgrade stopped half-way. Set katak8s:kubernetesVersion to" \
    "$(tail -n1 <<<"${distinct}" | sed 's/^v//') and run 'pulumi up' to finish it, then move on"
  log_info "every kubelet can move to ${KUBERNETES_VERSION}"
}

# strip_removed_gates: kubeadm errors on a feature gate it no longer knows, so gates removed
# by the target minor (REMOVED_GATES) leave kube-system/kubeadm-config before it runs.
strip_removed_gates() {
  local current stripped gate file
  (( ${#REMOVED_GATES[@]} )) || return 0
  current=$(retry 5 kadm -n kube-system get configmap kubeadm-config -o 'jsonpath={.data.ClusterConfiguration}') \
    || fatal "cannot read kube-system/kubeadm-config; fix the control plane, then 'pulumi up'"
  stripped=${current}
  for gate in "${REMOVED_GATES[@]}"; do
    stripped=$(sed -E "/^[[:space:]]+${gate}:[[:space:]]*(true|false)[[:space:]]*$/d" <<<"${stripped}")
  done
  [[ ${stripped} != "${current}" ]] || return 0
  log_warn "removing feature gates kubeadm ${KUBERNETES_VERSION} no longer knows (${REMOVED_GATES[*]})" \
    "from kube-system/kubeadm-config"
  file=$(mktemp)
  printf '%s\n' "${stripped}" >"${file}"
  kadm -n kube-system create configmap kubeadm-config --from-file=ClusterConfiguration="${file}" \
    --dry-run=client -o yaml | kadm replace -f - >&2 || fatal "could not update kube-system/kubeadm-config"
  rm -f "${file}"
}

# check_batch NODE: the upgrade holds at most UPGRADE_BATCH nodes cordoned at once (NODE too).
check_batch() {
  local held count
  held=$(node_table "$(annotation_path "${UPGRADE_CORDON_ANNOTATION}")" \
    | awk -v self="$1" '$1 != self && $2 != "<none>" { print $1 }')
  count=$(grep -c . <<<"${held}" || true)
  (( count < UPGRADE_BATCH )) || fatal "$1 is not drained: $(tr '\n' ' ' <<<"${held}")still hold the upgrade's" \
    "cordon and at most ${UPGRADE_BATCH} node(s) are upgraded at once. 'pulumi up' again finishes those" \
    "first. A node uncordoned by hand keeps the mark: kubectl annotate node NAME ${UPGRADE_CORDON_ANNOTATION}-"
}

# drain_for_upgrade NODE: cordon (marked as the upgrade's, so only such a node is uncordoned
# after) and drain NODE before its kubelet moves; the target annotation, set once the drain
# succeeded, says it is done. Nothing for a node not in the cluster yet (its join installs
# the target) or already running the target.
drain_for_upgrade() {
  local node=$1 have
  have=$(node_field "${node}" .status.nodeInfo.kubeletVersion)
  [[ -n ${have} && ${have} != "${KUBERNETES_VERSION}" ]] || return 0
  older "${have}" "${KUBERNETES_VERSION}" || fatal "${node} runs kubelet ${have}, newer than" \
    "${KUBERNETES_VERSION}; katak8s never downgrades"
  if [[ "$(node_field "${node}" .spec.unschedulable)" == true \
    && "$(node_field "${node}" "$(annotation_path "${UPGRADE_TARGET_ANNOTATION}")")" == "${KUBERNETES_VERSION}" ]]; then
    log_info "${node} is already drained for ${KUBERNETES_VERSION}"
    return 0
  fi
  check_batch "${node}"
  if [[ "$(node_field "${node}" .spec.unschedulable)" != true ]]; then
    # The mark before the cordon: stopped in between, a node is marked but schedulable
    # (harmless), never cordoned without the mark (left cordoned for good).
    kadm annotate node "${node}" --overwrite "${UPGRADE_CORDON_ANNOTATION}=${KUBERNETES_VERSION}" >&2
    kadm cordon "${node}" >&2
  fi
  log_info "draining ${node} for its upgrade from ${have} to ${KUBERNETES_VERSION} (at most ${DRAIN_TIMEOUT}s)"
  kadm drain "${node}" --ignore-daemonsets --delete-emptydir-data --timeout="${DRAIN_TIMEOUT}s" >&2 \
    || fatal "draining ${node} failed or took over ${DRAIN_TIMEOUT}s, so its upgrade stopped before" \
      "anything changed on it; it stays cordoned. Usual causes: a PodDisruptionBudget that allows no" \
      "disruption now, or a pod without a controller (kubectl output above). Fix that and run 'pulumi" \
      "up' again: the upgrade resumes at ${node}. Raise katak8s:drainTimeoutSeconds for slow drains"
  kadm annotate node "${node}" --overwrite "${UPGRADE_TARGET_ANNOTATION}=${KUBERNETES_VERSION}" >&2
}

node_ready() {
  [[ "$(kadm get node "$1" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" == True ]]
}

# finish_upgrade NODE: NODE runs the target; uncordon it if (and only if) the upgrade
# cordoned it, once Ready, and drop the upgrade's annotations.
finish_upgrade() {
  local node=$1 have
  have=$(node_field "${node}" .status.nodeInfo.kubeletVersion)
  [[ ${have} == "${KUBERNETES_VERSION}" ]] || fatal "${node} runs kubelet ${have:-(none)}, not" \
    "${KUBERNETES_VERSION}: its upgrade did not finish. 'pulumi up' again resumes at ${node}"
  if [[ -n "$(node_field "${node}" "$(annotation_path "${UPGRADE_CORDON_ANNOTATION}")")" ]]; then
    wait_for "${READY_TIMEOUT}" "${node} Ready" node_ready "${node}" || fatal "${node} runs" \
      "${KUBERNETES_VERSION} but is not Ready after ${READY_TIMEOUT}s, so it stays cordoned; see" \
      "'journalctl -u kubelet' there, then 'pulumi up' again"
    kadm uncordon "${node}" >&2
    kadm annotate node "${node}" "${UPGRADE_CORDON_ANNOTATION}-" >&2
    log_info "${node} runs ${KUBERNETES_VERSION}: uncordoned"
  fi
  if [[ -n "$(node_field "${node}" "$(annotation_path "${UPGRADE_TARGET_ANNOTATION}")")" ]]; then
    kadm annotate node "${node}" "${UPGRADE_TARGET_ANNOTATION}-" >&2
  fi
}

# manifests_at VERSION: the control-plane static pods run VERSION.
manifests_at() {
  local c
  for c in kube-apiserver kube-controller-manager kube-scheduler; do
    grep -qE "image:.*/${c}:$1([\"'[:space:]]|$)" "${KATAK8S_ROOT}/etc/kubernetes/manifests/${c}.yaml" 2>/dev/null \
      || return 1
  done
}

# run_kubeadm_upgrade ARGS...: kubeadm upgrade with its output in a root-only log.
run_kubeadm_upgrade() {
  mkdir -p "$(dirname "${UPGRADE_LOG}")"
  log_info "kubeadm upgrade $* on ${NODE_NAME}; log: ${UPGRADE_LOG#"${KATAK8S_ROOT}"}"
  if ! (umask 077 && kubeadm upgrade "$@" >>"${UPGRADE_LOG}" 2>&1); then
    tail -n 25 "${UPGRADE_LOG}" >&2
    fatal "kubeadm upgrade $1 failed on ${NODE_NAME} (above; ${UPGRADE_LOG#"${KATAK8S_ROOT}"} there). kubeadm" \
      "rolls back a static pod that does not come up (backups in /etc/kubernetes/tmp). Fix the cause" \
      "and run 'pulumi up' again: kubeadm upgrade is designed to be re-run"
  fi
}

# kubeadm_upgrade_apply: the first control plane. Skipped when its static pods and
# kubeadm-config already say the target; a half-done apply at the target is re-run with
# --force, kubeadm's documented recovery (upgrades.md §1.8).
kubeadm_upgrade_apply() {
  local stored
  stored=$(kadm -n kube-system get configmap kubeadm-config -o 'jsonpath={.data.ClusterConfiguration}' \
    | sed -n 's/^kubernetesVersion:[[:space:]]*//p' | tr -d "\"'")
  if [[ ${stored} == "${KUBERNETES_VERSION}" ]] && manifests_at "${KUBERNETES_VERSION}"; then
    log_info "the control plane already runs ${KUBERNETES_VERSION}"
    return 0
  fi
  if [[ ${stored} == "${KUBERNETES_VERSION}" ]]; then
    run_kubeadm_upgrade apply "${KUBERNETES_VERSION}" --yes --force
  else
    run_kubeadm_upgrade apply "${KUBERNETES_VERSION}" --yes
  fi
}

# kubeadm_upgrade_node: every other node; it rewrites the kubelet config (and, on a control
# plane, its static pods) from the cluster's configuration. Once per target.
kubeadm_upgrade_node() {
  step_done kubeadm-upgrade "${KUBERNETES_VERSION}" && return 0
  run_kubeadm_upgrade node
  mark_step kubeadm-upgrade "${KUBERNETES_VERSION}"
}
