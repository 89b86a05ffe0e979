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
# inputs: KATAK8S_HOME, KATAK8S_STEPS (phase names), KATAK8S_PROGRAMS (their programs, same order),
#         KATAK8S_STEP_TIMEOUT (seconds each phase may take, as when it was its own command)
katak8s_stamps="${KATAK8S_ROOT:-}/var/lib/katak8s/phases"
# A stamp holds the program's sum and this server's cloud-init instance id (its Nova server
# id): a server booted from a snapshot of a bootstrapped node runs every phase again.
katak8s_instance=$(cat "${KATAK8S_ROOT:-}/var/lib/cloud/data/instance-id" 2>/dev/null || echo none)
for katak8s_i in "${!KATAK8S_STEPS[@]}"; do
  katak8s_name="${KATAK8S_STEPS[katak8s_i]}"
  katak8s_program="${KATAK8S_PROGRAMS[katak8s_i]}"
  katak8s_sum=$(printf '%s' "${katak8s_program}" | sha256sum)
  katak8s_sum="${katak8s_sum%% *} ${katak8s_instance}"
  katak8s_stamp="${katak8s_stamps}/${katak8s_name}.sha256"
  # Skipped only if the program that last ran here (launch.sh keeps it as <phase>.sh) is this
  # one too: after another release ran the phase, it runs again.
  if [[ -f "${katak8s_stamp}" && "$(<"${katak8s_stamp}")" == "${katak8s_sum}" ]] \
    && printf '%s\n' "${katak8s_program}" | cmp -s - "${KATAK8S_ROOT:-}${KATAK8S_HOME}/${katak8s_name}.sh"; then
    printf '[katak8s %s] unchanged since it last succeeded here: skipped (sudo bash ~/.katak8s/%s.sh runs it again)\n' \
      "${katak8s_name}" "${katak8s_name}" >&2
    continue
  fi
  rm -f "${katak8s_stamp}"
  timeout "${KATAK8S_STEP_TIMEOUT}" bash -c "${katak8s_program}" || {
    katak8s_rc=$?
    printf '[katak8s %s] failed (exit %s%s): the next pulumi up resumes at this phase\n' "${katak8s_name}" \
      "${katak8s_rc}" "$([[ ${katak8s_rc} == 124 ]] && echo ", after ${KATAK8S_STEP_TIMEOUT} s")" >&2
    exit "${katak8s_rc}"
  }
  mkdir -p "${katak8s_stamps}"
  printf '%s\n' "${katak8s_sum}" >"${katak8s_stamp}.tmp"
  mv -f "${katak8s_stamp}.tmp" "${katak8s_stamp}"
done
