#!/usr/bin/env bash
set -euo pipefail
# katak8s in-place Kubernetes upgrades, the cluster side (components/cluster/upgrade.py says
# which command runs which part, in which order): run on the first control plane with its
# admin.conf, the version gate, kubeadm-config's removed gates, `kubeadm upgrade apply`, and
# the drain before and uncordon after each node. The node side (`kubeadm upgrade node`, the
# runtime, kubelet and kubectl) is scripts/remote/lib/node-upgrade.sh. Functions only.
# reads: KUBERNETES_VERSION (vX.Y.Z, the target); DRAIN_TIMEOUT, UPGRADE_BATCH, READY_TIMEOUT,
#        UPGRADE_TARGET_ANNOTATION, UPGRADE_CORDON_ANNOTATION, REMOVED_GATES (array) where used.

ADMIN_CONF="${KATAK8S_ROOT}/etc/kubernetes/admin.conf"

kadm() { KUBECONFIG="${ADMIN_CONF}" kubectl "$@"; }

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
  local name version want others=() behind=() newer=() distinct rows
  want=$(minor_of "${KUBERNETES_VERSION}")
  rows=$(node_table .status.nodeInfo.kubeletVersion)  # assigned first: a failed read stops here
  while read -r name version; do
    [[ -n ${name} && ${version} == v* && ${version} != "${KUBERNETES_VERSION}" ]] || continue
    if older "${KUBERNETES_VERSION}" "${version}"; then newer+=("${name}=${version}"); continue; fi
    (( want - $(minor_of "${version}") <= 1 )) || behind+=("${name}=${version}")
    others+=("${version}")
  done <<<"${rows}"
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
  local held count rows
  rows=$(node_table "$(annotation_path "${UPGRADE_CORDON_ANNOTATION}")")
  held=$(awk -v self="$1" '$1 != self && $2 != "<none>" { print $1 }' <<<"${rows}")
  count=$(grep -c . <<<"${held}" || true)
  (( count < UPGRADE_BATCH )) || fatal "$1 is not drained: $(tr '\n' ' ' <<<"${held}")still hold the upgrade's" \
    "cordon and at most ${UPGRADE_BATCH} node(s) are upgraded at once. 'pulumi up' again finishes those" \
    "first. A node uncordoned by hand keeps the mark: kubectl annotate node NAME ${UPGRADE_CORDON_ANNOTATION}-"
}

# keep_within_batch NODE WAS_CORDONED: check_batch reads, then the drain marks: two drains
# started at the same moment (the graph chains them, but not when the stack's last outputs
# were lost) could both pass it. So after marking, the marks are read again: with more than
# UPGRADE_BATCH, this drain undoes what it did (never an earlier run's cordon and mark) and
# stops. Both may stop then, never both go on; the next `pulumi up` tries again.
keep_within_batch() {
  local node=$1 was=$2 rows count
  rows=$(node_table "$(annotation_path "${UPGRADE_CORDON_ANNOTATION}")")
  count=$(awk '$2 != "<none>"' <<<"${rows}" | grep -c . || true)
  (( count <= UPGRADE_BATCH )) && return 0
  if [[ ${was} != true ]]; then
    kadm uncordon "${node}" >&2
    kadm annotate node "${node}" "${UPGRADE_CORDON_ANNOTATION}-" >&2
  fi
  fatal "another node's upgrade drain started at the same moment as ${node}'s, and at most" \
    "${UPGRADE_BATCH} node(s) are upgraded at once: ${node} was not drained. 'pulumi up' again goes" \
    "on, one batch at a time"
}

# drain_for_upgrade NODE: cordon (marked as the upgrade's, so only such a node is uncordoned
# after) and drain NODE before its kubelet moves; the target annotation, set once the drain
# succeeded, says it is done. Nothing for a node not in the cluster yet (its join installs
# the target) or already running the target.
drain_for_upgrade() {
  local node=$1 have cordoned drained
  have=$(node_field "${node}" .status.nodeInfo.kubeletVersion)
  [[ -n ${have} && ${have} != "${KUBERNETES_VERSION}" ]] || return 0
  older "${have}" "${KUBERNETES_VERSION}" || fatal "${node} runs kubelet ${have}, newer than" \
    "${KUBERNETES_VERSION}; katak8s never downgrades"
  # Each read assigned first: an API that fails must stop the step, never pass for "not
  # cordoned" (the upgrade would then mark, and later uncordon, an operator's cordon).
  cordoned=$(node_field "${node}" .spec.unschedulable)
  drained=$(node_field "${node}" "$(annotation_path "${UPGRADE_TARGET_ANNOTATION}")")
  if [[ ${cordoned} == true && ${drained} == "${KUBERNETES_VERSION}" ]]; then
    log_info "${node} is already drained for ${KUBERNETES_VERSION}"
    return 0
  fi
  check_batch "${node}"
  if [[ ${cordoned} != true ]]; then
    # The mark before the cordon: stopped in between, a node is marked but schedulable
    # (harmless), never cordoned without the mark (left cordoned for good).
    kadm annotate node "${node}" --overwrite "${UPGRADE_CORDON_ANNOTATION}=${KUBERNETES_VERSION}" >&2
    kadm cordon "${node}" >&2
  fi
  keep_within_batch "${node}" "${cordoned}"
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
  local node=$1 have mark target
  have=$(node_field "${node}" .status.nodeInfo.kubeletVersion)
  [[ ${have} == "${KUBERNETES_VERSION}" ]] || fatal "${node} runs kubelet ${have:-(none)}, not" \
    "${KUBERNETES_VERSION}: its upgrade did not finish. 'pulumi up' again resumes at ${node}"
  mark=$(node_field "${node}" "$(annotation_path "${UPGRADE_CORDON_ANNOTATION}")")
  target=$(node_field "${node}" "$(annotation_path "${UPGRADE_TARGET_ANNOTATION}")")
  if [[ -n ${mark} ]]; then
    wait_for "${READY_TIMEOUT}" "${node} Ready" node_ready "${node}" || fatal "${node} runs" \
      "${KUBERNETES_VERSION} but is not Ready after ${READY_TIMEOUT}s, so it stays cordoned; see" \
      "'journalctl -u kubelet' there, then 'pulumi up' again"
    kadm uncordon "${node}" >&2
    kadm annotate node "${node}" "${UPGRADE_CORDON_ANNOTATION}-" >&2
    log_info "${node} runs ${KUBERNETES_VERSION}: uncordoned"
  fi
  if [[ -n ${target} ]]; then
    kadm annotate node "${node}" "${UPGRADE_TARGET_ANNOTATION}-" >&2
  fi
  # What the stack records as the cluster's version (components/cluster/upgrade.py): the
  # kubelet this node runs, read here, not assumed.
  printf 'kubelet=%s\n' "${have}"
}

# kubeadm_upgrade_apply: the first control plane, once per target: its mark is written only
# after kubeadm succeeded, so an apply that failed in a later phase (kubelet-config, addons,
# post-upgrade) runs again; at the version the cluster already has, kubeadm skips the static
# pods that are equal and runs the rest (phases/upgrade staticpods.go upgradeComponent), so
# no --force is needed (upgrades.md §1.8). Then the saved init config names the new version:
# join-credentials.sh passes it to `kubeadm init phase upload-certs`, which refuses a
# kubernetesVersion below the new kubeadm's oldest supported control plane.
kubeadm_upgrade_apply() {
  if ! step_done kubeadm-upgrade-apply "${KUBERNETES_VERSION}"; then
    run_kubeadm_upgrade apply "${KUBERNETES_VERSION}" --yes
    mark_step kubeadm-upgrade-apply "${KUBERNETES_VERSION}"
  fi
  local saved="${KATAK8S_ROOT}/etc/kubernetes/katak8s/kubeadm-init.yaml"
  if [[ -f ${saved} ]] && ! grep -qx "kubernetesVersion: ${KUBERNETES_VERSION}" "${saved}"; then
    sed "s/^kubernetesVersion: .*/kubernetesVersion: ${KUBERNETES_VERSION}/" "${saved}" | write_file "${saved}" 0600 || true
    grep -qx "kubernetesVersion: ${KUBERNETES_VERSION}" "${saved}" || fatal "could not write ${KUBERNETES_VERSION}" \
      "into ${saved#"${KATAK8S_ROOT}"}; a control plane's join would fail. Fix the file, then 'pulumi up'"
  fi
}
