#!/usr/bin/env bash
set -euo pipefail
# Kernel prerequisites for the kubelet, the CNI and Kata: wait for cloud-init (it holds the
# apt/dpkg locks on first boot), load and persist overlay, br_netfilter, vhost_vsock and
# vhost_net, set forwarding and bridge-netfilter sysctls, turn swap off now and after
# reboot, size /dev/shm for the Kata VMs, and install the metadata guard (pods may not reach
# 169.254.169.254). Every step compares before it changes anything.
# inputs: CLOUD_INIT_TIMEOUT (seconds), NODE_RESERVED_MIB
# shellcheck source=scripts/remote/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
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
