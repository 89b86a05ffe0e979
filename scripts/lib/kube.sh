#!/usr/bin/env bash
set -euo pipefail
# katak8s Kubernetes packages on one node: kubeadm, kubelet and kubectl from pkgs.k8s.io at
# an exact patch, held; the runtime's pause image following the installed kubeadm; and the
# node half of an in-place upgrade (`kubeadm upgrade node`, CRI-O's minor, the kubelet restarted onto the new
# version). Shared by scripts/node/40-kube-packages.sh (first install) and the upgrade paths
# of scripts/cluster/init.sh and join.sh. Functions only.
# reads: KUBERNETES_REPO_URL, CRI_SOCKET, CONTAINER_RUNTIME, PAUSE_FILE (common.sh);
#        CRIO_REPO_URL for upgrade_crio.

KUBELET_CONF="${KATAK8S_ROOT}/etc/kubernetes/kubelet.conf"
UPGRADE_LOG="${KATAK8S_ROOT}/var/log/katak8s/kubeadm-upgrade.log"

# kube_repository: pkgs.k8s.io has one repository per minor (upstream-bootstrap.md §2.4).
kube_repository() {
  apt_source kubernetes "${KUBERNETES_REPO_URL}" || return 0
  apt_update "check the node's route to $(cut -d/ -f3 <<<"${KUBERNETES_REPO_URL}")"
}

# at_patch VERSION PKG...: true when every PKG is installed at VERSION (1.M.P).
at_patch() {
  local want=$1 pkg have
  shift
  for pkg in "$@"; do
    have=$(pkg_version "${pkg}")
    [[ ${have%%-*} == "${want}" ]] || return 1
  done
}

# kube_revision VERSION: the repository's exact Debian revision, e.g. 1.36.4-1.1.
kube_revision() {
  apt-cache madison kubeadm | awk -F'|' -v want="$1" \
    '{ gsub(/ /, "", $2); split($2, v, "-"); if (v[1] == want) { print $2; exit } }'
}

# install_kube VERSION PKG...: PKG at VERSION (the revision read, never constructed), held.
install_kube() {
  local want=$1 rev pkgs=() pkg
  shift
  if ! at_patch "${want}" "$@"; then
    rev=$(kube_revision "${want}")
    if [[ -z ${rev} ]]; then
      apt_get update || true
      rev=$(kube_revision "${want}")
    fi
    [[ -n ${rev} ]] || fatal "kubeadm ${want} is not in ${KUBERNETES_REPO_URL};" \
      "available: $(apt-cache madison kubeadm | awk -F'|' '{gsub(/ /, "", $2); printf "%s ", $2}')." \
      "Set katak8s:kubernetesVersion to one of them"
    for pkg in "$@"; do pkgs+=("${pkg}=${rev}"); done
    apt_get install --allow-change-held-packages "${pkgs[@]}" || fatal "apt-get install ${pkgs[*]} failed"
  fi
  # Held: an unattended upgrade must never move the cluster's version.
  hold_packages "$@"
}

# --- the runtime's sandbox image follows the installed kubeadm (review-node F12) ---
RUNTIME_CONFIGS=(
  "/etc/containerd/conf.d/10-katak8s.toml|sandbox = '%s'|^([[:space:]]*)sandbox = '[^']*'"
  "/etc/containerd/config.toml|sandbox_image = \"%s\"|^([[:space:]]*)sandbox_image = \"[^\"]*\""
  "/etc/crio/crio.conf.d/50-katak8s.conf|pause_image = \"%s\"|^([[:space:]]*)pause_image = \"[^\"]*\""
)
# configured_pause: the sandbox image the runtime's config names now (the first we find).
configured_pause() {
  local entry file format pattern value
  for entry in "${RUNTIME_CONFIGS[@]}"; do
    IFS='|' read -r file format pattern <<<"${entry}"
    [[ -f "${KATAK8S_ROOT}${file}" ]] || continue
    value=$(grep -m1 -E "${pattern}" "${KATAK8S_ROOT}${file}" | sed -E "s#.*[\"']([^\"']+)[\"'].*#\\1#")
    [[ -n ${value} ]] || continue
    printf '%s\n' "${value}"
    return 0
  done
}

# align_pause_image VERSION MAY_RESTART: write kubeadm VERSION's pause image where the runtime
# phase put its guess, and restart the runtime. Only where MAY_RESTART is true (no pods: the
# node has not joined, or it is drained); otherwise a different image is only warned about.
align_pause_image() {
  local version=$1 may_restart=$2 want have entry file format pattern line changed=0 unit
  want=$(kubeadm config images list --kubernetes-version "v${version}" 2>/dev/null | grep -m1 -E '/pause:' || true)
  [[ -n ${want} ]] || { log_warn "kubeadm listed no pause image; the runtime keeps its own"; return 0; }
  have=$(configured_pause)
  if [[ ${may_restart} != true ]]; then
    [[ -z ${have} || ${have} == "${want}" ]] || log_warn "kubeadm ${version} expects ${want}, the runtime" \
      "uses ${have}; a joined node keeps it until its next upgrade drains it (kubeadm only warns)"
    return 0
  fi
  printf '%s\n' "${want}" | write_file "${PAUSE_FILE}" 0644 || true
  for entry in "${RUNTIME_CONFIGS[@]}"; do
    IFS='|' read -r file format pattern <<<"${entry}"
    file="${KATAK8S_ROOT}${file}"
    if [[ ! -f ${file} ]] || ! grep -qE "${pattern}" "${file}"; then continue; fi
    # shellcheck disable=SC2059  # the format is ours (RUNTIME_CONFIGS)
    line=$(printf "${format}" "${want}")
    if grep -qF "${line}" "${file}"; then continue; fi
    sed -E "s#${pattern}#\\1${line}#" "${file}" | write_file "${file}" 0644 && changed=1
  done
  (( changed )) || return 0
  unit=${CONTAINER_RUNTIME}
  log_info "the runtime now uses kubeadm's pause image ${want}: restarting ${unit} (not joined, or drained)"
  runtime_lock  # never under the kata phase's smoke sandbox
  systemctl restart "${unit}" || fatal "${unit} did not restart; see 'journalctl -u ${unit}'"
  wait_for 60 "${unit} CRI API" crictl --runtime-endpoint "${CRI_SOCKET}" info \
    || fatal "${unit} did not answer after its restart; see 'journalctl -u ${unit}'"
  runtime_unlock
}

# --- the node half of an upgrade -------------------------------------------------------------

# self_field NODE JSONPATH: a field of this node's own Node object, read with the kubelet's
# credentials (the Node authorizer lets a kubelet read its own Node).
self_field() {
  KUBECONFIG="${KUBELET_CONF}" kubectl get node "$1" -o "jsonpath=$2"
}

# crio_at_minor MINOR: CRI-O is not the runtime, or its package is at MINOR (1.M).
crio_at_minor() {
  [[ ${CONTAINER_RUNTIME} != crio ]] && return 0
  local have
  have=$(pkg_version cri-o)
  [[ ${have} == "$1".* ]]
}

# upgrade_crio MINOR: CRI-O follows the Kubernetes minor, from that minor's stream, inside the
# drain window (upgrades.md §3.1: kubespray runs the container-engine role there too).
upgrade_crio() {
  local minor=$1
  crio_at_minor "${minor}" && return 0
  apt_source cri-o "${CRIO_REPO_URL}" || true
  apt_update "check the node's route to download.opensuse.org, then re-run"
  apt_get install --allow-change-held-packages cri-o || fatal "apt-get install cri-o from ${CRIO_REPO_URL} failed"
  hold_packages cri-o
  crio_at_minor "${minor}" || fatal "${CRIO_REPO_URL} installed cri-o $(pkg_version cri-o), not ${minor}.x;" \
    "check the repository, then run 'pulumi up' again"
  runtime_lock
  systemctl restart crio || fatal "crio did not restart; see 'journalctl -u crio'"
  wait_for "${RUNTIME_WAIT_SECONDS:-120}" "CRI-O API" crictl --runtime-endpoint "${CRI_SOCKET}" info \
    || fatal "CRI-O did not answer after its upgrade; see 'journalctl -u crio'"
  runtime_unlock
}

# reports_kubelet NODE VERSION: the Node object shows kubelet vVERSION.
reports_kubelet() {
  [[ "$(self_field "$1" '{.status.nodeInfo.kubeletVersion}')" == "v$2" ]]
}

# node_at NODE VERSION: kubelet and kubectl installed at VERSION (1.M.P), CRI-O (if it is the
# runtime) at its minor, and NODE's running kubelet reporting VERSION: the node half is done.
node_at() {
  at_patch "$2" kubelet kubectl && crio_at_minor "${2%.*}" && reports_kubelet "$1" "$2"
}

# upgrade_node_packages NODE VERSION TIMEOUT: on a node the first control plane has drained:
# the runtime (CRI-O's minor; the pause image of the new kubeadm), then kubelet and kubectl,
# a restart, and a bounded wait until the node reports the new kubelet. Refused on a node
# that is not cordoned: the kubelet of a minor upgrade must not restart under its pods
# (kubernetes.io version-skew policy: in-place minor kubelet upgrades are not supported).
upgrade_node_packages() {
  local node=$1 version=$2 timeout=$3
  if node_at "${node}" "${version}"; then
    log_info "${node} already runs kubelet v${version}"
    return 0
  fi
  [[ "$(self_field "${node}" '{.spec.unschedulable}')" == true ]] || fatal "${node} is not cordoned, so its" \
    "kubelet and runtime are not upgraded under its pods. The drain step on the first control plane" \
    "(its join-credentials command) runs before this one: run 'pulumi up' again"
  upgrade_crio "${version%.*}"
  align_pause_image "${version}" true
  install_kube "${version}" kubelet kubectl
  systemctl daemon-reload
  systemctl restart kubelet || fatal "the kubelet did not restart on ${node}; see 'journalctl -u kubelet'"
  wait_for "${timeout}" "${node} reporting kubelet v${version}" reports_kubelet "${node}" "${version}" \
    || fatal "${node} does not report kubelet v${version} after ${timeout}s; see 'journalctl -u kubelet'" \
      "there. 'pulumi up' again resumes here"
}

# --- kubeadm's own upgrade step on this node (kubeadm upgrade is designed to be re-run,
# upgrades.md §0.4) ---

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

# kubeadm_upgrade_node: every other node; it rewrites the kubelet config (and, on a control
# plane, its static pods) from the cluster's configuration. Once per target.
kubeadm_upgrade_node() {
  step_done kubeadm-upgrade "${KUBERNETES_VERSION}" && return 0
  run_kubeadm_upgrade node
  mark_step kubeadm-upgrade "${KUBERNETES_VERSION}"
}
