#!/usr/bin/env bash
set -euo pipefail
# Installs the pinned helm CLI into DIR (default ./bin), checksum-verified. CI only: the
# plan-review workflow renders the Calico charts with it (scripts/check_charts.py), since
# the first preview of a stack cannot (review-pulumi F9). The program itself never runs
# helm: pulumi-kubernetes embeds its own.
# inputs: $1 = the directory to install into

HELM_VERSION=v3.19.0
# sha256 of helm-v3.19.0-linux-amd64.tar.gz as get.helm.sh publishes it beside the archive.
HELM_SHA256=a7f81ce08007091b86d8bd696eb4d86b8d0f2e1b9f6c714be62f82f96a594496

TMP_DIR=""  # global: the EXIT trap runs after main has returned
cleanup() { if [[ -n "${TMP_DIR}" ]]; then rm -rf "${TMP_DIR}"; fi; }

main() {
  local dir=${1:-bin} tmp url
  [[ "$(uname -m)" == x86_64 ]] || { echo "install-helm.sh: only linux amd64 is pinned" >&2; exit 1; }
  TMP_DIR=$(mktemp -d)
  trap cleanup EXIT
  tmp=${TMP_DIR}
  url="https://get.helm.sh/helm-${HELM_VERSION}-linux-amd64.tar.gz"
  curl -fsSL --retry 4 --retry-all-errors --connect-timeout 20 --max-time 300 "${url}" -o "${tmp}/helm.tgz" \
    || { echo "install-helm.sh: cannot download ${url}" >&2; exit 1; }
  if ! printf '%s  %s\n' "${HELM_SHA256}" "${tmp}/helm.tgz" | sha256sum --check --status; then
    echo "install-helm.sh: ${url} does not match the pinned sha256 ${HELM_SHA256}; not installed" >&2
    exit 1
  fi
  tar -xzf "${tmp}/helm.tgz" -C "${tmp}" linux-amd64/helm
  install -D -m 0755 "${tmp}/linux-amd64/helm" "${dir}/helm"
  "${dir}/helm" version --short
}

main "$@"
