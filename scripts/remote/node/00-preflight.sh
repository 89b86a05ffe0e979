#!/usr/bin/env bash
set -euo pipefail
# Preflight, the hard gate: stop a node that cannot run Kata before anything is installed.
# Checks the OS and architecture, hardware virtualization (vmx|svm, a usable /dev/kvm), the
# vhost modules Kata needs, cgroup v2, and minimum CPUs, memory and disk; every failure is
# reported at once, naming the flavor and what the cloud admin must change.
# inputs: FLAVOR, SUPPORTED_UBUNTU (array), MIN_CPUS, MIN_MEMORY_MIB, MIN_DISK_GIB
# shellcheck source=scripts/remote/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
# shellcheck source=/dev/null
source "${KATAK8S_PARAMS:-${1:?usage: $0 PARAMS_FILE}}"

PROBLEMS=()
problem() { PROBLEMS+=("$*"); }

# The nested-virtualization fix, for the OpenStack admin (nova hypervisor-kvm.rst,
# "Nested guest support"; upstream-bootstrap.md §7).
NESTED_FIX="Kata runs every pod in its own VM, so flavor '${FLAVOR}' must expose hardware \
virtualization to its guests. Ask the OpenStack admin to (1) enable nested KVM on the compute \
hosts: 'options kvm_intel nested=1' (or kvm_amd nested=1) in /etc/modprobe.d/kvm.conf; (2) pass \
vmx/svm to guests in nova.conf [libvirt]: cpu_mode = host-passthrough, or cpu_mode = host-model \
(or custom) with cpu_model_extra_flags = vmx; (3) make '${FLAVOR}' land only on those hosts: \
openstack flavor set ${FLAVOR} --property trait:HW_CPU_X86_VMX=required (AMD: \
trait:HW_CPU_X86_SVM=required). Or pick a flavor that already does this and set \
katak8s:controlPlaneFlavor / katak8s:workerFlavor to it."

# --- supported OS release and architecture ---
check_os() {
  local id version arch
  id=$(sed -n 's/^ID=//p' "${KATAK8S_ROOT}/etc/os-release" | tr -d '"')
  version=$(sed -n 's/^VERSION_ID=//p' "${KATAK8S_ROOT}/etc/os-release" | tr -d '"')
  if [[ ${id} != ubuntu || " ${SUPPORTED_UBUNTU[*]} " != *" ${version} "* ]]; then
    problem "the image runs ${id:-an unknown OS} ${version}; supported: Ubuntu ${SUPPORTED_UBUNTU[*]}" \
      "(set katak8s:image to an Ubuntu ${SUPPORTED_UBUNTU[-1]} or ${SUPPORTED_UBUNTU[0]} cloud image)"
  fi
  arch=$(uname -m)
  [[ ${arch} == x86_64 ]] || problem "flavor '${FLAVOR}' runs ${arch}; only x86_64 is supported"
}

# --- vmx|svm in the CPU flags and a usable /dev/kvm ---
check_virtualization() {
  local kvm="${KATAK8S_ROOT}/dev/kvm" missing=()
  grep -qwE 'vmx|svm' "${KATAK8S_ROOT}/proc/cpuinfo" || missing+=("no vmx/svm flag in /proc/cpuinfo")
  if [[ ! -e ${kvm} ]]; then
    missing+=("no /dev/kvm")
  elif ! { : <>"${kvm}"; } 2>/dev/null; then
    missing+=("/dev/kvm cannot be opened for read and write")
  fi
  (( ${#missing[@]} == 0 )) && return 0
  local joined
  joined=$(printf '%s; ' "${missing[@]}")
  problem "hardware virtualization is unavailable on flavor '${FLAVOR}' (${joined%; })." "${NESTED_FIX}"
}

# --- vhost_vsock (agent channel) and vhost_net (VM networking) load ---
check_vhost_modules() {
  local mod
  for mod in vhost_vsock vhost_net; do
    [[ -d "${KATAK8S_ROOT}/sys/module/${mod}" ]] && continue
    modprobe "${mod}" 2>/dev/null || problem "kernel module ${mod} cannot be loaded (Kata needs it);" \
      "use the generic Ubuntu cloud kernel (linux-image-generic or linux-image-kvm with" \
      "linux-modules-extra), not a stripped one"
  done
}

# --- cgroup v2: kubelet 1.35+ refuses cgroup v1 (failCgroupV1, website PR #53082) ---
check_cgroup_v2() {
  [[ -f "${KATAK8S_ROOT}/sys/fs/cgroup/cgroup.controllers" ]] \
    || problem "the node boots with cgroup v1; the kubelet needs cgroup v2 (Ubuntu's default)"
}

# --- CPUs, memory and disk for the kubelet plus Kata VMs (2 GiB each by default) ---
check_resources() {
  local cpus mem_mib disk_gib
  cpus=$(grep -c '^processor' "${KATAK8S_ROOT}/proc/cpuinfo" || true)
  mem_mib=$(( $(awk '/^MemTotal:/ {print $2}' "${KATAK8S_ROOT}/proc/meminfo") / 1024 ))
  disk_gib=$(( $(df -Pk "${KATAK8S_ROOT}/var/lib" 2>/dev/null | awk 'NR==2 {print $4}') / 1024 / 1024 ))
  (( cpus >= MIN_CPUS )) || problem "flavor '${FLAVOR}' has ${cpus} vCPUs; at least ${MIN_CPUS} are needed"
  (( mem_mib >= MIN_MEMORY_MIB )) || problem "flavor '${FLAVOR}' has ${mem_mib} MiB of memory;" \
    "at least ${MIN_MEMORY_MIB} MiB are needed (each Kata pod boots a VM)"
  (( disk_gib >= MIN_DISK_GIB )) || problem "only ${disk_gib} GiB are free under /var/lib; at least" \
    "${MIN_DISK_GIB} GiB are needed (use a bigger flavor disk or katak8s:bootVolumeSize)"
}

main() {
  require_root
  check_os
  check_virtualization
  check_vhost_modules
  check_cgroup_v2
  check_resources
  if (( ${#PROBLEMS[@]} )); then
    local p
    for p in "${PROBLEMS[@]}"; do log_warn "preflight: ${p}"; done
    fatal "this node cannot run Kubernetes with Kata (${#PROBLEMS[@]} problem(s) above); no later phase runs on it"
  fi
  log_info "preflight passed: Ubuntu, x86_64, KVM usable, vhost modules loaded, resources sufficient"
}

main "$@"
