#!/usr/bin/env bash
set -euo pipefail
# katak8s common library: sourced by every phase script from beside it, in the node's copy of
# scripts/remote (components/nodes/library.py, launch.sh). Functions only, no side effects.
#
# Conventions:
#   - logs go to stderr, prefixed with the phase name and a level;
#   - KATAK8S_ROOT (unset on real nodes) prefixes every path the scripts write, so the
#     test sandbox can run them for real inside a temporary directory;
#   - nothing here echoes its arguments on failure: callers may pass secrets on stdin.

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
# or SECONDS have passed; never a blind sleep. The attempt count is bounded too
# (SECONDS/2), so the wait stays bounded even where `sleep` returns at once (test sandbox).
wait_for() {
  local limit=$1 what=$2 start=$SECONDS tries=0
  shift 2
  until "$@" >/dev/null 2>&1; do
    tries=$(( tries + 1 ))
    if (( SECONDS - start >= limit || tries * 2 >= limit )); then
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
# and retries network failures. DPkg::Lock::Timeout covers dpkg's lock only: `apt-get
# update` fails at once on the lists lock another update holds (apt-daily, or the kata and
# kube-packages phases, which run side by side), so 8 attempts wait up to ~2 min for it.
# A conffile already on disk (e.g. /etc/crictl.yaml, cri-o's conffile) would make dpkg
# prompt and fail on our closed stdin: keep the file on disk (--force-confold). Its output
# goes to stderr: a phase's stdout is for what it reports (credentials, a kubelet version).
apt_get() {
  retry 8 env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold -y -q "$@" >&2
}

# sha256_of FILE: print the sha256 of FILE.
sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

# mark_done NAME: record that a step finished, with the parameters' hash it ran with.
mark_done() {
  mkdir -p "${KATAK8S_STATE_DIR}"
  printf '%s\n' "${KATAK8S_BUNDLE_SHA256:-unknown}" >"${KATAK8S_STATE_DIR}/$1.done"
}

# pkg_version PKG: print the installed version of a Debian package, or nothing.
pkg_version() {
  local out
  # shellcheck disable=SC2016  # ${...} is dpkg-query's format syntax, not the shell's
  out=$(dpkg-query -W -f='${db:Status-Abbrev}|${Version}' "$1" 2>/dev/null) || return 0
  if [[ ${out} == ii* ]]; then printf '%s\n' "${out#*|}"; fi
}

# apt_update HINT: `apt-get update` that fails when any source fails. By default apt exits 0
# when downloads or signatures fail and only prints W: lines (checked with apt 2.6), so a
# broken source surfaced later as "package not found". APT::Update::Error-Mode=any (apt >=
# 2.1.16, the --error-on=any option) turns them into errors. On failure apt's own E:/W:
# lines are repeated in the message, with what to check: signatures (an expired or
# rotated repository key, apt 3's stricter Sequoia verifier on 26.04) or the network (HINT).
apt_update() {
  local hint=$1 log lines
  log=$(mktemp)
  if apt_get -o APT::Update::Error-Mode=any update 2>"${log}"; then
    cat "${log}" >&2
    rm -f "${log}"
    return 0
  fi
  cat "${log}" >&2
  lines=$(grep -E '^(E|W|Err):' "${log}" | tail -n 4 | tr '\n' ' ')
  if grep -qiE 'EXPKEYSIG|NO_PUBKEY|KEYEXPIRED|not signed|signature|OpenPGP|Sub-process /usr/bin/sqv' "${log}"; then
    rm -f "${log}"
    fatal "apt-get update: a repository's signature did not verify: ${lines}-- its key expired, was" \
      "rotated, or is rejected by apt's verifier. An expired key is fetched again on the next run; for a" \
      "rotated one remove /etc/apt/keyrings/<name>-apt-keyring.gpg; see docs/troubleshooting.md" \
      "'apt-get update fails'"
  fi
  rm -f "${log}"
  fatal "apt-get update failed: ${lines}-- ${hint}"
}

# ensure_packages PKG...: install the packages that are missing (one update, one install);
# installed ones are left alone, so a second run issues no apt command at all.
ensure_packages() {
  local missing=() pkg
  for pkg in "$@"; do
    [[ -n "$(pkg_version "${pkg}")" ]] || missing+=("${pkg}")
  done
  (( ${#missing[@]} )) || return 0
  log_info "installing ${missing[*]}"
  apt_update "check the node's DNS and its route to the Ubuntu mirror"
  apt_get install "${missing[@]}" || fatal "apt-get install ${missing[*]} failed (see the apt output above)"
}

# hold_packages PKG...: `apt-mark hold` the ones installed and not held yet, so that
# unattended-upgrades never replaces them (and restarts them) under a live node; katak8s or
# the operator upgrades them, drained. Packages not installed are skipped.
hold_packages() {
  local held missing=() pkg
  held=$(apt-mark showhold)
  for pkg in "$@"; do
    [[ -n "$(pkg_version "${pkg}")" ]] || continue
    grep -qx "${pkg}" <<<"${held}" || missing+=("${pkg}")
  done
  (( ${#missing[@]} == 0 )) || apt-mark hold "${missing[@]}" >/dev/null
}

# key_expiring KEYRING: true when a key in KEYRING has expired or expires within 30 days
# (`gpg --show-keys --with-colons`: field 7 of pub/sub records is the expiry, seconds since
# the epoch). A keyring gpg cannot read counts as fine: apt reports that itself.
# Only the primary key and the newest signing subkey count: a key that keeps an old, expired
# signing subkey beside its current one is fine. gpg runs in a throw-away home, so it leaves
# no ~/.gnupg (or keyboxd) behind on the node.
key_expiring() {
  local soon home listing
  soon=$(( $(date +%s) + 30 * 86400 ))
  home=$(mktemp -d)
  listing=$(GNUPGHOME="${home}" gpg --batch --show-keys --with-colons "$1" </dev/null 2>/dev/null || true)
  if command -v gpgconf >/dev/null; then GNUPGHOME="${home}" gpgconf --kill all >/dev/null 2>&1 || true; fi
  rm -rf "${home}"
  awk -F: -v soon="${soon}" '
    $1 == "pub" && $7 != "" && $7 + 0 < soon { primary = 1 }
    $1 == "sub" && $12 ~ /s/ && $6 + 0 >= created { created = $6 + 0; newest = $7 }
    END { exit !(primary || (created && newest != "" && newest + 0 < soon)) }' <<<"${listing}"
}

# apt_source NAME URL: the signed deb822 source for a flat repository (pkgs.k8s.io, the
# CRI-O repository on download.opensuse.org): /etc/apt/sources.list.d/NAME.sources, keyed by
# /etc/apt/keyrings/NAME-apt-keyring.gpg from URL/Release.key. The key is fetched again
# whenever the source changes, and when it has expired or expires within 30 days: keys of
# pkgs.k8s.io expire and are extended upstream (kubernetes/release #3818; the current one
# is reported to expire 2026-12-29, kubernetes/website #49049), and a node built before that
# would otherwise fail every later `apt-get update` with EXPKEYSIG. Returns 0 when something
# may have changed (the caller runs apt-get update), 1 otherwise.
apt_source() {
  local name=$1 url=$2 keyring="/etc/apt/keyrings/$1-apt-keyring.gpg" tmp source
  source="${KATAK8S_ROOT}/etc/apt/sources.list.d/${name}.sources"
  tmp=$(mktemp -d)
  printf 'Types: deb\nURIs: %s\nSuites: /\nSigned-By: %s\n' "${url}" "${keyring}" >"${tmp}/sources"
  if [[ -s "${KATAK8S_ROOT}${keyring}" ]] && cmp -s "${tmp}/sources" "${source}" \
    && ! key_expiring "${KATAK8S_ROOT}${keyring}"; then
    rm -rf "${tmp}"
    return 1
  fi
  # Upstream installs these first (pkgs.k8s.io, cri-o/packaging): minimal images lack gpg.
  ensure_packages ca-certificates curl gpg
  retry 5 curl -fsSL --connect-timeout 20 --max-time 120 -o "${tmp}/Release.key" "${url}Release.key" \
    || fatal "cannot download ${url}Release.key; check the node's route to $(cut -d/ -f3 <<<"${url}")"
  # Callers test our status (`apt_source ... &&`), which turns `set -e` off in here: check.
  GNUPGHOME="${tmp}" gpg --batch --yes --dearmor -o "${tmp}/keyring.gpg" <"${tmp}/Release.key" \
    || fatal "${url}Release.key is not a usable OpenPGP key (gpg --dearmor failed, see above)"
  local changed=1
  write_file "${KATAK8S_ROOT}${keyring}" 0644 <"${tmp}/keyring.gpg" && changed=0
  write_file "${source}" 0644 <"${tmp}/sources" && changed=0
  rm -rf "${tmp}"
  # The same key fetched again (upstream has not extended it yet) changes nothing to read.
  return "${changed}"
}

# kubelet_runs_pods: true when a kubelet is active and the runtime holds pod sandboxes,
# i.e. restarting the runtime now would disrupt workloads. Without crictl we cannot tell,
# so an active kubelet counts as running pods.
kubelet_runs_pods() {
  systemctl is-active --quiet kubelet || return 1
  command -v crictl >/dev/null || return 0
  [[ -n "$(crictl --runtime-endpoint "${CRI_SOCKET:-}" pods -q 2>/dev/null)" ]]
}

# joined_runtime_endpoint: the CRI socket a node that already joined a cluster uses (from
# the kubelet's files written by kubeadm), or nothing on a node that never joined.
# kubeadm 1.36+ (NodeLocalCRISocket) keeps it in instance-config.yaml, and `kubeadm upgrade
# node` moves it there from kubeadm-flags.env (phases/upgrade/node kubelet-config).
joined_runtime_endpoint() {
  [[ -f "${KATAK8S_ROOT}/etc/kubernetes/kubelet.conf" ]] || return 0
  grep -hoE 'unix://[^" ]+' "${KATAK8S_ROOT}/var/lib/kubelet/config.yaml" \
    "${KATAK8S_ROOT}/var/lib/kubelet/instance-config.yaml" \
    "${KATAK8S_ROOT}/var/lib/kubelet/kubeadm-flags.env" 2>/dev/null | head -n1 || true
}

# PAUSE_FILE: kubeadm's own pause image for this node's Kubernetes version, written by the
# kube-packages phase from `kubeadm config images list` (review-node F12). Once it exists the
# runtime phases configure it instead of the table's guess (versions.PAUSE_IMAGES), so a
# later run renders the same runtime config again.
PAUSE_FILE="${KATAK8S_ROOT}/etc/katak8s/pause-image"

# runtime_lock / runtime_unlock: one holder at a time of the container runtime on this node.
# The kata phase's smoke test holds it while its sandbox runs; the kube-packages phase
# holds it to restart the runtime. Both phases run side by side after the runtime phase,
# and a restart under the smoke sandbox would fail it (flock(1), bounded wait).
RUNTIME_LOCK_FD=""
runtime_lock() {
  mkdir -p "${KATAK8S_STATE_DIR}"
  exec {RUNTIME_LOCK_FD}>"${KATAK8S_STATE_DIR}/runtime.lock"
  flock -w 1200 "${RUNTIME_LOCK_FD}" || fatal "another katak8s phase held the container runtime for 20 min;" \
    "see 'ps aux | grep katak8s' on this node"
}
runtime_unlock() {
  if [[ -n ${RUNTIME_LOCK_FD} ]]; then flock -u "${RUNTIME_LOCK_FD}"; exec {RUNTIME_LOCK_FD}>&-; fi
  RUNTIME_LOCK_FD=""
}

# effective_pause_image DEFAULT: the pause image the runtime must use.
effective_pause_image() {
  local kubeadm_says=""
  if [[ -s ${PAUSE_FILE} ]]; then kubeadm_says=$(head -n1 "${PAUSE_FILE}"); fi
  printf '%s\n' "${kubeadm_says:-$1}"
}

# same_socket A B: CRI endpoints are equal up to the unix:// scheme and /var/run == /run.
same_socket() {
  local a=${1#unix://} b=${2#unix://}
  [[ "${a#/var}" == "${b#/var}" ]]
}

# mark_step NAME VALUE / step_done NAME VALUE: remember that step NAME finished for VALUE
# (a version, a config hash), so an expensive or disruptive step runs once per VALUE.
mark_step() {
  mkdir -p "${KATAK8S_STATE_DIR}"
  printf '%s\n' "$2" >"${KATAK8S_STATE_DIR}/$1.done"
}
step_done() { [[ "$(cat "${KATAK8S_STATE_DIR}/$1.done" 2>/dev/null)" == "$2" ]]; }

# minor_of vX.Y.Z -> Y
minor_of() {
  local rest=${1#v}
  rest=${rest#*.}
  printf '%s\n' "${rest%%.*}"
}

# older A B: version A is strictly older than version B (a leading v is ignored).
older() {
  [[ ${1#v} != "${2#v}" && "$(printf '%s\n%s\n' "${1#v}" "${2#v}" | sort -V | head -n1)" == "${1#v}" ]]
}
