#!/usr/bin/env bash
set -euo pipefail
# CRI-O for the Kubernetes minor, configured for kubeadm and Kata: the repositories
# (download.opensuse.org isv:/cri-o for cri-o, pkgs.k8s.io for cri-tools), then a drop-in
# with the systemd cgroup manager, kubeadm's pause image, overlay.skip_mount_home and the
# Kata runtime handler, written BEFORE the package so CRI-O's first start already has it.
# inputs: CRIO_REPO_URL, KUBERNETES_REPO_URL, KATA_HANDLER, PAUSE_IMAGE, KATA_SHIM_PATH,
#         KATA_CONFIG_PATH, CRI_SOCKET, ALLOW_RUNTIME_RESTART, RUNTIME_WAIT_SECONDS
# shellcheck source=scripts/remote/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
# shellcheck source=/dev/null
source "${KATAK8S_PARAMS:-${1:?usage: $0 PARAMS_FILE}}"
# katak8s-lib: lib/runtime.sh
# shellcheck source=scripts/remote/lib/runtime.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/runtime.sh"

DROPIN="${KATAK8S_ROOT}/etc/crio/crio.conf.d/50-katak8s.conf"
CHANGED=0

# --- the handler becomes a TOML table name: keep it a DNS label ---
check_handler() {
  [[ ${KATA_HANDLER} =~ ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$ ]] || fatal "invalid runtime handler '${KATA_HANDLER}'"
}

# --- CRI-O moved to isv:/cri-o in 2025 (cri-o/packaging README); one stream per minor.
# crictl (cri-tools) comes from pkgs.k8s.io, like kubeadm's dependency on it. The lists are
# refreshed when a source changed, and while a package is missing: a run whose update
# failed after it wrote the sources would otherwise never read them ---
add_repositories() {
  local changed=1
  apt_source cri-o "${CRIO_REPO_URL}" && changed=0
  apt_source kubernetes "${KUBERNETES_REPO_URL}" && changed=0
  if (( changed == 0 )) || [[ -z "$(pkg_version cri-o)" || -z "$(pkg_version cri-tools)" \
    || -z "$(pkg_version kubernetes-cni)" ]]; then
    apt_update "check the node's route to download.opensuse.org and pkgs.k8s.io, then re-run"
  fi
}

# --- the drop-in sorts after the package's 10-crio.conf, so its keys win (crio.conf.d(5)).
# skip_mount_home must be in place before CRI-O first starts, or Kata pods cannot see their
# rootfs (cri-o #8322, kata #9878); runtime_type "vm" drives the containerd shim v2 API
# (crio.conf.5.md); fields as kata-deploy writes them (upstream-bootstrap.md §5.2) ---
write_dropin() {
  write_file "${DROPIN}" 0644 <<EOF && CHANGED=1
# katak8s: systemd cgroups, kubeadm's pause image and the Kata runtime handler.
[crio]
  storage_option = [
    "overlay.skip_mount_home=true",
  ]

[crio.runtime]
  cgroup_manager = "systemd"

[crio.image]
  pause_image = "${PAUSE_IMAGE}"

[crio.runtime.runtimes.${KATA_HANDLER}]
  runtime_path = "${KATA_SHIM_PATH}"
  runtime_type = "vm"
  runtime_root = "/run/vc"
  runtime_config_path = "${KATA_CONFIG_PATH}"
  privileged_without_host_devices = true
EOF
  return 0
}

# --- the packages: cri-o, cri-tools for crictl (the Kata smoke test, kubeadm), kubernetes-cni ---
install_crio() {
  local pkg missing=()
  # kubernetes-cni explicitly (review-node F16): the CNI plugins in /opt/cni/bin that CRI-O's
  # loopback and the Kata smoke test need, which cri-o's package does not pull in by itself.
  for pkg in cri-o cri-tools kubernetes-cni; do
    [[ -n "$(pkg_version "${pkg}")" ]] || missing+=("${pkg}")
  done
  if (( ${#missing[@]} )); then
    apt_get install "${missing[@]}" || fatal "apt-get install ${missing[*]} failed; is ${CRIO_REPO_URL} reachable?"
  fi
  # A new CRI-O minor from its stream must come through a drain, never from unattended-upgrades.
  hold_packages cri-o
}

# --- (re)start on change, then a bounded wait on the real CRI API ---
start_crio() {
  apply_runtime_config crio "${CHANGED}"
  wait_for "${RUNTIME_WAIT_SECONDS}" "CRI-O API" crictl --runtime-endpoint "${CRI_SOCKET}" info \
    || fatal "CRI-O did not answer within ${RUNTIME_WAIT_SECONDS}s; see 'journalctl -u crio'"
}

main() {
  require_root
  PAUSE_IMAGE=$(effective_pause_image "${PAUSE_IMAGE}")  # kubeadm's own, once known
  check_handler
  refuse_runtime_switch crio
  add_repositories
  write_dropin
  install_crio
  start_crio
  log_info "CRI-O ready with runtime handler '${KATA_HANDLER}'"
}

main "$@"
