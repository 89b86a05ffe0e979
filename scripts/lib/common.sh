#!/usr/bin/env bash
# katak8s common library: sourced by every phase script, and inlined ahead of it in the
# phase bundle that reaches a node (components/phase.py). Functions only, no side effects.
#
# Conventions:
#   - logs go to stderr, prefixed with the phase name and a level;
#   - KATAK8S_ROOT (unset on real nodes) prefixes every path the scripts write, so the
#     test sandbox can run them for real inside a temporary directory;
#   - nothing here echoes its arguments on failure: callers may pass secrets on stdin.
set -euo pipefail

KATAK8S_ROOT="${KATAK8S_ROOT:-}"
KATAK8S_STATE_DIR="${KATAK8S_ROOT}/var/lib/katak8s"

log_info() { printf '[katak8s %s] INFO  %s\n' "${KATAK8S_PHASE:-?}" "$*" >&2; }
log_warn() { printf '[katak8s %s] WARN  %s\n' "${KATAK8S_PHASE:-?}" "$*" >&2; }
# fatal MESSAGE: stop the phase with a message that tells the operator what to do.
fatal() {
  printf '[katak8s %s] ERROR %s\n' "${KATAK8S_PHASE:-?}" "$*" >&2
  exit 1
}

# require_root: phases change system state and must run through sudo.
require_root() {
  [[ -n "${KATAK8S_ROOT}" || "$(id -u)" == 0 ]] || fatal "run this phase as root (sudo)"
}

# retry ATTEMPTS COMMAND...: run COMMAND until it succeeds, backing off 2, 4, 8 ... 30 s.
retry() {
  local attempts=$1 n=1 delay=2
  shift
  until "$@"; do
    if (( n >= attempts )); then
      log_warn "gave up after ${attempts} attempts: $1"
      return 1
    fi
    log_warn "attempt ${n}/${attempts} failed: $1; retrying in ${delay}s"
    sleep "${delay}"
    n=$(( n + 1 ))
    delay=$(( delay * 2 > 30 ? 30 : delay * 2 ))
  done
}

# wait_for SECONDS DESCRIPTION COMMAND...: poll a real probe every 2 s until it succeeds
# or SECONDS have passed; never a blind sleep.
wait_for() {
  local limit=$1 what=$2 start=$SECONDS
  shift 2
  until "$@" >/dev/null 2>&1; do
    if (( SECONDS - start >= limit )); then
      log_warn "timed out after ${limit}s waiting for ${what}"
      return 1
    fi
    sleep 2
  done
  log_info "${what}: ready after $(( SECONDS - start ))s"
}

# write_file PATH MODE: write stdin to PATH only when the content differs.
# Returns 0 when the file changed, 1 when it was already up to date.
write_file() {
  local path=$1 mode=$2 tmp
  tmp=$(mktemp)
  cat >"${tmp}"
  if [[ -f "${path}" ]] && cmp -s "${tmp}" "${path}"; then
    rm -f "${tmp}"
    return 1
  fi
  mkdir -p "$(dirname "${path}")"
  install -m "${mode}" "${tmp}" "${path}"
  rm -f "${tmp}"
  log_info "wrote ${path#"${KATAK8S_ROOT}"}"
}

# apt_get ARGS...: apt-get that waits for dpkg locks (cloud-init, unattended-upgrades)
# and retries network failures.
apt_get() {
  retry 5 env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 -y -q "$@"
}

# sha256_of FILE: print the sha256 of FILE.
sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

# mark_done NAME: record that a step finished, with the parameters' hash it ran with.
mark_done() {
  mkdir -p "${KATAK8S_STATE_DIR}"
  printf '%s\n' "${KATAK8S_BUNDLE_SHA256:-unknown}" >"${KATAK8S_STATE_DIR}/$1.done"
}
