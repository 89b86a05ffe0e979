#!/usr/bin/env bash
# Kernel prerequisites for the kubelet, the CNI and Kata: wait for cloud-init (it holds the
# apt/dpkg locks on first boot), load and persist overlay, br_netfilter, vhost_vsock and
# vhost_net, set forwarding and bridge-netfilter sysctls, and turn swap off now and after
# reboot. Every step compares before it changes anything.
# inputs: CLOUD_INIT_TIMEOUT (seconds)
set -euo pipefail
# shellcheck source=scripts/lib/common.sh
source "${KATAK8S_LIB:-$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh}"
# shellcheck source=/dev/null
source "${KATAK8S_PARAMS:-${1:?usage: $0 PARAMS_FILE}}"

# overlay + br_netfilter: container runtimes and kube-proxy/Calico (upstream-bootstrap.md
# §2.1, Kata CI tests/gha-run-k8s-common.sh); vhost_*: Kata's agent channel and VM network
# (Kata docs/installation.md).
MODULES=(overlay br_netfilter vhost_vsock vhost_net)
# Only ip_forward is required by kubeadm's preflight; the bridge keys are what Kata's CI and
# most CNIs expect (kubernetes PR #123464 leaves them to the network plugin).
SYSCTLS=(
  "net.ipv4.ip_forward = 1"
  "net.bridge.bridge-nf-call-iptables = 1"
  "net.bridge.bridge-nf-call-ip6tables = 1"
)

# --- cloud-init first: its package installs hold the dpkg lock ---
wait_cloud_init() {
  local rc=0
  command -v cloud-init >/dev/null || return 0
  timeout "${CLOUD_INIT_TIMEOUT}" cloud-init status --wait >/dev/null || rc=$?
  case ${rc} in
    0) ;;
    124) fatal "cloud-init still running after ${CLOUD_INIT_TIMEOUT}s; inspect 'cloud-init status --long'" \
      "and /var/log/cloud-init-output.log on the node, then run 'pulumi up' again" ;;
    # 1 = error, 2 = done with recoverable errors (cloud-init >= 23.4): finished either way.
    *) log_warn "cloud-init finished with errors (exit ${rc}); see 'cloud-init status --long'" ;;
  esac
}

# --- kernel modules: now, and on every boot via modules-load.d ---
load_modules() {
  local mod
  printf '%s\n' "# katak8s: container runtime, CNI and Kata modules" "${MODULES[@]}" \
    | write_file "${KATAK8S_ROOT}/etc/modules-load.d/katak8s.conf" 0644 || true
  for mod in "${MODULES[@]}"; do
    [[ -d "${KATAK8S_ROOT}/sys/module/${mod}" ]] && continue
    modprobe "${mod}" || fatal "modprobe ${mod} failed; install linux-modules-extra-\$(uname -r) or use" \
      "Ubuntu's generic cloud kernel"
  done
}

# --- sysctls: persisted in sysctl.d, applied only when the live values differ ---
apply_sysctls() {
  local line key want have stale=0
  printf '%s\n' "# katak8s: kubelet and CNI requirements" "${SYSCTLS[@]}" \
    | write_file "${KATAK8S_ROOT}/etc/sysctl.d/99-katak8s.conf" 0644 || true
  for line in "${SYSCTLS[@]}"; do
    key=${line%% =*}
    want=${line##*= }
    have=$(cat "${KATAK8S_ROOT}/proc/sys/${key//.//}" 2>/dev/null || true)
    [[ ${have} == "${want}" ]] || stale=1
  done
  (( stale )) || return 0
  sysctl --system >/dev/null || fatal "sysctl --system failed; check /etc/sysctl.d for a bad file"
}

# --- swap: the kubelet's failSwapOn defaults to true (upstream-bootstrap.md §2.2) ---
disable_swap() {
  local fstab="${KATAK8S_ROOT}/etc/fstab"
  if [[ $(wc -l <"${KATAK8S_ROOT}/proc/swaps") -gt 1 ]]; then
    swapoff -a || fatal "swapoff -a failed; free memory or remove the swap device by hand"
  fi
  if [[ -f ${fstab} ]] && grep -qE '^[^#].*[[:space:]]swap[[:space:]]' "${fstab}"; then
    sed -ri 's/^([^#].*[[:space:]]swap[[:space:]].*)$/# katak8s: swap off for the kubelet: \1/' "${fstab}"
    log_info "commented out the swap entries in /etc/fstab"
  fi
}

main() {
  require_root
  wait_cloud_init
  load_modules
  apply_sysctls
  disable_swap
  log_info "kernel prerequisites in place"
}

main "$@"
