#!/usr/bin/env bash
set -euo pipefail
# The one command that runs every katak8s test on a fresh Debian/Ubuntu machine.
#
# It installs what the suite needs, from scratch and only when missing:
#   - system validators via apt-get: shellcheck, cloud-init (`cloud-init schema`),
#     containerd (`containerd config dump` loads the rendered configs);
#   - a virtualenv in ./venv with the pinned requirements-dev.txt;
# then runs pytest over tests/ on every core. Extra arguments go to pytest.
cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf '[test.sh] %s\n' "$*" >&2; }

install_system_tools() {
  local missing=() sudo=()
  command -v shellcheck >/dev/null || missing+=(shellcheck)
  command -v cloud-init >/dev/null || missing+=(cloud-init)
  command -v containerd >/dev/null || missing+=(containerd)
  command -v zstd >/dev/null || missing+=(zstd)
  command -v openssl >/dev/null || missing+=(openssl)
  command -v nft >/dev/null || [[ -x /usr/sbin/nft ]] || missing+=(nftables)
  command -v ip >/dev/null || [[ -x /usr/sbin/ip ]] || missing+=(iproute2)
  command -v python3 >/dev/null || missing+=(python3)
  python3 -c 'import ensurepip' 2>/dev/null || missing+=(python3-venv)
  # uutils' Rust coreutils, Ubuntu 26.04's coreutils: the node scripts run on them too
  # (tests/test_rust_coreutils.py). Optional: installed apart, so a distribution without the
  # package only skips that test.
  local optional=()
  [[ -x /usr/lib/cargo/bin/coreutils/ls ]] || optional+=(rust-coreutils)
  (( ${#missing[@]} + ${#optional[@]} )) || return 0
  [[ "$(id -u)" == 0 ]] || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  if (( ${#missing[@]} )); then
    log "installing ${missing[*]} with apt-get"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  if (( ${#optional[@]} )); then
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "${optional[@]}" >/dev/null 2>&1 || log "${optional[*]} is not available here: tests/test_rust_coreutils.py skips"
  fi
}

install_venv() {
  local stamp=venv/.requirements.sha256 want
  want=$(cat requirements.txt requirements-dev.txt | sha256sum | cut -d' ' -f1)
  if [[ -f "${stamp}" && "$(cat "${stamp}")" == "${want}" ]]; then
    return 0
  fi
  log "creating venv/ with requirements-dev.txt"
  python3 -m venv venv
  venv/bin/pip install -q --disable-pip-version-check -r requirements-dev.txt
  printf '%s\n' "${want}" >"${stamp}"
}

install_system_tools
install_venv
exec venv/bin/python -m pytest -n "$(nproc)" "$@"
