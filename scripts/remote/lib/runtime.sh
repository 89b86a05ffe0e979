#!/usr/bin/env bash
set -euo pipefail
# katak8s container-runtime helpers, shared by scripts/remote/node/20-containerd.sh and
# 20-crio.sh (declared there with `# katak8s-lib:`, so their programs carry its sum:
# components/nodes/phase.py). Functions only.

# apply_runtime_config UNIT CHANGED: enable and start the container runtime UNIT; restart it
# when its config changed (CHANGED=1) or a restart refused earlier is still pending. A
# kubelet that runs pods blocks the restart unless ALLOW_RUNTIME_RESTART=true.
apply_runtime_config() {
  local unit=$1 pending="${KATAK8S_STATE_DIR}/$1.restart-pending"
  mkdir -p "${KATAK8S_STATE_DIR}"
  if [[ $2 == 1 ]]; then touch "${pending}"; fi
  systemctl is-enabled --quiet "${unit}" || systemctl enable "${unit}"
  if ! systemctl is-active --quiet "${unit}"; then
    systemctl start "${unit}"
  elif [[ -f ${pending} ]]; then
    if [[ ${ALLOW_RUNTIME_RESTART:-false} != true ]] && kubelet_runs_pods; then
      fatal "the ${unit} config changed but the kubelet runs pods on this node; drain it" \
        "(kubectl drain) and re-run, or set katak8s:allowRuntimeRestart true to restart anyway"
    fi
    log_info "restarting ${unit} for its new config"
    systemctl restart "${unit}"
  fi
  rm -f "${pending}"
}

# refuse_runtime_switch RUNTIME: stop when this node joined a cluster with another runtime.
refuse_runtime_switch() {
  local joined
  joined=$(joined_runtime_endpoint)
  [[ -z ${joined} ]] || same_socket "${joined}" "${CRI_SOCKET}" || fatal "this node joined the cluster" \
    "with the runtime at ${joined}; switching it in place to $1 would orphan its pods, images and" \
    "kubelet state. Replace the node instead: remove it (lower workerCount: drain, delete node," \
    "kubeadm reset), then add a new node with containerRuntime=$1"
}
