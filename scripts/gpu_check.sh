#!/usr/bin/env bash
# The checks that need a GPU (CI has none), in one run on a CUDA machine:
#   bash scripts/gpu_check.sh [output folder]
# 1. the CUDA tests (tests/test_cuda.py): stacked replicas against their solo runs on CUDA,
#    a device=cuda run of every strategy, the stack resident on the GPU, no host
#    synchronisation inside an epoch;
# 2. the benchmark's GPU rows: one Fashion-MNIST epoch of the 784-256-256-10 MLP and 8 and 16
#    seeds of it stacked (scripts/benchmark.py --only stacks --device cuda).
# Needs growlab's dependencies and Fashion-MNIST (GROWLAB_FASHION_MNIST_DIR, see README).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out=${1:-outputs/gpu_check}
py=${PYTHON:-python3}
mkdir -p "$out"
"$py" -c 'import torch; assert torch.cuda.is_available(), "no CUDA GPU"; print(torch.__version__, torch.cuda.get_device_name())'
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
"$py" -m pytest -q -m cuda tests/test_cuda.py --junitxml="$out/cuda_tests.xml"
"$py" scripts/benchmark.py --only stacks --device cuda --out "$out/benchmark_gpu.json"
