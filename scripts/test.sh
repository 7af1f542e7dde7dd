#!/usr/bin/env bash
# Set up, then run the test suite (pass pytest options through, e.g. -m "not slurm").
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
python3 -m pytest "$@"
