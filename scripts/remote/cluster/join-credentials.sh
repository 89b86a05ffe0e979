#!/usr/bin/env bash
set -euo pipefail
# Mint the credentials for ONE node's join, on the first control plane, right before that
# join: a fresh bootstrap token with a short TTL, the CA certificate hash for discovery,
# and, for a control plane, a freshly uploaded certificate key. They are printed as
# key=value lines on stdout, which Pulumi keeps as a secret (logging off); nothing secret
# is ever an argument: kubeadm generates the token and the key and prints them. They are
# printed only once every step succeeded: pulumi-command puts a FAILED command's stdout in
# its error message, unscrubbed (pulumi-sdk.md §2.6), so a failure must leave stdout empty.
# During an upgrade it is also the node's first upgrade step: a node that joined at an
# older Kubernetes is cordoned and drained here, before its join step upgrades it
# (scripts/remote/lib/upgrade.sh drain_for_upgrade; components/cluster/upgrade.py).
# inputs: NODE_NAME (the joining node), TOKEN_TTL (e.g. 30m), CONTROL_PLANE (true|false),
#         READYZ_TIMEOUT (seconds), KUBERNETES_VERSION (vX.Y.Z), DRAIN_TIMEOUT, UPGRADE_BATCH,
#         UPGRADE_TARGET_ANNOTATION, UPGRADE_CORDON_ANNOTATION
# shellcheck source=scripts/remote/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
# shellcheck source=/dev/null
source "${KATAK8S_PARAMS:-${1:?usage: $0 PARAMS_FILE}}"
# katak8s-lib: lib/upgrade.sh
# shellcheck source=scripts/remote/lib/upgrade.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/upgrade.sh"

K8S_DIR="${KATAK8S_ROOT}/etc/kubernetes"
CA_CERT="${K8S_DIR}/pki/ca.crt"
INIT_CONFIG="${K8S_DIR}/katak8s/kubeadm-init.yaml"

apiserver_ready() {
  [[ "$(KUBECONFIG="${ADMIN_CONF}" kubectl get --raw=/readyz 2>/dev/null)" == "ok" ]]
}

# wait_api: tokens and the kubeadm-certs Secret live in the API.
wait_api() {
  [[ -f "${ADMIN_CONF}" ]] || fatal "no ${ADMIN_CONF#"${KATAK8S_ROOT}"}: the cluster is not initialised;" \
    "run 'pulumi up' again once kubeadm init has succeeded"
  wait_for "${READYZ_TIMEOUT}" "kube-apiserver /readyz" apiserver_ready \
    || fatal "the API server is not ready after ${READYZ_TIMEOUT}s; cannot mint a join token for ${NODE_NAME}"
}

# mint_token: print a bootstrap token that expires TOKEN_TTL from now.
mint_token() {
  local token
  token=$(kubeadm token create --kubeconfig "${ADMIN_CONF}" --ttl "${TOKEN_TTL}" \
    --description "katak8s: join of ${NODE_NAME}") || fatal "kubeadm token create failed"
  [[ "${token}" =~ ^[a-z0-9]{6}\.[a-z0-9]{16}$ ]] || fatal "kubeadm token create printed no token"
  printf '%s\n' "${token}"
}

# ca_cert_hash: sha256 of the CA's public key (SubjectPublicKeyInfo, DER): what
# discovery.bootstrapToken.caCertHashes pins (kubeadm join docs; works for RSA and ECDSA).
ca_cert_hash() {
  local hash
  [[ -f "${CA_CERT}" ]] || fatal "no ${CA_CERT#"${KATAK8S_ROOT}"}: this is not the first control plane"
  hash=$(openssl x509 -pubkey -noout -in "${CA_CERT}" | openssl pkey -pubin -outform der \
    | openssl dgst -sha256 -hex | sed 's/^.* //')
  [[ "${hash}" =~ ^[0-9a-f]{64}$ ]] || fatal "could not hash the CA public key of ${CA_CERT#"${KATAK8S_ROOT}"}"
  printf 'sha256:%s\n' "${hash}"
}

# upload_certs: re-encrypt the shared control-plane certificates into the kubeadm-certs
# Secret under a key kubeadm generates now (the Secret expires after two hours); print the
# key, the last line kubeadm prints (cmd/kubeadm/app/cmd/phases/init/uploadcerts.go).
upload_certs() {
  local out key config=()
  [[ -f "${INIT_CONFIG}" ]] && config=(--config "${INIT_CONFIG}")
  out=$(kubeadm init phase upload-certs --upload-certs "${config[@]}") \
    || fatal "kubeadm init phase upload-certs failed; control plane ${NODE_NAME} cannot join"
  key=$(tail -n 1 <<<"${out}")
  [[ "${key}" =~ ^[0-9a-f]{64}$ ]] || fatal "kubeadm init phase upload-certs printed no certificate key"
  printf '%s\n' "${key}"
}

# main: the three values are collected first and printed together at the very end.
main() {
  local token hash key=""
  require_root
  wait_api
  drain_for_upgrade "${NODE_NAME}"
  token=$(mint_token)
  hash=$(ca_cert_hash)
  if [[ "${CONTROL_PLANE}" == true ]]; then
    key=$(upload_certs)
  fi
  printf 'token=%s\nca_cert_hash=%s\n' "${token}" "${hash}"
  [[ -z "${key}" ]] || printf 'certificate_key=%s\n' "${key}"
  log_info "minted join credentials for ${NODE_NAME} (token valid ${TOKEN_TTL})"
}

main "$@"
