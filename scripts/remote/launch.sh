#!/usr/bin/env bash
set -euo pipefail
# The tail of every katak8s command on a node. components/nodes/phase.py render_program puts
# the phase's parameters above it, with KATAK8S_PHASE, KATAK8S_HOME, KATAK8S_SCRIPT and
# KATAK8S_FILES (one `sha256  path` line per file the phase runs, paths under scripts/remote).
# It finds the copy of scripts/remote (components/nodes/library.py: one directory per version
# under KATAK8S_HOME/scripts, never overwritten) whose files match every sum, and sources the
# phase script from it: the node runs exactly the files the command was rendered with, also
# for a delete that runs long after newer copies arrived. Nothing here is run on its own.
# Its code (not its comments: phase.py strips every line starting with '#', so no heredoc
# here) is in every program, so a code edit here re-runs every phase and replaces the
# kubeconfig read-back (review-pulumi F8): keep it stable.
# inputs: KATAK8S_PHASE, KATAK8S_HOME, KATAK8S_SCRIPT, KATAK8S_FILES
# Compared here, not with `sha256sum --check`: uutils' sha256sum 0.0.17 (Debian's
# rust-coreutils) exits 0 when a sum does NOT match.
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
  # `pulumi up` alone does not copy again: the copy updates only when the scripts or the
  # path change, and pulumi-command reads nothing back (copyController.go Update; no Read).
  printf 'Fix: copy them again with `pulumi up --replace <URN of this node'"'"'s -scripts resource>` (pulumi stack --show-urns lists it).\n' >&2
  exit 1
fi
# The program itself, kept for the operator as KATAK8S_HOME/<phase>.sh: `sudo bash` on it runs
# the phase again, exactly as `pulumi up` did (docs/troubleshooting.md). Rewritten only when it
# differs, so a re-run changes no file.
if [[ -n "${BASH_EXECUTION_STRING:-}" ]]; then
  katak8s_saved="${KATAK8S_ROOT:-}${KATAK8S_HOME}/${KATAK8S_PHASE}.sh"
  if ! printf '%s\n' "${BASH_EXECUTION_STRING}" | cmp -s - "${katak8s_saved}"; then
    printf '%s\n' "${BASH_EXECUTION_STRING}" >"${katak8s_saved}.tmp"
    # Owned like the directory (the SSH user's): an older katak8s copies this path over SFTP.
    chown --reference="${KATAK8S_ROOT:-}${KATAK8S_HOME}" "${katak8s_saved}.tmp"
    mv -f "${katak8s_saved}.tmp" "${katak8s_saved}"
  fi
  unset katak8s_saved
fi
# The parameters are already set above; the phase script sources its library next to itself.
# shellcheck disable=SC2034 # read by the phase script it sources
KATAK8S_PARAMS=/dev/null
# shellcheck source=/dev/null
source "${KATAK8S_DIR}/${KATAK8S_SCRIPT}"
