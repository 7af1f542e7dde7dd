#!/usr/bin/env bash
# Tear down the one-node SLURM cluster started by up.sh. Stops exactly the
# daemons whose pids up.sh recorded in $GROWLAB_SLURM_STATE_DIR (default
# /run/growlab-slurm), newest first; daemons it did not start are left alone.
# Jobs still queued/running on our cluster are cancelled first so that no job
# step outlives slurmd. Idempotent: with nothing recorded it just exits 0.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=common.sh
source "$HERE/common.sh"

[[ $EUID -eq 0 ]] || { log "ERROR: must run as root"; exit 1; }
[[ -d $STATE_DIR ]] || { log "nothing to stop ($STATE_DIR absent)"; exit 0; }

# Cancel the jobs of our cluster while slurmctld and slurmd are still there.
if recorded_pid slurmctld slurmctld >/dev/null; then
  jobs=$(timeout 5 squeue -h -o %i 2>/dev/null || true)
  if [[ -n $jobs ]]; then
    log "cancelling jobs: $(echo $jobs)"
    # shellcheck disable=SC2086
    timeout 10 scancel $jobs 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
      [[ -z $(timeout 5 squeue -h -o %i 2>/dev/null || true) ]] && break
      sleep 0.1
    done
  fi
fi

# slurmctld flushes accounting to slurmdbd, which needs mariadb and munge.
stop_recorded slurmd:slurmd slurmctld:slurmctld
stop_recorded slurmdbd:slurmdbd
stop_recorded mariadbd:mariadbd munged:munged

left=$(pgrep -x slurmstepd || true)
[[ -z $left ]] || log "warning: slurmstepd processes still running (not ours to kill): $(echo $left)"
log "down"
