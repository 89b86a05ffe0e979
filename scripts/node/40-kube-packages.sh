#!/usr/bin/env bash
set -euo pipefail
# kubeadm, kubelet and kubectl from pkgs.k8s.io for the Kubernetes minor, at the exact patch
# (the Debian revision read from `apt-cache madison`, never constructed) and held. A node
# that already joined a cluster at another version is refused, not changed: that is a
# kubeadm upgrade. Control-plane nodes pre-pull their images.
# inputs: KUBERNETES_VERSION (1.M.P), KUBERNETES_REPO_URL, CRI_SOCKET, PREPULL_IMAGES,
#         CONTAINER_RUNTIME
# shellcheck source=scripts/lib/common.sh
source "${KATAK8S_LIB:-$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh}"
# shellcheck source=/dev/null
source "${KATAK8S_PARAMS:-${1:?usage: $0 PARAMS_FILE}}"

PACKAGES=(kubeadm kubelet kubectl)

# --- a joined node changes version only through kubeadm upgrade, one node at a time ---
refuse_version_change() {
  local have
  [[ -f "${KATAK8S_ROOT}/etc/kubernetes/kubelet.conf" ]] || return 0
  have=$(pkg_version kubeadm)
  [[ -z ${have} || ${have%%-*} == "${KUBERNETES_VERSION}" ]] && return 0
  fatal "this node joined the cluster with kubeadm ${have%%-*}; it will not be switched to" \
    "${KUBERNETES_VERSION} behind kubeadm's back. Upgrade with kubeadm, one minor at a time and node by" \
    "node (https://kubernetes.io/docs/tasks/administer-cluster/kubeadm/kubeadm-upgrade/): on the first" \
    "control plane 'kubeadm upgrade plan' and 'kubeadm upgrade apply v${KUBERNETES_VERSION}', on the" \
    "others 'kubeadm upgrade node', each after 'kubectl drain' and followed by the kubelet/kubectl" \
    "packages; or replace the node with a new one"
}

# --- pkgs.k8s.io has one repository per minor (upstream-bootstrap.md §2.4) ---
add_repository() {
  apt_source kubernetes "${KUBERNETES_REPO_URL}" || return 0
  apt_update "check the node's route to $(cut -d/ -f3 <<<"${KUBERNETES_REPO_URL}")"
}

# --- true when all three packages are already at the wanted patch ---
installed_at_patch() {
  local pkg have
  for pkg in "${PACKAGES[@]}"; do
    have=$(pkg_version "${pkg}")
    [[ ${have%%-*} == "${KUBERNETES_VERSION}" ]] || return 1
  done
}

# --- the repository's exact Debian revision for the patch, e.g. 1.36.4-1.1 ---
resolve_revision() {
  apt-cache madison kubeadm | awk -F'|' -v want="${KUBERNETES_VERSION}" \
    '{ gsub(/ /, "", $2); split($2, v, "-"); if (v[1] == want) { print $2; exit } }'
}

install_packages() {
  local rev pkgs=() pkg
  installed_at_patch && return 0
  rev=$(resolve_revision)
  if [[ -z ${rev} ]]; then
    apt_get update || true
    rev=$(resolve_revision)
  fi
  [[ -n ${rev} ]] || fatal "kubeadm ${KUBERNETES_VERSION} is not in ${KUBERNETES_REPO_URL};" \
    "available: $(apt-cache madison kubeadm | awk -F'|' '{gsub(/ /, "", $2); printf "%s ", $2}')." \
    "Set katak8s:kubernetesVersion to one of them"
  for pkg in "${PACKAGES[@]}"; do pkgs+=("${pkg}=${rev}"); done
  apt_get install --allow-change-held-packages "${pkgs[@]}" || fatal "apt-get install ${pkgs[*]} failed"
}

# --- hold: an unattended upgrade must never move the cluster's version ---
hold_kube_packages() {
  hold_packages "${PACKAGES[@]}"
  systemctl is-enabled --quiet kubelet || systemctl enable kubelet
}

# --- the runtime's sandbox image follows the installed kubeadm (review-node F12): the runtime
# phase configured versions.PAUSE_IMAGES' guess before kubeadm was here. On a node that has
# not joined (no pods, the kubelet not configured), a different image is written where the
# runtime phase put it and the runtime restarted; the runtime phase reads PAUSE_FILE from
# then on. A joined node is left alone (a restart would need a drain): warned only ---
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

align_pause_image() {
  local want have entry file format pattern line changed=0 unit
  want=$(kubeadm config images list --kubernetes-version "v${KUBERNETES_VERSION}" 2>/dev/null \
    | grep -m1 -E '/pause:' || true)
  [[ -n ${want} ]] || { log_warn "kubeadm listed no pause image; the runtime keeps its own"; return 0; }
  have=$(configured_pause)
  if [[ -f "${KATAK8S_ROOT}/etc/kubernetes/kubelet.conf" ]]; then
    [[ -z ${have} || ${have} == "${want}" ]] || log_warn "kubeadm ${KUBERNETES_VERSION} expects ${want}," \
      "the runtime uses ${have}; a joined node keeps it (kubeadm only warns). To align it: drain the node," \
      "write ${want} to ${PAUSE_FILE#"${KATAK8S_ROOT}"}, re-run the runtime phase, uncordon"
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
  log_info "the runtime now uses kubeadm's pause image ${want}: restarting ${unit} (no pods on this node yet)"
  runtime_lock  # never under the kata phase's smoke sandbox
  systemctl restart "${unit}" || fatal "${unit} did not restart; see 'journalctl -u ${unit}'"
  wait_for 60 "${unit} CRI API" crictl --runtime-endpoint "${CRI_SOCKET}" info \
    || fatal "${unit} did not answer after its restart; see 'journalctl -u ${unit}'"
  runtime_unlock
}

# --- control planes pull their images before kubeadm init/join (once per version) ---
prepull_images() {
  [[ ${PREPULL_IMAGES} == true ]] || return 0
  step_done images "${KUBERNETES_VERSION}" && return 0
  retry 3 kubeadm config images pull --kubernetes-version "v${KUBERNETES_VERSION}" \
    --cri-socket "${CRI_SOCKET}" >&2 || fatal "cannot pull the control-plane images; check the" \
    "node's route to registry.k8s.io"
  mark_step images "${KUBERNETES_VERSION}"
}

main() {
  require_root
  refuse_version_change
  add_repository
  install_packages
  hold_kube_packages
  align_pause_image
  prepull_images
  log_info "kubeadm, kubelet and kubectl ${KUBERNETES_VERSION} installed and held"
}

main "$@"
