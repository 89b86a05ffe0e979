#!/usr/bin/env bash
set -euo pipefail
# Kata Containers from the static release: kata-static (runtime-rs shim, VMMs, guest images)
# and kata-tools-static (kata-ctl) under /opt/kata, sha256-verified against pins; a config.d
# drop-in for nested virtualization; `kata-ctl check`; then a REAL sandbox through the
# configured runtime whose guest kernel must differ from the host's.
# inputs: KATA_VERSION, KATA_RELEASE_URL, KATA_STATIC_SHA256, KATA_TOOLS_SHA256, KATA_PREFIX,
#         KATA_SHIM_PATH, KATA_CONFIG_PATH, AGENT_RECONNECT_TIMEOUT_MS, CONTAINER_RUNTIME,
#         KATA_HANDLER, CRI_SOCKET, SMOKE_IMAGE, SMOKE_TIMEOUT, ALLOW_RUNTIME_RESTART,
#         KATA_HYPERVISOR, FIXED_VM_VCPUS, FIXED_VM_MEMORY_MIB
# shellcheck source=scripts/remote/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
# shellcheck source=/dev/null
source "${KATAK8S_PARAMS:-${1:?usage: $0 PARAMS_FILE}}"
# katak8s-lib: lib/kata-smoke.sh
# shellcheck source=scripts/remote/lib/kata-smoke.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/kata-smoke.sh"

PREFIX="${KATAK8S_ROOT}${KATA_PREFIX}"
MARKER="${PREFIX}/.katak8s-release"
RELEASE="${KATA_VERSION} ${KATA_STATIC_SHA256} ${KATA_TOOLS_SHA256:-none}"
SMOKE_KEY="${RELEASE} ${CONTAINER_RUNTIME} ${KATA_HANDLER} ${KATA_CONFIG_PATH} ${AGENT_RECONNECT_TIMEOUT_MS}"
# crictl's default 2 s request timeout (RunPodSandbox gets twice that) is shorter than a
# Kata VM boot under nested virtualization: give each request the smoke budget.
CRICTL=(crictl --runtime-endpoint "${CRI_SOCKET}" --timeout "${SMOKE_TIMEOUT}s")
WORK="" DOWNLOADS="" SMOKE_RAN="" SMOKE_CTR="" SMOKE_POD="" SMOKE_NET=""
trap cleanup EXIT  # scripts/remote/lib/kata-smoke.sh: remove what a failed smoke test left

# --- downloads and staging sit beside KATA_PREFIX, not in /tmp: /tmp is a RAM-backed tmpfs
# (half the memory) since Ubuntu 24.10, too small for the multi-GB payload; on the same
# filesystem the final `mv` is a rename. A killed earlier run's leftovers go first ---
make_workdir() {
  local parent old
  parent=$(dirname "${PREFIX}")
  mkdir -p "${parent}"
  rm -rf "${parent}"/.katak8s-kata.*
  WORK=$(mktemp -d "${parent}/.katak8s-kata.XXXXXX")
  # Partial downloads survive a failed run (fetch_verified resumes them); another release's go.
  DOWNLOADS="${parent}/.katak8s-kata-downloads/${KATA_VERSION}"
  for old in "${parent}"/.katak8s-kata-downloads/*; do
    if [[ -e ${old} && ${old} != "${DOWNLOADS}" ]]; then rm -rf "${old}"; fi
  done
}

# --- download one release asset into DOWNLOADS and verify it against its pin. kata-static is
# ~1 GB: a slow link must make progress across attempts and across `pulumi up` runs, so the
# partial file is kept and resumed (`-C -`), and a stalled transfer (under 100 KB/s for two
# minutes) is cut and retried instead of a fixed 900 s cap that a slow link can never meet
# (review-node F6). The outer phase timeout still bounds one run. A file that does not match
# its pin is deleted, so the next attempt starts clean ---
fetch_verified() {
  local asset=$1 want=$2 file="${DOWNLOADS}/$1" got
  mkdir -p "${DOWNLOADS}"
  if [[ -f ${file} && "$(sha256_of "${file}")" == "${want}" ]]; then return 0; fi
  if ! retry 6 curl -fsSL --connect-timeout 20 -C - --speed-limit 102400 --speed-time 120 -o "${file}" \
    "${KATA_RELEASE_URL}/${KATA_VERSION}/${asset}"; then
    # A server that refuses the range (curl 33, or an HTTP 416 for a bad offset) would fail
    # every resume the same way: start once from zero before giving up.
    rm -f "${file}"
    retry 2 curl -fsSL --connect-timeout 20 --speed-limit 102400 --speed-time 120 -o "${file}" \
      "${KATA_RELEASE_URL}/${KATA_VERSION}/${asset}" || fatal "cannot download ${asset} from" \
      "${KATA_RELEASE_URL}/${KATA_VERSION}/ (the part received is kept and resumed by the next 'pulumi up';" \
      "a link slower than 100 KB/s needs several); check the node's route to github.com"
  fi
  got=$(sha256_of "${file}")
  if [[ ${got} != "${want}" ]]; then
    rm -f "${file}"
    fatal "${asset}: sha256 ${got} does not match the pin ${want}; the download is corrupt (deleted:" \
      "the next run downloads it afresh) or the release asset changed. Verify it and fix the pin"
  fi
}

# --- a node whose runtime holds Kata sandboxes: running VMs keep their files, but a sandbox
# that starts while /opt/kata is being swapped finds none, and the new release's shim would
# serve the old release's VMs (review-node F14). The runtime restart's gate, applied here ---
kata_sandboxes_run() {
  local pods
  systemctl is-active --quiet kubelet || return 1
  # Fails closed: without crictl, or when it does not answer, the node counts as running them.
  command -v crictl >/dev/null || return 0
  pods=$("${CRICTL[@]}" pods --state ready -o json 2>/dev/null) || return 0
  grep -qE "\"runtimeHandler\": *\"${KATA_HANDLER}\"" <<<"${pods}"
}
refuse_swap_under_pods() {
  [[ -d ${PREFIX} && ${ALLOW_RUNTIME_RESTART:-false} != true ]] || return 0
  if kata_sandboxes_run; then
    fatal "a new Kata release (${KATA_VERSION}) would replace ${KATA_PREFIX} under the Kata pods running" \
      "on this node; drain it first (kubectl drain <node> --ignore-daemonsets --delete-emptydir-data)," \
      "re-run 'pulumi up', then uncordon it: one node at a time. Or set katak8s:allowRuntimeRestart to" \
      "true to replace it under running pods"
  fi
}

# --- unpack both archives (paths ./opt/kata/..., as Kata's CI extracts them into /) into
# a staging root, check the layout, then swap it in: never a half-installed /opt/kata ---
install_kata() {
  local stage="${WORK}/stage" old="${PREFIX}.katak8s-old"
  [[ "$(cat "${MARKER}" 2>/dev/null)" == "${RELEASE}" ]] && return 0
  refuse_swap_under_pods
  # Kata publishes no checksum file with its releases (kata-containers/kata-containers#1433,
  # open; tools/packaging/release/release.sh uploads only the archives), so a pin is required.
  [[ -n ${KATA_STATIC_SHA256} ]] || fatal "no sha256 pin for kata-static ${KATA_VERSION}, and Kata" \
    "publishes no checksum file. Download ${KATA_RELEASE_URL}/${KATA_VERSION}/kata-static-${KATA_VERSION}-amd64.tar.zst," \
    "check it, then 'pulumi config set katak8s:kataSha256 <sha256>' (or add it to versions.KATA_STATIC_SHA256)"
  ensure_packages zstd
  fetch_verified "kata-static-${KATA_VERSION}-amd64.tar.zst" "${KATA_STATIC_SHA256}"
  mkdir -p "${stage}"
  tar --zstd -xf "${DOWNLOADS}/kata-static-${KATA_VERSION}-amd64.tar.zst" -C "${stage}"
  if [[ -n ${KATA_TOOLS_SHA256} ]]; then
    fetch_verified "kata-tools-static-${KATA_VERSION}-amd64.tar.zst" "${KATA_TOOLS_SHA256}"
    tar --zstd -xf "${DOWNLOADS}/kata-tools-static-${KATA_VERSION}-amd64.tar.zst" -C "${stage}"
    [[ -x "${stage}${KATA_PREFIX}/bin/kata-ctl" ]] || fatal "kata-tools-static ${KATA_VERSION} lacks" \
      "${KATA_PREFIX}/bin/kata-ctl; check the archive and its pin (versions.KATA_TOOLS_SHA256)"
  else
    log_warn "no sha256 pin for kata-tools-static ${KATA_VERSION} (versions.KATA_TOOLS_SHA256):" \
      "kata-ctl is not installed and 'kata-ctl check' is skipped; the sandbox test below still runs"
  fi
  [[ -x "${stage}${KATA_SHIM_PATH}" && -f "${stage}${KATA_CONFIG_PATH}" ]] || fatal "kata-static" \
    "${KATA_VERSION} lacks ${KATA_SHIM_PATH} or ${KATA_CONFIG_PATH}; only the 4.1+ layout is supported"
  rm -rf "${old}"
  if [[ -d ${PREFIX} ]]; then mv "${PREFIX}" "${old}"; fi
  mkdir -p "$(dirname "${PREFIX}")"
  mv "${stage}${KATA_PREFIX}" "${PREFIX}"
  rm -rf "${old}"
  printf '%s\n' "${RELEASE}" >"${MARKER}"
  rm -rf "$(dirname "${DOWNLOADS}")"  # installed: the archives are not needed again
  log_info "installed Kata ${KATA_VERSION} under ${KATA_PREFIX}"
}

# --- containerd resolves io.containerd.kata.v2 to containerd-shim-kata-v2 on its PATH (ctr
# needs it; the CRI configs name runtime_path explicitly) ---
link_shim() {
  local link="${KATAK8S_ROOT}/usr/local/bin/containerd-shim-kata-v2"
  [[ "$(readlink "${link}" 2>/dev/null)" == "${KATA_SHIM_PATH}" ]] && return 0
  mkdir -p "$(dirname "${link}")"
  ln -sfn "${KATA_SHIM_PATH}" "${link}"
}

# --- the katak8s drop-in (config.d, read after the hypervisor's configuration):
# - nested virt: the agent needs longer than the 3 s default to come up in an L2 guest
#   (configuration-qemu-runtime-rs.toml: "consider increasing this value"; kata #1102);
# - clh: our guests are L2 already, and runtime-rs Cloud Hypervisor offers nested
#   virtualization inside them by default (4.1.0 configuration-clh-runtime-rs.toml.in
#   disable_nested_virtualization, Makefile DEFDISABLENESTEDVIRTUALIZATION_CLH := false), which
#   some hosts cannot accommodate (review-node F5);
# - CRI-O: the fixed VM size (FIXED_VM_*, versions.CRIO_KATA_VM), since CRI-O passes no
#   sandbox-sizing annotations; the RuntimeClass overhead carries the same size ---
write_dropin() {
  {
    printf '# katak8s: L2 guests boot slowly under nested virtualization\n[agent.kata]\nreconnect_timeout_ms = %s\n' \
      "${AGENT_RECONNECT_TIMEOUT_MS}"
    if [[ ${KATA_HYPERVISOR} == clh || ${FIXED_VM_VCPUS} != 0 ]]; then
      printf '\n[hypervisor.%s]\n' "${KATA_HYPERVISOR}"
    fi
    if [[ ${KATA_HYPERVISOR} == clh ]]; then
      printf '# the guests are L2 already: no nested virtualization inside them\ndisable_nested_virtualization = true\n'
    fi
    if [[ ${FIXED_VM_VCPUS} != 0 ]]; then
      printf '# CRI-O: every VM has this size (the pod limits do not reach runtime-rs)\ndefault_vcpus = %s\n' \
        "${FIXED_VM_VCPUS}"
      printf 'default_memory = %s\n' "${FIXED_VM_MEMORY_MIB}"
    fi
  } | write_file "$(dirname "${KATAK8S_ROOT}${KATA_CONFIG_PATH}")/config.d/50-katak8s-nested.toml" 0644 || true
}

# --- CRI-O drops a handler whose runtime_path is missing when it starts ("Runtime handler
# ... is being ignored", pkg/config ValidateRuntimes), and the runtime phase started it
# before /opt/kata existed. SIGHUP re-validates the runtimes (ReloadRuntimes); an older
# CRI-O needs a restart, done only while the kubelet runs no pods ---
crio_has_handler() {
  local config
  config=$(crio status config 2>/dev/null) || return 1
  grep -qE "^[[:space:]]*\[crio\.runtime\.runtimes\.${KATA_HANDLER}\]" <<<"${config}"
}
register_crio_handler() {
  [[ ${CONTAINER_RUNTIME} == crio ]] || return 0
  crio_has_handler && return 0
  log_info "CRI-O started before Kata was installed; reloading it to register handler '${KATA_HANDLER}'"
  systemctl reload crio || true
  wait_for 30 "CRI-O handler '${KATA_HANDLER}'" crio_has_handler && return 0
  ! kubelet_runs_pods || fatal "CRI-O did not register runtime handler '${KATA_HANDLER}' on reload and" \
    "the kubelet runs pods here; drain the node (kubectl drain), 'systemctl restart crio', then re-run"
  systemctl restart crio
  wait_for "${SMOKE_TIMEOUT}" "CRI-O handler '${KATA_HANDLER}'" crio_has_handler || fatal "CRI-O does" \
    "not register runtime handler '${KATA_HANDLER}'; look for 'is being ignored' in 'journalctl -u crio'"
}

# --- Kata's own host check (no network checks: they query GitHub) ---
kata_check() {
  local ctl="${PREFIX}/bin/kata-ctl"
  [[ -x ${ctl} ]] || return 0
  "${ctl}" check no-network-checks >&2 || fatal "'kata-ctl check' failed on this node: read its output" \
    "above (CPU flags, kvm/vhost modules); the flavor must expose hardware virtualization"
}

main() {
  require_root
  make_workdir
  install_kata
  link_shim
  write_dropin
  register_crio_handler
  kata_check
  smoke_test
}

main "$@"
