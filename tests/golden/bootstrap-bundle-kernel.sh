# katak8s phase kernel: runs scripts/remote/node/10-kernel.sh with scripts/remote/lib/common.sh,
# from this node's copy of scripts/remote whose files have these sha256 sums.
set -euo pipefail
KATAK8S_PHASE=kernel
KATAK8S_HOME=/home/ubuntu/.katak8s
KATAK8S_SCRIPT=node/10-kernel.sh
KATAK8S_FILES=('ba43f5dda7fa2fd08ebf054d9629ac266de72cf4b15967299dcec0d8151bd29f  lib/common.sh' 'cd5c7e62f8403ef6bc371befee79f9da6166d0b581cb13b030e20b941cdadc18  node/10-kernel.sh')
# --- parameters ---
CLOUD_INIT_TIMEOUT=900
NODE_RESERVED_MIB=968
# --- scripts/remote/launch.sh ---
set -euo pipefail
katak8s_copy_matches() {
  local entry actual
  for entry in "${KATAK8S_FILES[@]}"; do
    [[ -f "$1/${entry#*  }" ]] || return 1
    actual=$(sha256sum <"$1/${entry#*  }") || return 1
    [[ "${actual%% *}" == "${entry%%  *}" ]] || return 1
  done
}
KATAK8S_DIR=""
for katak8s_copy in "${KATAK8S_ROOT:-}${KATAK8S_HOME}"/scripts/*/remote; do
  if [[ -d "${katak8s_copy}" ]] && katak8s_copy_matches "${katak8s_copy}"; then
    KATAK8S_DIR="${katak8s_copy}"
    break
  fi
done
unset katak8s_copy
unset -f katak8s_copy_matches
if [[ -z "${KATAK8S_DIR}" ]]; then
  printf 'katak8s %s: no copy of scripts/remote under %s/scripts holds %s with the sha256 this command expects.\n' \
    "${KATAK8S_PHASE}" "${KATAK8S_HOME}" "${KATAK8S_SCRIPT}" >&2
  printf 'Fix: copy them again with `pulumi up --replace <URN of this node'"'"'s -scripts resource>` (pulumi stack --show-urns lists it).\n' >&2
  exit 1
fi
if [[ -n "${BASH_EXECUTION_STRING:-}" ]]; then
  katak8s_saved="${KATAK8S_ROOT:-}${KATAK8S_HOME}/${KATAK8S_PHASE}.sh"
  if ! printf '%s\n' "${BASH_EXECUTION_STRING}" | cmp -s - "${katak8s_saved}"; then
    printf '%s\n' "${BASH_EXECUTION_STRING}" >"${katak8s_saved}.tmp"
    chown --reference="${KATAK8S_ROOT:-}${KATAK8S_HOME}" "${katak8s_saved}.tmp"
    mv -f "${katak8s_saved}.tmp" "${katak8s_saved}"
  fi
  unset katak8s_saved
fi
KATAK8S_PARAMS=/dev/null
source "${KATAK8S_DIR}/${KATAK8S_SCRIPT}"
