#!/usr/bin/env bash
# Install growlab and what it needs on a fresh Debian machine (idempotent).
# torch/torchvision are pinned in pyproject.toml; the dataset package gives offline Fashion-MNIST.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d /usr/share/datasets/fashion-mnist ] && command -v apt-get >/dev/null; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends dataset-fashion-mnist
fi
python3 -m pip install -q -c constraints.txt -e '.[dev]'
