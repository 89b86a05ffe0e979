#!/usr/bin/env bash
# katak8s phase kernel: generated from scripts/remote/node/10-kernel.sh and scripts/remote/lib/common.sh.
# Do not edit on the node: the next `pulumi up` replaces it.
set -euo pipefail
# --- parameters ---
KATAK8S_PHASE=kernel
KATAK8S_LIB=/dev/null
KATAK8S_PARAMS=/dev/null
CLOUD_INIT_TIMEOUT=900
NODE_RESERVED_MIB=968
# --- scripts/remote/lib/common.sh ---
set -euo pipefail
# katak8s common library: sourced by every phase script, and inlined ahead of it in the
# phase bundle that reaches a node (components/nodes/phase.py). Functions only, no side effects.
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
# --- scripts/remote/node/10-kernel.sh ---
set -euo pipefail
# Kernel prerequisites for the kubelet, the CNI and Kata: wait for cloud-init (it holds the
# apt/dpkg locks on first boot), load and persist overlay, br_netfilter, vhost_vsock and
# vhost_net, set forwarding and bridge-netfilter sysctls, turn swap off now and after
# reboot, size /dev/shm for the Kata VMs, and install the metadata guard (pods may not reach
# 169.254.169.254). Every step compares before it changes anything.
# inputs: CLOUD_INIT_TIMEOUT (seconds), NODE_RESERVED_MIB
# shellcheck source=scripts/remote/lib/common.sh
source "${KATAK8S_LIB:-$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh}"
# shellcheck source=/dev/null
source "${KATAK8S_PARAMS:-${1:?usage: $0 PARAMS_FILE}}"

# overlay + br_netfilter: container runtimes and kube-proxy/Calico (upstream-bootstrap.md
# §2.1, Kata CI tests/gha-run-k8s-common.sh); vhost_*: Kata's agent channel and VM network
# (Kata docs/installation.md).
MODULES=(overlay br_netfilter vhost_vsock vhost_net)
# Only ip_forward is required by kubeadm's preflight; the bridge keys are what Kata's CI and
# most CNIs expect (kubernetes PR #123464 leaves them to the network plugin).
SYSCTLS=(
  "net.ipv4.ip_forward = 1"
  "net.bridge.bridge-nf-call-iptables = 1"
  "net.bridge.bridge-nf-call-ip6tables = 1"
)

# --- cloud-init first: its package installs hold the dpkg lock ---
wait_cloud_init() {
  local rc=0
  command -v cloud-init >/dev/null || return 0
  timeout "${CLOUD_INIT_TIMEOUT}" cloud-init status --wait >/dev/null || rc=$?
  case ${rc} in
    0) ;;
    124) fatal "cloud-init still running after ${CLOUD_INIT_TIMEOUT}s; inspect 'cloud-init status --long'" \
      "and /var/log/cloud-init-output.log on the node, then run 'pulumi up' again" ;;
    # 1 = error, 2 = done with recoverable errors (cloud-init >= 23.4): finished either way.
    *) log_warn "cloud-init finished with errors (exit ${rc}); see 'cloud-init status --long'" ;;
  esac
}

# --- kernel modules: now, and on every boot via modules-load.d ---
load_modules() {
  local mod
  printf '%s\n' "# katak8s: container runtime, CNI and Kata modules" "${MODULES[@]}" \
    | write_file "${KATAK8S_ROOT}/etc/modules-load.d/katak8s.conf" 0644 || true
  for mod in "${MODULES[@]}"; do
    [[ -d "${KATAK8S_ROOT}/sys/module/${mod}" ]] && continue
    modprobe "${mod}" || fatal "modprobe ${mod} failed; install linux-modules-extra-\$(uname -r) or use" \
      "Ubuntu's generic cloud kernel"
  done
}

# --- sysctls: persisted in sysctl.d, applied only when the live values differ ---
apply_sysctls() {
  local line key want have stale=0
  printf '%s\n' "# katak8s: kubelet and CNI requirements" "${SYSCTLS[@]}" \
    | write_file "${KATAK8S_ROOT}/etc/sysctl.d/99-katak8s.conf" 0644 || true
  for line in "${SYSCTLS[@]}"; do
    key=${line%% =*}
    want=${line##*= }
    have=$(cat "${KATAK8S_ROOT}/proc/sys/${key//.//}" 2>/dev/null || true)
    [[ ${have} == "${want}" ]] || stale=1
  done
  (( stale )) || return 0
  sysctl --system >/dev/null || fatal "sysctl --system failed; check /etc/sysctl.d for a bad file"
}

# --- swap: the kubelet's failSwapOn defaults to true (upstream-bootstrap.md §2.2) ---
disable_swap() {
  local fstab="${KATAK8S_ROOT}/etc/fstab"
  if [[ $(wc -l <"${KATAK8S_ROOT}/proc/swaps") -gt 1 ]]; then
    swapoff -a || fatal "swapoff -a failed; free memory or remove the swap device by hand"
  fi
  if [[ -f ${fstab} ]] && grep -qE '^[^#].*[[:space:]]swap[[:space:]]' "${fstab}"; then
    sed -ri 's/^([^#].*[[:space:]]swap[[:space:]].*)$/# katak8s: swap off for the kubelet: \1/' "${fstab}"
    log_info "commented out the swap entries in /etc/fstab"
  fi
}

# --- metadata guard: pods must not reach the OpenStack metadata service ---
# WHY: a node's user data holds its pinned SSH host PRIVATE key (components/openstack/cloudinit.py), and
# the metadata service serves user data to whatever reaches 169.254.169.254 from the server.
# Pod traffic gets there forwarded and NATed by the node, so any pod outside a blocking
# NetworkPolicy could read the key. The node (cloud-init, host processes, hostNetwork pods)
# sends through the output hook, not forward: only root keeps access there (cloud-init runs
# as root; `meta skuid` is the sending socket's user, nft(8) META EXPRESSION), so a local
# non-root process or a non-root hostNetwork pod cannot read the key either (issue #12).
# Neutron's DHCP agent also serves metadata at fe80::a9fe:a9fe on IPv6-enabled networks
# (neutron metadata docs, Victoria+): dropped the same way.
# HOW (upstream nft(8)): our own table and oneshot unit, never /etc/nftables.conf (its `flush
# ruleset` would wipe Calico's and kube-proxy's rules). A drop "occurs instantly, no further
# chains or hooks are evaluated" (verdict statement): no Calico ACCEPT can undo it, and
# `filter - 10` (priority name arithmetic, CHAINS) only runs it first. A trailing `*` matches
# an interface name prefix (primary expressions): cali* = pod veths (kata pods' too),
# vxlan.calico / tunl* = Calico's overlays. One `nft -f` file is one transaction (nftables
# wiki, Atomic rule replacement): `table` adds ours if missing (TABLES: add does not fail if
# it exists), `delete table` removes it, then it is rebuilt: no duplicate rules, no gap.
GUARD_RULES=/etc/katak8s/metadata-guard.nft
GUARD_UNIT=katak8s-metadata-guard.service

guard_rules() {
  cat <<EOF
#!/usr/sbin/nft -f
# katak8s: pods may not reach the cloud metadata service (loaded by ${GUARD_UNIT})
table inet katak8s_guard
delete table inet katak8s_guard
table inet katak8s_guard {
  chain forward {
    type filter hook forward priority filter - 10; policy accept;
    iifname "cali*" ip daddr 169.254.169.254 counter drop
    iifname "vxlan.calico" ip daddr 169.254.169.254 counter drop
    iifname "tunl*" ip daddr 169.254.169.254 counter drop
    iifname "cali*" ip6 daddr fe80::a9fe:a9fe counter drop
  }
  chain output {
    type filter hook output priority filter - 10; policy accept;
    ip daddr 169.254.169.254 meta skuid != 0 counter drop
    ip6 daddr fe80::a9fe:a9fe meta skuid != 0 counter drop
  }
}
EOF
}

# Ordered like Debian's nftables.service: early, before the network and the kubelet.
# No ExecStop: stopping the unit must not silently reopen the hole.
guard_unit() {
  cat <<EOF
[Unit]
Description=katak8s: drop pod traffic to the cloud metadata service
Documentation=file:${GUARD_RULES}
Wants=network-pre.target
Before=network-pre.target kubelet.service shutdown.target
Conflicts=shutdown.target
DefaultDependencies=no

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/sbin/nft -f ${GUARD_RULES}
ExecReload=/usr/sbin/nft -f ${GUARD_RULES}

[Install]
WantedBy=sysinit.target
EOF
}

install_metadata_guard() {
  local tmp rules=0 unit=0
  ensure_packages nftables
  tmp=$(mktemp)
  guard_rules >"${tmp}"
  if ! cmp -s "${tmp}" "${KATAK8S_ROOT}${GUARD_RULES}"; then
    nft -c -f "${tmp}" || { rm -f "${tmp}"; fatal "nft rejects the metadata guard rules (see above);" \
      "check the nftables package ('nft --version')"; }
  fi
  write_file "${KATAK8S_ROOT}${GUARD_RULES}" 0644 <"${tmp}" && rules=1
  rm -f "${tmp}"
  guard_unit | write_file "${KATAK8S_ROOT}/etc/systemd/system/${GUARD_UNIT}" 0644 && unit=1
  if (( unit )); then systemctl daemon-reload; fi
  systemctl is-enabled --quiet "${GUARD_UNIT}" || systemctl enable "${GUARD_UNIT}"
  # restart, not `enable --now`: an active oneshot must reload changed rules.
  if (( rules || unit )) || ! systemctl is-active --quiet "${GUARD_UNIT}"; then
    systemctl restart "${GUARD_UNIT}" || fatal "${GUARD_UNIT} failed; see 'journalctl -u ${GUARD_UNIT}'"
  fi
}

# --- /dev/shm holds every Kata VM's memory: with virtio-fs, runtime-rs backs guest RAM with
# a file there (kata 4.1.0 docs/how-to/how-to-use-virtio-fs-with-kata.md: a VM that does not
# fit "fails to start", a running one that crosses the limit "receives a SIGBUS"). The tmpfs
# default is half of RAM, less than one default 2 GiB VM on a 4 GiB node (review-node F2). It
# is sized to what pods may use, MemTotal minus the kubelet's reservations: a tmpfs size is a
# cap, not an allocation, and the pods' memory cgroups still bound what is used. Persisted in
# /etc/fstab (systemd remounts /dev/shm with it at boot) and applied now by a remount ---
size_shm() {
  local fstab="${KATAK8S_ROOT}/etc/fstab" total size line
  total=$(( $(awk '/^MemTotal:/ {print $2}' "${KATAK8S_ROOT}/proc/meminfo") / 1024 ))
  size=$(( total - NODE_RESERVED_MIB ))
  (( size > 0 )) || fatal "this node has ${total} MiB of memory, not more than the ${NODE_RESERVED_MIB} MiB" \
    "the kubelet keeps for the system; use a larger flavor"
  line="tmpfs /dev/shm tmpfs defaults,nosuid,nodev,size=${size}m 0 0"
  step_done shm "${line}" && grep -qxF "${line}" "${fstab}" 2>/dev/null && return 0
  touch "${fstab}"
  { grep -vE '^[[:space:]]*[^#[:space:]]+[[:space:]]+/dev/shm[[:space:]]' "${fstab}" || true
    printf '%s\n' "${line}"; } | write_file "${fstab}" 0644 || true
  # A tmpfs cannot shrink below what it holds (EINVAL): then the new size applies at the next
  # boot, and the running VMs keep theirs.
  if ! mount -o "remount,size=${size}m" /dev/shm; then
    log_warn "/dev/shm holds more than ${size} MiB now; the new size applies at the next boot (/etc/fstab)"
  fi
  mark_step shm "${line}"
  log_info "/dev/shm sized to ${size} MiB for Kata VMs"
}

main() {
  require_root
  wait_cloud_init
  load_modules
  apply_sysctls
  disable_swap
  size_shm
  install_metadata_guard
  log_info "kernel prerequisites in place"
}

main "$@"
