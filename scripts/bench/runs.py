"""Targets 2-4: seed 000 against the tutorial way, stage cost by depth, sweep overhead."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from bench.common import (
    REPO,
    SWEEP_FULL,
    SWEEP_QUICK,
    TUTORIAL_OVERRIDES,
    compose_cfg,
    growlab_net,
    interleaved,
    log,
    read_json,
    run_process,
    sync,
)
from growlab.data import load_data
from growlab.data.sets.fashion_mnist import raw_fashion_mnist_root
from growlab.engine.feature_cache import cached_inputs
from growlab.engine.optim import build_optimizer
from growlab.engine.replica_axis import Solo
from growlab.engine.training import train_epoch
from growlab.growth.nets import GrowableNet
from growlab.growth.operators import RandomBlock
from growlab.growth.strategies import GrowthStrategy


def bench_one_stage_run(device: torch.device, tmp: Path) -> dict[str, Any]:
    """`python -m growlab` for one 1-epoch stage of the same MLP: the whole process's cost."""
    run_dir = tmp / "one_stage"
    args = [
        "-m",
        "growlab",
        "data=fashion_mnist",
        "model.width=256",
        "depth=2",
        "train.start_depth=2",
        "train.epochs_per_stage=1",
        "train.batch_size=256",
        "logger=none",
        f"device={device.type}",
        f"hydra.run.dir={run_dir}",
    ]
    log("roofline: one-stage `python -m growlab` run")
    wall, _ = run_process(args)
    summary = read_json(run_dir / "summary.json")
    return {
        "process_wall_s": wall,
        "stage_wall_s": summary["stages"][0]["wall_s"],
        "test_acc": summary["test_acc"],
    }


def profile_epoch(device: torch.device) -> str:
    """torch.profiler's table of one growlab epoch (the roofline MLP), by self CPU time."""
    from torch.profiler import ProfilerActivity, profile

    cfg = compose_cfg(["data=fashion_mnist", "model.width=256", "depth=2", "logger=none"])
    data = load_data(cfg.data).to(device)
    net = growlab_net(cfg, data, depth=2, device=device)
    optimizer = build_optimizer(cfg, net)
    generator = torch.Generator().manual_seed(0)
    inputs = net.features(data.x_train, upto=0)
    train_epoch(Solo(net), inputs, data.y_train, optimizer, 256, [generator], 0)
    activities = [ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    with profile(activities=activities) as prof:
        train_epoch(Solo(net), inputs, data.y_train, optimizer, 256, [generator], 0)
    sort = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    return str(prof.key_averages().table(sort_by=sort, row_limit=20))


# ---- 2. against the tutorial --------------------------------------------------------------


def growlab_greedy_run(
    device: torch.device, depth: int, epochs: int, run_dir: Path, extra: list[str]
) -> dict[str, Any]:
    args = [
        "-m",
        "growlab",
        *TUTORIAL_OVERRIDES,
        f"depth={depth}",
        f"train.epochs_per_stage={epochs}",
        f"device={device.type}",
        f"hydra.run.dir={run_dir}",
        *extra,
    ]
    wall, _ = run_process(args)
    summary = read_json(run_dir / "summary.json")
    return {
        "wall_s": wall,
        "test_acc": summary["test_acc"],
        "stage_wall_s": [s["wall_s"] for s in summary["stages"]],
    }


def bench_tutorial(
    device: torch.device, stages: int, epochs: int, repeats: int, tmp: Path
) -> dict[str, Any]:
    """Both procedures as whole processes, alternately `repeats` times; the best wall of each."""
    root = str(raw_fashion_mnist_root())
    script = str(REPO / "scripts" / "bench_tutorial.py")
    args = [script, "--root", root, f"--stages={stages}", f"--epochs={epochs}"]
    ours_runs: list[dict[str, Any]] = []
    theirs_runs: list[dict[str, Any]] = []
    for r in range(repeats):
        log(f"tutorial: growlab, {stages} stages x {epochs} epoch(s) [{r + 1}/{repeats}]")
        ours_runs.append(growlab_greedy_run(device, stages, epochs, tmp / f"greedy_{r}", []))
        log(f"tutorial: tutorial-style loop, {stages} stages x {epochs} epoch(s)")
        wall, out = run_process([*args, f"--device={device.type}"])
        theirs_runs.append({**json.loads(out.strip().splitlines()[-1]), "process_wall_s": wall})
    ours = min(ours_runs, key=lambda run: run["wall_s"])
    theirs = min(theirs_runs, key=lambda run: run["process_wall_s"])
    return {
        "stages": stages,
        "epochs_per_stage": epochs,
        "repeats": repeats,
        "growlab": ours,
        "tutorial": theirs,
        "growlab_walls_s": [run["wall_s"] for run in ours_runs],
        "tutorial_walls_s": [run["process_wall_s"] for run in theirs_runs],
        "speedup": theirs["process_wall_s"] / ours["wall_s"],
        "acc_difference": ours["test_acc"] - theirs["test_acc"],
    }


# ---- 3. stage cost at depth ---------------------------------------------------------------


def bench_stage_cost(
    device: torch.device, repeats: int, deep_stage: int, runs: dict[str, list[float]]
) -> dict[str, Any]:
    """Time growlab's train_epoch at stage 1 and at stage `deep_stage`, cache on and off.

    The stage-1 network has one trainable block; the deep one is grown from it the way
    freeze-all-but-new grows (random block before the head, only it and the head trainable).
    """
    cfg = compose_cfg([*TUTORIAL_OVERRIDES, f"depth={deep_stage}"])
    data = load_data(cfg.data).to(device)
    batch = cfg.train.batch_size
    generator = torch.Generator().manual_seed(0)
    cache_bytes = cfg.train.cache_max_mb * 2**20

    def epoch_fn(net: GrowableNet, max_bytes: int) -> tuple[Callable[[], Any], float]:
        """(one epoch of the stage, seconds spent building its inputs)."""
        optimizer = build_optimizer(cfg, net)
        sync(device)
        t0 = time.perf_counter()
        inputs, start = cached_inputs(net, data.x_train, max_bytes)
        sync(device)
        build_s = time.perf_counter() - t0

        def epoch() -> None:
            train_epoch(Solo(net), inputs, data.y_train, optimizer, batch, [generator], start)

        return epoch, build_s

    shallow = growlab_net(cfg, data, depth=1, device=device)
    deep = growlab_net(cfg, data, depth=1, device=device)
    greedy = GrowthStrategy("freeze-all-but-new", operator=RandomBlock())
    for _ in range(deep_stage - 1):
        greedy.set_trainable(deep, "grow", greedy.grow(deep).index)
    first, _ = epoch_fn(shallow, cache_bytes)
    cached, cache_build = epoch_fn(deep, cache_bytes)
    uncached, _ = epoch_fn(deep, 0)
    log(f"stage cost: stage-1 and stage-{deep_stage} epochs (cache on, off), {repeats} rounds")
    times = interleaved({"first": first, "cached": cached, "uncached": uncached}, device, repeats)
    best = {name: min(t) for name, t in times.items()}
    result: dict[str, Any] = {
        "deep_stage": deep_stage,
        "stage1_epoch_s": best["first"],
        "deep_epoch_cached_s": best["cached"],
        "deep_epoch_uncached_s": best["uncached"],
        "all_times_s": times,
        "cache_build_s": cache_build,
        "ratio_cached": best["cached"] / best["first"],
        "ratio_uncached": best["uncached"] / best["first"],
        "ratio_cached_incl_build_1_epoch": (best["cached"] + cache_build) / best["first"],
    }
    for name, walls in runs.items():
        if len(walls) >= deep_stage:
            result[f"run_{name}_stage_wall_s"] = walls
            result[f"run_{name}_ratio"] = walls[deep_stage - 1] / walls[0]
    return result


# ---- 4. sweep overhead --------------------------------------------------------------------


def bench_sweep(device: torch.device, quick: bool, tmp: Path) -> dict[str, Any]:
    sweep_dir = tmp / "sweep"
    grid = SWEEP_QUICK if quick else SWEEP_FULL
    extra = ["train.epochs_per_stage=2"] if quick else []
    args = ["-m", "growlab", "-m", *grid, *extra, "logger=none", f"device={device.type}"]
    log(f"sweep: {' '.join(grid)}")
    wall, _ = run_process([*args, f"hydra.sweep.dir={sweep_dir}"])
    summaries = [read_json(p) for p in sorted(sweep_dir.glob("*/summary.json"))]
    training = sum(s["wall_s"] for summary in summaries for s in summary["stages"])
    runs = len(summaries)
    # The part paid once per sweep: starting Python and importing growlab's modules.
    startup, _ = run_process(["-c", "import growlab.__main__, growlab.engine.loop"])
    return {
        "grid": grid + extra,
        "runs": runs,
        "completed": sum(s["status"] == "completed" for s in summaries),
        "sweep_wall_s": wall,
        "training_s": training,
        "overhead_per_run_s": (wall - training) / runs,
        "startup_s": startup,
        "overhead_per_run_excl_startup_s": (wall - training - startup) / runs,
    }


# ---- report -------------------------------------------------------------------------------
