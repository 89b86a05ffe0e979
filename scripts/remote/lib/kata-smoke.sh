#!/usr/bin/env bash
# shellcheck disable=SC2153,SC2154  # set by 30-kata.sh and its parameters
set -euo pipefail
# katak8s Kata smoke test: start a REAL sandbox through the configured runtime and prove
# its guest kernel is not the host's. Sourced by scripts/remote/node/30-kata.sh after
# scripts/remote/lib/common.sh; the kata phase's program carries its sum
# (components/nodes/phase.py reads the script's `# katak8s-lib:` line). Functions only.
# Uses from 30-kata.sh: WORK, PREFIX, CRICTL, SMOKE_KEY and the SMOKE_* state variables,
# and its parameters CONTAINER_RUNTIME, KATA_HANDLER, KATA_CONFIG_PATH, SMOKE_IMAGE,
# SMOKE_TIMEOUT.

# --- whatever a failed smoke test left in its own namespace (also a sandbox whose request
# timed out before it returned an ID, or a killed earlier run's) is removed on exit. A
# container whose task exists cannot be deleted: `tasks rm -f` kills the task and its VM
# first. Every call is bounded: a hung shim must not hang the phase ---
cleanup() {
  local id ids=()
  if [[ ${SMOKE_RAN} == containerd ]]; then
    mapfile -t ids < <(timeout 60 ctr -n katak8s containers ls -q 2>/dev/null || true)
    for id in ${SMOKE_CTR:+"${SMOKE_CTR}"} "${ids[@]}"; do
      timeout 60 ctr -n katak8s tasks rm -f "${id}" >/dev/null 2>&1 || true
      timeout 60 ctr -n katak8s containers rm "${id}" >/dev/null 2>&1 || true
    done
  elif [[ ${SMOKE_RAN} == crio ]]; then
    mapfile -t ids < <(timeout 60 "${CRICTL[@]}" pods --namespace "^katak8s$" -q 2>/dev/null || true)
    for id in ${SMOKE_POD:+"${SMOKE_POD}"} "${ids[@]}"; do
      timeout 120 "${CRICTL[@]}" stopp "${id}" >/dev/null 2>&1 || true
      timeout 120 "${CRICTL[@]}" rmp -f "${id}" >/dev/null 2>&1 || true
    done
  fi
  if [[ -n ${SMOKE_NET} ]]; then rm -f "${SMOKE_NET}"; fi
  if [[ -n ${WORK} ]]; then rm -rf "${WORK}"; fi
}

# kata_ctl_hint: where to look next, naming kata-ctl only where it is installed (it comes
# with kata-tools-static, which is installed only with a pin: versions.KATA_TOOLS_SHA256).
kata_ctl_hint() {
  if [[ -x "${PREFIX}/bin/kata-ctl" ]]; then
    printf " and '%s check no-network-checks'" "${KATA_PREFIX}/bin/kata-ctl"
  else
    printf ", 'ls -l /dev/kvm' and 'lsmod | grep -E \"kvm|vhost\"'"
  fi
}

# --- containerd: ctr runs a container with the kata shim and the chosen hypervisor config ---
smoke_containerd() {
  retry 4 timeout 300 ctr -n katak8s images pull "${SMOKE_IMAGE}" >/dev/null \
    || fatal "cannot pull ${SMOKE_IMAGE}; check the node's route to the registry"
  SMOKE_CTR="katak8s-smoke-$$"
  timeout "${SMOKE_TIMEOUT}" ctr -n katak8s run --rm --runtime io.containerd.kata.v2 \
    --runtime-config-path "${KATA_CONFIG_PATH}" "${SMOKE_IMAGE}" "${SMOKE_CTR}" uname -r >"${WORK}/guest" \
    || fatal "ctr could not run a Kata container; see 'journalctl -u containerd'$(kata_ctl_hint)"
  SMOKE_CTR=""  # `run --rm` removed it
}

# --- CRI-O: a pod through the kata handler and a container in it, via crictl. Before a CNI
# is installed CRI-O cannot network a pod, so a loopback-only network is lent for the test.
# Only *.conf, *.conflist and *.json count (libcni): the cri-o package ships its bridge as
# 10-crio-bridge.conflist.disabled ---
smoke_crio() {
  local net="${KATAK8S_ROOT}/etc/cni/net.d" ctr
  if ! compgen -G "${net}/*.conf" >/dev/null && ! compgen -G "${net}/*.conflist" >/dev/null \
    && ! compgen -G "${net}/*.json" >/dev/null; then
    SMOKE_NET="${net}/00-katak8s-smoke.conflist"
    mkdir -p "${net}"
    printf '{"cniVersion": "1.0.0", "name": "katak8s-smoke", "plugins": [{"type": "loopback"}]}\n' >"${SMOKE_NET}"
  fi
  printf '{"metadata": {"name": "katak8s-smoke", "namespace": "katak8s", "uid": "katak8s-smoke-%s"}, "log_directory": "%s"}\n' \
    "$$" "${WORK}" >"${WORK}/pod.json"
  printf '{"metadata": {"name": "uname"}, "image": {"image": "%s"}, "command": ["uname", "-r"], "log_path": "uname.log"}\n' \
    "${SMOKE_IMAGE}" >"${WORK}/ctr.json"
  retry 4 timeout 300 "${CRICTL[@]}" pull "${SMOKE_IMAGE}" >/dev/null || fatal "cannot pull ${SMOKE_IMAGE}"
  SMOKE_POD=$(retry 3 timeout "${SMOKE_TIMEOUT}" "${CRICTL[@]}" runp --runtime "${KATA_HANDLER}" "${WORK}/pod.json") \
    || fatal "CRI-O could not start a pod with runtime handler '${KATA_HANDLER}'; see 'journalctl -u crio'"
  ctr=$("${CRICTL[@]}" create "${SMOKE_POD}" "${WORK}/ctr.json" "${WORK}/pod.json") \
    || fatal "CRI-O could not create the smoke container"
  "${CRICTL[@]}" start "${ctr}" >/dev/null || fatal "CRI-O could not start the smoke container"
  wait_for "${SMOKE_TIMEOUT}" "smoke container" container_exited "${ctr}" \
    || fatal "the smoke container did not finish within ${SMOKE_TIMEOUT}s"
  "${CRICTL[@]}" logs "${ctr}" >"${WORK}/guest" || fatal "cannot read the smoke container's log"
}
container_exited() { "${CRICTL[@]}" inspect "$1" | grep -q CONTAINER_EXITED; }

# --- the proof: a guest kernel that is not the host's ---
smoke_test() {
  local host guest
  step_done kata-smoke "${SMOKE_KEY}" && return 0
  if [[ ${CONTAINER_RUNTIME} == crio && -f "${KATAK8S_ROOT}/etc/kubernetes/kubelet.conf" ]]; then
    log_warn "node already joined: the CNI now needs pods known to Kubernetes, so the CRI-O sandbox" \
      "test is left to a kata pod in the cluster"
    return 0
  fi
  host=$(uname -r)
  SMOKE_RAN=${CONTAINER_RUNTIME}
  runtime_lock  # no runtime restart (kube-packages' pause alignment) under the sandbox
  "smoke_${CONTAINER_RUNTIME}"
  runtime_unlock
  guest=$(tr -d '\r' <"${WORK}/guest" | sed '/^$/d' | tail -n1)
  [[ -n ${guest} && ${guest} != "${host}" ]] || fatal "the Kata sandbox reported kernel '${guest}'," \
    "the host's own (${host}): it did not run in a VM; check the runtime handler and its config"
  log_info "Kata sandbox works: guest kernel ${guest}, host kernel ${host}"
  mark_step kata-smoke "${SMOKE_KEY}"
}
