#!/usr/bin/env bash
# Set up, then run the main job: freeze-all-but-new growth of an MLP on scikit-learn's digits.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
python3 -m growlab "$@"
