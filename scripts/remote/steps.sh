#!/usr/bin/env bash
set -euo pipefail
# The tail of a command that runs several phases of one node in order (components/nodes/
# steps.py render_steps puts KATAK8S_STEPS and KATAK8S_PROGRAMS above it: each program is a
# whole phase, phase.py render_program). Why one command for several phases: every SSH step
# costs a session on the jump host and a slot of the engine's parallelism (issue #15).
# What stays per phase: a phase runs only when its program differs from the one that last
# succeeded on this node (a sha256 stamp under /var/lib/katak8s/phases), so a kataVersion or
# kubernetesVersion change re-runs just the phase that reads it, and a run that failed half
# way resumes at the phase that failed. Each phase runs in its own bash, as its own command did.
# Nothing here is run on its own; like launch.sh it is embedded without its comment lines
# (steps.py), so no heredoc here.
# inputs: KATAK8S_STEPS (phase names), KATAK8S_PROGRAMS (their programs, same order),
#         KATAK8S_STEP_TIMEOUT (seconds each phase may take, as when it was its own command)
katak8s_stamps="${KATAK8S_ROOT:-}/var/lib/katak8s/phases"
for katak8s_i in "${!KATAK8S_STEPS[@]}"; do
  katak8s_sum=$(printf '%s' "${KATAK8S_PROGRAMS[katak8s_i]}" | sha256sum)
  katak8s_sum="${katak8s_sum%% *}"
  katak8s_stamp="${katak8s_stamps}/${KATAK8S_STEPS[katak8s_i]}.sha256"
  if [[ -f "${katak8s_stamp}" && "$(<"${katak8s_stamp}")" == "${katak8s_sum}" ]]; then
    printf '[katak8s %s] unchanged since it last succeeded here: skipped (sudo bash ~/.katak8s/%s.sh runs it again)\n' \
      "${KATAK8S_STEPS[katak8s_i]}" "${KATAK8S_STEPS[katak8s_i]}" >&2
    continue
  fi
  timeout "${KATAK8S_STEP_TIMEOUT}" bash -c "${KATAK8S_PROGRAMS[katak8s_i]}"
  mkdir -p "${katak8s_stamps}"
  printf '%s\n' "${katak8s_sum}" >"${katak8s_stamp}.tmp"
  mv -f "${katak8s_stamp}.tmp" "${katak8s_stamp}"
done
