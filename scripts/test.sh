#!/usr/bin/env bash
# Set up, then run the test suite: the default run leaves out tests marked slow; `--all` runs
# them too (CI does). Other arguments go to pytest, e.g. -m "not slurm" or -k report.
# The SLURM tests need the local one-node cluster: started here (as root) and stopped after.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
ruff check growlab tests scripts
if [ "$(id -u)" -eq 0 ] && [ -z "${GROWLAB_NO_SLURM:-}" ]; then
  bash scripts/slurm/up.sh
  trap 'bash scripts/slurm/down.sh' EXIT
fi
export WANDB_MODE="${WANDB_MODE:-offline}"
if [ "${1:-}" = "--all" ]; then
  shift
  set -- -m "" "$@"
fi
python3 -m pytest "$@"
