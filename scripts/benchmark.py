"""growlab's performance targets, measured in one run on this machine.

    python scripts/benchmark.py            # full (a few minutes on a 2-core CPU)
    python scripts/benchmark.py --quick    # smoke version (about a minute)

Seven measurements, each reported as a ratio against its target (and by how much it is missed):

0. start-up: `python -m growlab logger=none train.epochs_per_stage=0` against
   `python -c "import torch"`, whole processes, best of 3 (target <= 1.5x).
1. roofline: one Fashion-MNIST epoch of an MLP 784-256-256-10 (Adam, batch 256) through
   growlab's own `train_epoch`, against 3 x forward FLOPs x N divided by the best fp32 matmul
   throughput measured here and now (target <= 1.3x). A plain whole-tensor loop and a torchvision
   DataLoader(num_workers=1) + ToTensor loop are timed for reference.
2. tutorial: seed 000's greedy layer-wise procedure written the tutorial way
   (scripts/bench_tutorial.py) against the same procedure through `python -m growlab`, with
   both final test accuracies (target >= 10x faster).
3. stage cost: the stage-10 epoch of freeze-all-but-new over the stage-1 epoch, with and without
   the frozen-feature cache (target <= 1.5x with the cache).
4. sweep overhead: a basic-launcher sweep on digits; (sweep wall time - sum of the stages'
   wall_s) / runs is the time each run spends outside training (target <= 0.3 s).
5. slurm packing: a 48-run digits sweep on the local SLURM cluster (scripts/slurm/up.sh) with
   `hydra.sweeper.runs_per_job=8` against one run per array task (target <= 1/3 of the wall);
   skipped when no cluster answers.
6. stacks: eight digits seeds of the default run as one stack (hydra.sweeper.stack_seeds=true)
   against one by one, whole processes (target <= 0.5x); and one Fashion-MNIST epoch of the
   784-256-256-10 MLP (batch 256) for R seeds stacked against one seed: on the CPU 8 seeds are
   reported; on a GPU 8, 16 and 64 seeds (target for 64 <= 2x, in full float32 and, as the
   explicit option train.tf32=true, in TF32) and the one-seed epoch itself (target <= 0.02 s);
   scripts/bench/gpu_epoch.py, in a process of its own, profiles that epoch's steps.
7. lm: nanoGPT's CPU recipe on data=shakespeare_char (experiment=lm_char_baseline), training
   steps per second through growlab's `train_epoch` against scripts/bench/lm_plain_loop.py's
   plain loop, alternately in one process (target >= 0.9x).

CUDA is used when available (timings synchronise the device). Writes all numbers to --out.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from bench.common import REPO, SECTIONS, log
from bench.lm import bench_lm_steps
from bench.report import meta, print_report, targets
from bench.roofline import bench_roofline
from bench.runs import (
    bench_one_stage_run,
    bench_stage_cost,
    bench_sweep,
    bench_tutorial,
    growlab_greedy_run,
    profile_epoch,
)
from bench.stacks import bench_stacked_epoch, bench_stacked_sweep
from bench.startup import bench_slurm_packing, bench_startup


def main() -> None:
    parser = argparse.ArgumentParser(description="growlab's performance targets.")
    parser.add_argument("--quick", action="store_true", help="short smoke version")
    parser.add_argument("--out", type=Path, default=REPO / "outputs" / "benchmark.json")
    parser.add_argument("--epochs-per-stage", type=int, default=1, help="tutorial comparison")
    parser.add_argument("--repeats", type=int, default=None, help="best of N (default 3, quick 2)")
    parser.add_argument(
        "--process-repeats", type=int, default=1, help="tutorial comparison: best of N runs"
    )
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads here and in subprocesses"
    )
    parser.add_argument("--profile", action="store_true", help="print a profile of the epoch")
    args = parser.parse_args()

    name = args.device
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
        os.environ["OMP_NUM_THREADS"] = str(args.threads)
    repeats = args.repeats or (2 if args.quick else 3)
    stack_sizes = [8, 16, 64] if device.type == "cuda" else [8]
    stages = 3 if args.quick else 11
    results: dict[str, Any] = {"meta": meta(device, args.quick)}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="growlab-bench-") as tmp_name:
        tmp = Path(tmp_name)
        if "startup" in args.only:
            results["startup"] = bench_startup(repeats, tmp)
        if "roofline" in args.only:
            results["roofline"] = bench_roofline(device, repeats, args.quick)
            results["roofline"]["one_stage_run"] = bench_one_stage_run(device, tmp)
        runs: dict[str, list[float]] = {}
        if "tutorial" in args.only:
            results["tutorial"] = bench_tutorial(
                device, stages, args.epochs_per_stage, args.process_repeats, tmp
            )
            runs["cached"] = results["tutorial"]["growlab"]["stage_wall_s"]
        if "stage_cost" in args.only:
            if not args.quick:
                log("stage cost: growlab run without the cache")
                extra = ["train.cache_frozen_features=false"]
                run = growlab_greedy_run(device, 10, args.epochs_per_stage, tmp / "nocache", extra)
                runs["uncached"] = run["stage_wall_s"]
            results["stage_cost"] = bench_stage_cost(device, repeats, 10, runs)
        if "sweep" in args.only:
            results["sweep"] = bench_sweep(device, args.quick, tmp)
        if "slurm" in args.only and (packing := bench_slurm_packing(args.quick, tmp)):
            results["slurm"] = packing
        if "stacks" in args.only:
            results["stacks"] = {"epoch": bench_stacked_epoch(device, stack_sizes, repeats)}
            if device.type == "cpu" or "sweep" in args.only:
                results["stacks"]["sweep"] = bench_stacked_sweep(repeats, tmp)
        if "lm" in args.only:
            results["lm"] = bench_lm_steps(device, 50 if args.quick else 200, repeats)
    results["meta"]["benchmark_wall_s"] = time.perf_counter() - started
    results["meta"]["loadavg_end"] = os.getloadavg()
    goals = targets(results)
    results["targets"] = [{**asdict(g), "target": g.target, "met": g.met} for g in goals]
    print_report(results, goals)
    if args.profile:
        print(profile_epoch(device))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
