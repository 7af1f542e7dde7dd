#!/usr/bin/env bash
# The checks that need a GPU (CI has none), in one run on a CUDA machine:
#   bash scripts/gpu_check.sh [output folder]
# 1. the CUDA tests (tests/test_cuda.py): stacked replicas against their solo runs on CUDA,
#    a device=cuda run of every strategy, the stack resident on the GPU, no host
#    synchronisation inside an epoch;
# 2. the benchmark's GPU rows (scripts/benchmark.py --only stacks lm --device cuda): one
#    Fashion-MNIST epoch of the 784-256-256-10 MLP, 8, 16 and 64 seeds of it stacked (float32
#    and TF32), a profile of its steps, and the character-level LM's training steps per second.
# The benchmark runs first: its figures are what a short GPU lease is for.
# Needs growlab's dependencies and Fashion-MNIST (GROWLAB_FASHION_MNIST_DIR, see README).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out=${1:-outputs/gpu_check}
py=${PYTHON:-python3}
mkdir -p "$out"
"$py" -c 'import torch; assert torch.cuda.is_available(), "no CUDA GPU"; print(torch.__version__, torch.cuda.get_device_name())'
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
status=0
"$py" scripts/benchmark.py --only stacks lm --device cuda --out "$out/benchmark_gpu.json" || status=$?
for part in floor profile stack-profile; do  # a process each, as measured (CUPTI, graphs)
  "$py" scripts/bench/gpu_epoch.py --only "$part" --out "$out/gpu_epoch_$part.json" || status=$?
done
"$py" -m pytest -q -m "" tests/test_cuda.py tests/test_precision.py \
  --junitxml="$out/cuda_tests.xml" || status=$?
exit "$status"
