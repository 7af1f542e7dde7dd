"""growlab's performance targets, measured in one run on this machine.

    python scripts/benchmark.py            # full (a few minutes on a 2-core CPU)
    python scripts/benchmark.py --quick    # smoke version (about a minute)

Four measurements, each reported as a ratio against its target:

1. roofline: one Fashion-MNIST epoch of an MLP 784-256-256-10 (Adam, batch 256) through
   growlab's own `train_epoch`, against 3 x forward FLOPs x N divided by the best fp32 matmul
   throughput measured here and now (target <= 1.3x). A plain whole-tensor loop and a torchvision
   DataLoader(num_workers=1) + ToTensor loop are timed for reference.
2. tutorial: seed 000's greedy layer-wise procedure written the tutorial way
   (scripts/bench_tutorial.py) against the same procedure through `python -m growlab`, with
   both final test accuracies (target >= 8x faster).
3. stage cost: the stage-10 epoch of freeze-all-but-new over the stage-1 epoch, with and without
   the frozen-feature cache (target <= 1.5x with the cache).
4. sweep overhead: a basic-launcher sweep on digits; (sweep wall time - sum of the stages'
   wall_s) / runs is the time each run spends outside training (target <= 0.5 s).

CUDA is used when available (timings synchronise the device). Writes all numbers to --out.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf
from torch import nn

from growlab.config import OperatorName, TrainableSet, register_configs
from growlab.data import DataSplits, _raw_fashion_mnist_root, load_data
from growlab.feature_cache import cached_inputs
from growlab.models import GrowableNet, build_network, initial_arch
from growlab.operators import grow
from growlab.stage_loop import apply_trainable_set, build_optimizer
from growlab.training import flops_per_sample, train_epoch

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "conf"
SECTIONS = ("roofline", "tutorial", "stage_cost", "sweep")

# Seed 000's procedure, as growlab overrides (the tutorial baseline hard-codes the same values).
TUTORIAL_OVERRIDES = [
    "data=fashion_mnist",
    "model.width=256",
    "optimizer.lr=1e-4",
    "train.batch_size=250",
    "train.start_depth=1",
    "logger=none",
]
SWEEP_FULL = [
    "strategy=freeze-all-but-new,finetune-all-after,identity-insert,from-scratch",
    "depth=2,4",
    "seed=0,1,2",
]
SWEEP_QUICK = ["strategy=freeze-all-but-new,from-scratch", "depth=2", "seed=0,1"]


@dataclass
class Target:
    name: str
    measured: str
    ratio: float
    target: str
    met: bool


# ---- helpers ------------------------------------------------------------------------------


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], Any], device: torch.device) -> float:
    sync(device)
    t0 = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - t0


def interleaved(
    fns: dict[str, Callable[[], Any]], device: torch.device, rounds: int
) -> dict[str, list[float]]:
    """Time each function once per round, round after round, so that load from other processes
    hits all of them alike; callers take the best (least disturbed) time of each."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            times[name].append(timed(fn, device))
    return times


def compose_cfg(overrides: list[str]) -> DictConfig:
    register_configs()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="config", overrides=overrides)


def growlab_net(cfg: DictConfig, data: DataSplits, depth: int, device: torch.device) -> GrowableNet:
    model_cfg = OmegaConf.to_container(cfg.model, resolve=True, enum_to_str=True)
    assert isinstance(model_cfg, dict)
    arch = initial_arch(model_cfg, data.input_shape, data.num_classes, depth)
    net = build_network(arch).to(device)
    net.set_trainable(set(range(net.depth)), head=True)
    return net


def run_process(args: list[str], timeout: float = 1800) -> tuple[float, str]:
    """Run `python args...` in the repository; (wall seconds, stdout). Raises on failure."""
    env = {**os.environ, "HYDRA_FULL_ERROR": "1", "WANDB_MODE": "disabled"}
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    return wall, proc.stdout


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


def log(msg: str) -> None:
    print(f"[benchmark] {msg}", file=sys.stderr, flush=True)


# ---- 1. roofline --------------------------------------------------------------------------


MATMUL_SHAPES = {
    "2048x2048x2048": (2048, 2048, 2048),
    "256x784x256 (layer 1)": (256, 784, 256),
    "256x256x256 (layer 2)": (256, 256, 256),
}


def matmul_work(device: torch.device) -> dict[str, tuple[Callable[[], None], float]]:
    """Per shape: a function running fp32 matmuls for about 0.1 s, and the FLOPs it does."""
    work: dict[str, tuple[Callable[[], None], float]] = {}
    for name, (m, k, n) in MATMUL_SHAPES.items():
        a = torch.randn(m, k, device=device)
        b = torch.randn(k, n, device=device)
        once = min(timed(lambda a=a, b=b: torch.mm(a, b), device) for _ in range(3))
        iters = max(1, int(0.1 / max(once, 1e-7)))

        def run(a: torch.Tensor = a, b: torch.Tensor = b, iters: int = iters) -> None:
            for _ in range(iters):
                torch.mm(a, b)

        work[name] = (run, 2.0 * m * k * n * iters)
    return work


def plain_mlp(device: torch.device) -> nn.Module:
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(784, 256),
        nn.ReLU(),
        nn.Linear(256, 256),
        nn.ReLU(),
        nn.Linear(256, 10),
    ).to(device)


def plain_tensor_epoch(
    x: torch.Tensor, y: torch.Tensor, batch_size: int, device: torch.device
) -> Callable[[], None]:
    """The hand-written loop over whole-dataset tensors that growlab's epoch should match."""
    model = plain_mlp(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def epoch() -> None:
        order = torch.randperm(x.shape[0], device=device)
        for i in range(0, x.shape[0], batch_size):
            idx = order[i : i + batch_size]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    return epoch


def dataloader_epoch(
    batch_size: int, device: torch.device, max_batches: int | None
) -> tuple[float, int]:
    """torchvision FashionMNIST + ToTensor + DataLoader(num_workers=1); (seconds, samples).

    With `max_batches`, only that many batches run and the time is scaled to the full epoch.
    """
    from torch.utils.data import DataLoader
    from torchvision import transforms
    from torchvision.datasets import FashionMNIST

    dataset = FashionMNIST(
        str(_raw_fashion_mnist_root()), train=True, transform=transforms.ToTensor()
    )
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=1)
    model = plain_mlp(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    batches = 0
    sync(device)
    t0 = time.perf_counter()
    for inputs, targets in loader:
        loss = F.cross_entropy(model(inputs.to(device)), targets.to(device))
        opt.zero_grad()
        loss.backward()
        opt.step()
        batches += 1
        if max_batches is not None and batches >= max_batches:
            break
    sync(device)
    seconds = (time.perf_counter() - t0) * len(loader) / batches
    return seconds, len(dataset)


def train_flops_counted(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """FLOPs of one forward+backward per sample, as FlopCounterMode counts them."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        F.cross_entropy(net(x), y).backward()
    net.zero_grad(set_to_none=True)
    return counter.get_total_flops() / x.shape[0]


def bench_roofline(device: torch.device, repeats: int, quick: bool) -> dict[str, Any]:
    batch = 256
    overrides = ["data=fashion_mnist", "model.width=256", "depth=2", f"train.batch_size={batch}"]
    cfg = compose_cfg([*overrides, "logger=none"])
    t0 = time.perf_counter()
    data = load_data(cfg.data).to(device)
    load_s = time.perf_counter() - t0
    n = data.x_train.shape[0]

    net = growlab_net(cfg, data, depth=2, device=device)
    fwd = flops_per_sample(net, data.x_train[:1])
    counted = train_flops_counted(net, data.x_train[:batch], data.y_train[:batch])
    train_flops = 3 * fwd * n

    optimizer = build_optimizer(cfg, net)
    generator = torch.Generator().manual_seed(0)
    max_bytes = cfg.train.cache_max_mb * 2**20
    inputs, start = cached_inputs(net, data.x_train, max_bytes)
    matmuls = matmul_work(device)
    fns: dict[str, Callable[[], Any]] = {name: fn for name, (fn, _) in matmuls.items()}
    fns["growlab"] = lambda: train_epoch(
        net, inputs, data.y_train, optimizer, batch, generator, start
    )
    fns["plain"] = plain_tensor_epoch(data.x_train.flatten(1), data.y_train, batch, device)
    log(f"roofline: matmuls, growlab train_epoch and a plain loop, {repeats} rounds")
    times = interleaved(fns, device, repeats)
    gflops = {name: flops / min(times[name]) / 1e9 for name, (_, flops) in matmuls.items()}
    peak = max(gflops.values())
    roofline_s = train_flops / (peak * 1e9)
    epoch_s, plain_s = min(times["growlab"]), min(times["plain"])
    # The same ratio within each round (peak and epoch measured back to back), best round.
    round_peaks = [
        max(flops / times[name][r] / 1e9 for name, (_, flops) in matmuls.items())
        for r in range(repeats)
    ]
    same_round = min(
        t / (train_flops / (g * 1e9)) for t, g in zip(times["growlab"], round_peaks, strict=True)
    )
    log("roofline: torchvision DataLoader + ToTensor epoch")
    loader_s, loader_n = dataloader_epoch(batch, device, max_batches=40 if quick else None)
    per_sample = 3 * fwd / (peak * 1e9)
    return {
        "matmul_gflops": gflops,
        "peak_gflops": peak,
        "n_train": n,
        "forward_flops_per_sample": fwd,
        "train_flops_per_sample_counted": counted,
        "train_flops_epoch": train_flops,
        "roofline_s": roofline_s,
        "load_data_s": load_s,
        "growlab_epoch_s": epoch_s,
        "growlab_epoch_all_s": times["growlab"],
        "growlab_ratio": epoch_s / roofline_s,
        "growlab_ratio_same_round": same_round,
        "plain_tensor_epoch_s": plain_s,
        "plain_tensor_epoch_all_s": times["plain"],
        "plain_tensor_ratio": plain_s / roofline_s,
        "dataloader_epoch_s": loader_s,
        "dataloader_n": loader_n,
        "dataloader_extrapolated": quick,
        "dataloader_ratio": loader_s / (per_sample * loader_n),
    }


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
    train_epoch(net, inputs, data.y_train, optimizer, 256, generator)
    activities = [ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    with profile(activities=activities) as prof:
        train_epoch(net, inputs, data.y_train, optimizer, 256, generator)
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
    root = str(_raw_fashion_mnist_root())
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
            train_epoch(net, inputs, data.y_train, optimizer, batch, generator, start)

        return epoch, build_s

    shallow = growlab_net(cfg, data, depth=1, device=device)
    deep = growlab_net(cfg, data, depth=1, device=device)
    for _ in range(deep_stage - 1):
        index = grow(deep, OperatorName.random, None, False)
        apply_trainable_set(deep, TrainableSet.new_and_head, index)
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
    startup, _ = run_process(["-c", "import growlab.__main__, growlab.stage_loop"])
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


def targets(results: dict[str, Any]) -> list[Target]:
    out: list[Target] = []
    if roof := results.get("roofline"):
        ratio = roof["growlab_ratio"]
        measured = f"{roof['growlab_epoch_s']:.2f} s vs roofline {roof['roofline_s']:.2f} s"
        out.append(Target("epoch / roofline", measured, ratio, "<= 1.3x", ratio <= 1.3))
    if tut := results.get("tutorial"):
        ratio = tut["speedup"]
        measured = f"{tut['tutorial']['process_wall_s']:.1f} s vs {tut['growlab']['wall_s']:.1f} s"
        out.append(Target("tutorial / growlab wall", measured, ratio, ">= 8x", ratio >= 8))
    if cost := results.get("stage_cost"):
        ratio = cost["ratio_cached"]
        measured = f"{cost['deep_epoch_cached_s']:.3f} s vs {cost['stage1_epoch_s']:.3f} s"
        name = f"stage-{cost['deep_stage']} / stage-1 epoch (cache)"
        out.append(Target(name, measured, ratio, "<= 1.5x", ratio <= 1.5))
    if sweep := results.get("sweep"):
        per_run = sweep["overhead_per_run_s"]
        measured = f"{sweep['runs']} runs, {sweep['sweep_wall_s']:.1f} s wall"
        out.append(Target("sweep overhead s/run", measured, per_run, "<= 0.5 s", per_run <= 0.5))
    return out


def detail_rows(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(section, measurement, value) lines for everything behind the targets."""
    rows: list[tuple[str, str, str]] = []
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
    summary = Table(title="targets (issue 6)")
    for column in ("target", "measured", "ratio", "goal", "met"):
        summary.add_column(column)
    for goal in goals:
        met = "[green]yes[/green]" if goal.met else "[red]no[/red]"
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


def main() -> None:
    parser = argparse.ArgumentParser(description="growlab's performance targets (issue 6).")
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
    stages = 3 if args.quick else 11
    results: dict[str, Any] = {"meta": meta(device, args.quick)}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="growlab-bench-") as tmp_name:
        tmp = Path(tmp_name)
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
    results["meta"]["benchmark_wall_s"] = time.perf_counter() - started
    results["meta"]["loadavg_end"] = os.getloadavg()
    goals = targets(results)
    results["targets"] = [asdict(g) for g in goals]
    print_report(results, goals)
    if args.profile:
        print(profile_epoch(device))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
