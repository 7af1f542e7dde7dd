"""The targets table, detail rows and machine facts printed and saved by the benchmark."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from typing import Any

import torch

from bench.common import REPO, Target


def targets(results: dict[str, Any]) -> list[Target]:
    out: list[Target] = []
    if start := results.get("startup"):
        ratio = start["ratio"]
        measured = f"{start['growlab_s']:.2f} s vs import torch {start['import_torch_s']:.2f} s"
        out.append(Target("start-up / import torch", measured, ratio, "<=", 1.5))
    if roof := results.get("roofline"):
        ratio = roof["growlab_ratio"]
        measured = f"{roof['growlab_epoch_s']:.2f} s vs roofline {roof['roofline_s']:.2f} s"
        out.append(Target("epoch / roofline", measured, ratio, "<=", 1.3))
    if tut := results.get("tutorial"):
        ratio = tut["speedup"]
        measured = f"{tut['tutorial']['process_wall_s']:.1f} s vs {tut['growlab']['wall_s']:.1f} s"
        out.append(Target("tutorial / growlab wall", measured, ratio, ">=", 10))
    if cost := results.get("stage_cost"):
        ratio = cost["ratio_cached"]
        measured = f"{cost['deep_epoch_cached_s']:.3f} s vs {cost['stage1_epoch_s']:.3f} s"
        name = f"stage-{cost['deep_stage']} / stage-1 epoch (cache)"
        out.append(Target(name, measured, ratio, "<=", 1.5))
    if sweep := results.get("sweep"):
        per_run = sweep["overhead_per_run_s"]
        measured = f"{sweep['runs']} runs, {sweep['sweep_wall_s']:.1f} s wall"
        out.append(Target("sweep overhead s/run", measured, per_run, "<=", 0.3, " s"))
    if slurm := results.get("slurm"):
        ratio = slurm["ratio"]
        one, eight = slurm["runs_per_job_1"], slurm["runs_per_job_8"]
        measured = (
            f"{eight['runs']} runs: {eight['wall_s']:.0f} s in {eight['array_tasks']} tasks "
            f"vs {one['wall_s']:.0f} s in {one['array_tasks']}"
        )
        name = "SLURM sweep, 8 runs/task"
        out.append(Target(name, measured, ratio, "<=", 1 / 3))
    stacks = results.get("stacks", {})
    if sweep := stacks.get("sweep"):
        measured = f"{sweep['stacked_s']:.2f} s vs {sweep['solo_s']:.2f} s"
        name = "8 digits seeds stacked / one by one"
        out.append(Target(name, measured, sweep["ratio"], "<=", 0.5))
    if (epoch := stacks.get("epoch")) and epoch["device"].startswith("cuda"):
        solo = epoch["solo_epoch_s"]
        out.append(Target("Fashion-MNIST MLP epoch (GPU)", "one seed", solo, "<=", 0.02, " s"))
        measured = f"{epoch['stack_64_epoch_s']:.3f} s vs {solo:.3f} s"
        name = "64 seeds stacked / one seed epoch (GPU)"
        out.append(Target(name, measured, epoch["stack_64_ratio"], "<=", 2))
        tf32 = epoch["solo_tf32_epoch_s"]
        measured = f"{epoch['stack_64_tf32_epoch_s']:.3f} s vs {tf32:.3f} s"
        name = "64 seeds stacked / one seed, train.tf32=true (GPU)"
        out.append(Target(name, measured, epoch["stack_64_tf32_ratio"], "<=", 2))
    if lm := results.get("lm"):
        measured = (
            f"{lm['growlab_steps_per_s']:.1f} vs {lm['plain_steps_per_s']:.1f} steps/s "
            f"({lm['threads']} threads)"
        )
        out.append(Target("LM steps/s, growlab / plain loop", measured, lm["ratio"], ">=", 0.9))
    return out


def detail_rows(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(section, measurement, value) lines for everything behind the targets."""
    rows: list[tuple[str, str, str]] = []
    if start := results.get("startup"):
        rows += [
            ("start-up", "zero-epoch `python -m growlab`", f"{start['growlab_s']:.2f} s"),
            ("start-up", "`python -c 'import torch'`", f"{start['import_torch_s']:.2f} s"),
        ]
    if roof := results.get("roofline"):
        for shape, g in roof["matmul_gflops"].items():
            rows.append(("roofline", f"matmul {shape}", f"{g:.0f} GFLOP/s"))
        n = roof["n_train"]
        gflop = roof["train_flops_epoch"] / 1e9
        counted = roof["train_flops_per_sample_counted"] / (3 * roof["forward_flops_per_sample"])
        rows += [
            ("roofline", "epoch FLOPs (3 x fwd x N)", f"{gflop:.1f} GFLOP, N={n}"),
            (
                "roofline",
                "counted fwd+bwd / (3 x fwd)",
                f"{counted:.2f}",
            ),
            ("roofline", "roofline epoch", f"{roof['roofline_s']:.3f} s"),
            (
                "roofline",
                "growlab train_epoch",
                f"{roof['growlab_epoch_s']:.3f} s ({roof['growlab_ratio']:.2f}x roofline, "
                f"{roof['growlab_ratio_same_round']:.2f}x within one round)",
            ),
            (
                "roofline",
                "plain whole-tensor loop",
                f"{roof['plain_tensor_epoch_s']:.3f} s ({roof['plain_tensor_ratio']:.2f}x)",
            ),
            (
                "roofline",
                "DataLoader(num_workers=1)+ToTensor"
                + (" (extrapolated)" if roof["dataloader_extrapolated"] else ""),
                f"{roof['dataloader_epoch_s']:.2f} s for N={roof['dataloader_n']} "
                f"({roof['dataloader_ratio']:.1f}x)",
            ),
            ("roofline", "growlab load_data (fashion_mnist)", f"{roof['load_data_s']:.2f} s"),
        ]
        if one := roof.get("one_stage_run"):
            rows.append(
                (
                    "roofline",
                    "`python -m growlab`, one 1-epoch stage",
                    f"{one['process_wall_s']:.2f} s process, {one['stage_wall_s']:.2f} s stage, "
                    f"test_acc {one['test_acc']:.4f}",
                )
            )
    if tut := results.get("tutorial"):
        ours, theirs = tut["growlab"], tut["tutorial"]
        label = f"{tut['stages']} stages x {tut['epochs_per_stage']} epoch"
        rows += [
            (
                "tutorial",
                f"tutorial-style ({label})",
                f"{theirs['process_wall_s']:.1f} s, test_acc {theirs['test_acc']:.4f}",
            ),
            (
                "tutorial",
                f"growlab ({label})",
                f"{ours['wall_s']:.1f} s, test_acc {ours['test_acc']:.4f}",
            ),
            ("tutorial", "speed-up", f"{tut['speedup']:.1f}x"),
            ("tutorial", "accuracy difference", f"{tut['acc_difference']:+.4f}"),
        ]
    if cost := results.get("stage_cost"):
        k = cost["deep_stage"]
        rows += [
            ("stage cost", "stage-1 epoch", f"{cost['stage1_epoch_s']:.3f} s"),
            (
                "stage cost",
                f"stage-{k} epoch, cache",
                f"{cost['deep_epoch_cached_s']:.3f} s ({cost['ratio_cached']:.2f}x)",
            ),
            (
                "stage cost",
                f"stage-{k} cache build (once per stage)",
                f"{cost['cache_build_s']:.3f} s "
                f"({cost['ratio_cached_incl_build_1_epoch']:.2f}x for a 1-epoch stage)",
            ),
            (
                "stage cost",
                f"stage-{k} epoch, no cache",
                f"{cost['deep_epoch_uncached_s']:.3f} s ({cost['ratio_uncached']:.2f}x)",
            ),
        ]
        for name in ("cached", "uncached"):
            if f"run_{name}_ratio" in cost:
                walls = cost[f"run_{name}_stage_wall_s"]
                rows.append(
                    (
                        "stage cost",
                        f"growlab run stage wall_s, {name}",
                        f"stage {k}: {walls[k - 1]:.2f} s / stage 1: {walls[0]:.2f} s "
                        f"({cost[f'run_{name}_ratio']:.2f}x)",
                    )
                )
    if sweep := results.get("sweep"):
        rows += [
            ("sweep", "runs completed", f"{sweep['completed']}/{sweep['runs']}"),
            ("sweep", "sweep wall", f"{sweep['sweep_wall_s']:.1f} s"),
            ("sweep", "sum of stage wall_s", f"{sweep['training_s']:.1f} s"),
            ("sweep", "outside training per run", f"{sweep['overhead_per_run_s']:.3f} s"),
            ("sweep", "python + growlab import (once)", f"{sweep['startup_s']:.2f} s"),
            (
                "sweep",
                "outside training per run, less startup",
                f"{sweep['overhead_per_run_excl_startup_s']:.3f} s",
            ),
        ]
    if slurm := results.get("slurm"):
        for k in (1, 8):
            run = slurm[f"runs_per_job_{k}"]
            rows.append(
                (
                    "slurm",
                    f"runs_per_job={k}",
                    f"{run['wall_s']:.1f} s, {run['completed']}/{run['runs']} completed, "
                    f"{run['array_tasks']} array tasks",
                )
            )
    stacks = results.get("stacks", {})
    if sweep := stacks.get("sweep"):
        for name in ("solo", "stacked"):
            rows.append(("stacks", f"8 digits seeds, {name}", f"{sweep[f'{name}_s']:.2f} s"))
    if epoch := stacks.get("epoch"):
        where = f"Fashion-MNIST MLP epoch, batch {epoch['batch_size']}, {epoch['device']}"
        rows.append(("stacks", f"{where}: one seed", f"{epoch['solo_epoch_s']:.3f} s"))
        if "solo_eager_epoch_s" in epoch:
            eager = epoch["solo_eager_epoch_s"]
            rows.append(("stacks", f"{where}: one seed, no CUDA graph", f"{eager:.3f} s"))
        for key, value in epoch.items():
            if key.startswith("stack_") and key.endswith("_epoch_s") and "tf32" not in key:
                r = key.split("_")[1]
                ratio = epoch[f"stack_{r}_ratio"]
                rows.append(
                    (
                        "stacks",
                        f"{where}: {r} seeds stacked",
                        f"{value:.3f} s ({ratio:.2f}x one seed, {int(r) / ratio:.1f}x throughput)",
                    )
                )
    return rows


def print_report(results: dict[str, Any], goals: list[Target]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    details = Table(title=f"growlab benchmark on {results['meta']['device_name']}")
    for column in ("section", "measurement", "value"):
        details.add_column(column)
    section = None
    for sec, name, value in detail_rows(results):
        if section is not None and sec != section:
            details.add_section()
        section = sec
        details.add_row(sec, name, value)
    console.print(details)
    summary = Table(title="targets")
    for column in ("target", "measured", "ratio", "goal", "met"):
        summary.add_column(column)
    for goal in goals:
        colour = "green" if goal.met else "red"
        met = f"[{colour}]{goal.margin}[/{colour}]"
        summary.add_row(goal.name, goal.measured, f"{goal.ratio:.2f}", goal.target, met)
    console.print(summary)
    info = results["meta"]
    load = max(info["loadavg_start"][0], info["loadavg_end"][0])
    if load > (info["cpu_count"] or 1):
        console.print(
            f"[yellow]load average {load:.1f} on {info['cpu_count']} CPUs: other processes "
            "shared the machine, so times are inflated and ratios are noisy[/yellow]"
        )


def meta(device: torch.device, quick: bool) -> dict[str, Any]:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = None
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
    return {
        "quick": quick,
        "device": str(device),
        "device_name": name or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "commit": commit,
        "loadavg_start": os.getloadavg(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
