#!/usr/bin/env bash
set -euo pipefail
# containerd from Ubuntu, configured for kubeadm and Kata: SystemdCgroup, kubeadm's pause
# image, and the Kata runtime handler (runtime-rs shim + the chosen hypervisor's config).
# The config layout follows the config version of the installed containerd (2, 3 or 4;
# upstream-bootstrap.md §4.2-4.4). Restarts only when the config changed, and never under a
# kubelet that runs pods unless ALLOW_RUNTIME_RESTART=true.
# inputs: KATA_HANDLER, PAUSE_IMAGE, KATA_SHIM_PATH, KATA_CONFIG_PATH, CRI_SOCKET, CONTAINERD_MIN_VERSION,
#         ALLOW_RUNTIME_RESTART, RUNTIME_WAIT_SECONDS
# shellcheck source=scripts/remote/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
# shellcheck source=/dev/null
source "${KATAK8S_PARAMS:-${1:?usage: $0 PARAMS_FILE}}"
# katak8s-lib: lib/runtime.sh
# shellcheck source=scripts/remote/lib/runtime.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/runtime.sh"

ETC="${KATAK8S_ROOT}/etc/containerd"
IMPORTS="/etc/containerd/conf.d/*.toml"
WORK=$(mktemp -d)
trap 'rm -rf "${WORK}"' EXIT
CHANGED=0

# --- the handler becomes a TOML table name: keep it a DNS label ---
check_handler() {
  [[ ${KATA_HANDLER} =~ ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$ ]] || fatal "invalid runtime handler '${KATA_HANDLER}'"
}

# --- Ubuntu's package: security updates from Ubuntu (upstream-bootstrap.md §4.1) ---
install_containerd() {
  [[ -n "$(pkg_version containerd)$(pkg_version containerd-stable)" ]] || ensure_packages containerd
  # Ubuntu ships new containerd and runc minors to -updates/-security under the SRU "Container
  # Stack Updates" exception (26.04: containerd 2.2, runc 1.4 with new pids.limit semantics);
  # unattended-upgrades would install one and restart containerd with no drain (review-node
  # F7). Held, they change only when the operator upgrades them, drained.
  hold_packages containerd containerd-stable runc runc-stable
}

# --- a containerd older than containerd's own list for this Kubernetes minor works as far as
# kubeadm's preflight goes, but is outside what either project tests: said, not refused ---
check_containerd_version() {
  local have oldest
  have=$(containerd --version 2>/dev/null | awk '{print $3}' | sed 's/^v//')
  [[ -n ${have} ]] || return 0
  oldest=$(printf '%s\n%s\n' "${CONTAINERD_MIN_VERSION}" "${have}" | sort -V | head -n1)
  if [[ ${oldest} != "${CONTAINERD_MIN_VERSION}" ]]; then
    log_warn "containerd ${have} is older than ${CONTAINERD_MIN_VERSION}, the oldest containerd's RELEASES.md" \
      "lists for this Kubernetes minor; it may work, untested. Use an image whose archive has containerd" \
      ">= ${CONTAINERD_MIN_VERSION} (Ubuntu 26.04), or containerRuntime crio"
  fi
}

# --- the config version this containerd speaks: 2 (1.x), 3 (2.0-2.2) or 4 (2.3+) ---
detect_config_version() {
  containerd config default >"${WORK}/default.toml" 2>/dev/null \
    || fatal "'containerd config default' failed; is the containerd package intact? (apt-get install --reinstall containerd)"
  CONFIG_VERSION=$(sed -n 's/^version *= *\([0-9]*\).*/\1/p' "${WORK}/default.toml" | head -n1)
  case ${CONFIG_VERSION} in
    2|3|4) log_info "containerd speaks config version ${CONFIG_VERSION}" ;;
    *) fatal "unsupported containerd config version '${CONFIG_VERSION}'; use Ubuntu 24.04/26.04's containerd" ;;
  esac
}

# --- version 3/4: the distribution default, with our conf.d import (2.0/2.1 emit imports = [])
# and no disabled CRI (containerd #14121) when we generate it; a file that already imports
# conf.d is the operator's and is kept ---
ensure_main_config() {
  local main="${ETC}/config.toml"
  [[ -f ${main} ]] && grep -qF "${IMPORTS}" "${main}" && return 0
  if [[ -f ${main} ]]; then
    cp -p "${main}" "${main}.katak8s-backup"
    log_warn "replacing ${main#"${KATAK8S_ROOT}"} (no conf.d import); the old file is config.toml.katak8s-backup"
  fi
  sed -e "s|^imports *=.*|imports = ['${IMPORTS}']|" -e "s|^disabled_plugins *=.*|disabled_plugins = []|" \
    "${WORK}/default.toml" >"${WORK}/main.toml"
  grep -qF "${IMPORTS}" "${WORK}/main.toml" || sed -i "/^version *=/a imports = ['${IMPORTS}']" "${WORK}/main.toml"
  write_file "${main}" 0644 <"${WORK}/main.toml" && CHANGED=1
  return 0
}

# --- refuse a main config that disables the CRI plugin (kubeadm would fail with
# "unknown service runtime.v1.RuntimeService": containerd #8139, #14121) ---
refuse_disabled_cri() {
  local main="${ETC}/config.toml"
  local value
  # The value only: from `disabled_plugins =` to its closing bracket, on the same line or a
  # later one (a sed range would skip a `]` on its first line and run into the next table).
  value=$(sed -n '/^[[:space:]]*disabled_plugins[[:space:]]*=/{:a;/]/!{N;ba};p;q}' "${main}")
  if grep -qE "[\"'](cri|io\.containerd\.grpc\.v1\.cri|io\.containerd\.cri\.v1\.[a-z]+)[\"']" <<<"${value}"; then
    fatal "/etc/containerd/config.toml disables the CRI plugin (disabled_plugins); remove the CRI entry" \
      "from disabled_plugins, or delete the file so this phase regenerates it, then re-run"
  fi
}

# --- version 3 drop-in: also valid under a version-4 main file (a drop-in may not be newer
# than the main file); fields as kata-deploy writes them (upstream-bootstrap.md §4.3) ---
write_dropin_v3() {
  local rt="plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes"
  write_file "${ETC}/conf.d/10-katak8s.toml" 0644 <<EOF && CHANGED=1
# katak8s: kubeadm's pause image, systemd cgroups and the Kata runtime handler.
version = 3

[plugins.'io.containerd.cri.v1.images'.pinned_images]
  sandbox = '${PAUSE_IMAGE}'

[plugins.'io.containerd.cri.v1.runtime'.containerd]
  default_runtime_name = 'runc'

[${rt}.runc]
  runtime_type = 'io.containerd.runc.v2'
  [${rt}.runc.options]
    SystemdCgroup = true

[${rt}.${KATA_HANDLER}]
  runtime_type = 'io.containerd.kata.v2'
  runtime_path = '${KATA_SHIM_PATH}'
  privileged_without_host_devices = true
  pod_annotations = ['io.katacontainers.*']
  container_annotations = ['io.kubernetes.container.terminationMessage*']
  [${rt}.${KATA_HANDLER}.options]
    ConfigPath = '${KATA_CONFIG_PATH}'
EOF
  return 0
}

# --- version 2 (containerd 1.x): drop-in merging is unreliable, so the whole file is ours,
# as Kata's CI does (upstream-bootstrap.md §4.4) ---
write_full_v2() {
  local cri='plugins."io.containerd.grpc.v1.cri"'
  write_file "${ETC}/config.toml" 0644 <<EOF && CHANGED=1
# katak8s: kubeadm's pause image, systemd cgroups and the Kata runtime handler.
version = 2

[${cri}]
  sandbox_image = "${PAUSE_IMAGE}"

  [${cri}.containerd]
    default_runtime_name = "runc"

    [${cri}.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [${cri}.containerd.runtimes.runc.options]
        SystemdCgroup = true

    [${cri}.containerd.runtimes.${KATA_HANDLER}]
      runtime_type = "io.containerd.kata.v2"
      runtime_path = "${KATA_SHIM_PATH}"
      privileged_without_host_devices = true
      pod_annotations = ["io.katacontainers.*"]
      container_annotations = ["io.kubernetes.container.terminationMessage*"]
      [${cri}.containerd.runtimes.${KATA_HANDLER}.options]
        ConfigPath = "${KATA_CONFIG_PATH}"
EOF
  return 0
}

# --- crictl talks to containerd without probing other sockets ---
write_crictl_config() {
  printf 'runtime-endpoint: %s\nimage-endpoint: %s\ntimeout: 10\n' "${CRI_SOCKET}" "${CRI_SOCKET}" \
    | write_file "${KATAK8S_ROOT}/etc/crictl.yaml" 0644 || true
}

# --- (re)start on change, then a bounded wait on the real API and the CRI plugin ---
start_containerd() {
  apply_runtime_config containerd "${CHANGED}"
  wait_for "${RUNTIME_WAIT_SECONDS}" "containerd API" ctr version \
    || fatal "containerd did not answer within ${RUNTIME_WAIT_SECONDS}s; see 'journalctl -u containerd'"
  ctr plugins ls | grep -qE 'io\.containerd\.grpc\.v1[[:space:]]+cri[[:space:]].*ok[[:space:]]*$' \
    || fatal "containerd runs without its CRI plugin; see 'ctr plugins ls' and 'journalctl -u containerd'"
}

main() {
  require_root
  PAUSE_IMAGE=$(effective_pause_image "${PAUSE_IMAGE}")  # kubeadm's own, once known
  check_handler
  refuse_runtime_switch containerd
  install_containerd
  check_containerd_version
  detect_config_version
  if [[ ${CONFIG_VERSION} == 2 ]]; then
    write_full_v2
  else
    ensure_main_config
    write_dropin_v3
  fi
  refuse_disabled_cri
  write_crictl_config
  start_containerd
  log_info "containerd ready with runtime handler '${KATA_HANDLER}'"
}

main "$@"
