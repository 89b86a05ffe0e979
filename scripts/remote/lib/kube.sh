#!/usr/bin/env bash
set -euo pipefail
# katak8s Kubernetes packages on one node: kubeadm, kubelet and kubectl from pkgs.k8s.io at
# an exact patch, held, and the runtime's pause image following the installed kubeadm.
# Shared by scripts/remote/node/40-kube-packages.sh (first install) and the node half of an upgrade
# (scripts/remote/lib/node-upgrade.sh). Functions only.
# reads: KUBERNETES_REPO_URL, CRI_SOCKET, CONTAINER_RUNTIME, PAUSE_FILE (common.sh).

# shellcheck disable=SC2034  # read by 40-kube-packages.sh and node-upgrade.sh
KUBELET_CONF="${KATAK8S_ROOT}/etc/kubernetes/kubelet.conf"

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
