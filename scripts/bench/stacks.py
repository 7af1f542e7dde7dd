"""Target 6: seeds trained together as a stack (hydra.sweeper.stack_seeds).

- sweep: eight digits seeds of the default run, `python -m growlab -m seed=0,...,7` with and
  without `hydra.sweeper.stack_seeds=true`, whole processes (start-up included), best of N.
- epoch: one Fashion-MNIST epoch of the 784-256-256-10 MLP (Adam, batch 256) for one seed
  through `train_epoch`, and for R seeds as one stack through `train_epoch` on a replica_axis.Stack.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from bench.common import compose_cfg, growlab_net, interleaved, log, run_process
from growlab.data import load_data
from growlab.engine.accelerators.precision import set_tf32
from growlab.engine.optim import build_optimizer
from growlab.engine.replica_axis import Solo, Stack
from growlab.engine.run_base import data_on_device
from growlab.engine.stacking.forward import StackedNet
from growlab.engine.stacking.state import StackedState
from growlab.engine.training import train_epoch
from growlab.growth.objectives import Classification

SEEDS = "seed=0,1,2,3,4,5,6,7"
EPOCH_OVERRIDES = ["data=fashion_mnist", "model.width=256", "train.batch_size=256"]


def bench_stacked_sweep(repeats: int, tmp: Path) -> dict[str, Any]:
    """Eight digits seeds, one by one and as one stack (both in one process, basic launcher)."""
    walls: dict[str, list[float]] = {"solo": [], "stacked": []}
    for i in range(repeats):
        for name, extra in (("solo", []), ("stacked", ["hydra.sweeper.stack_seeds=true"])):
            sweep = tmp / f"stack-sweep-{name}-{i}"
            args = ["-m", "growlab", "-m", SEEDS, "logger=none", f"hydra.sweep.dir={sweep}"]
            wall, _ = run_process([*args, *extra])
            walls[name].append(wall)
            log(f"stacks: 8 digits seeds {name}: {wall:.2f} s")
    solo, stacked = min(walls["solo"]), min(walls["stacked"])
    return {"solo_s": solo, "stacked_s": stacked, "ratio": stacked / solo, "walls": walls}


def _replicas(replicas: int, device: torch.device) -> tuple[Any, ...]:
    cfg = compose_cfg([*EPOCH_OVERRIDES, "depth=2", "logger=none"])
    data = data_on_device(load_data(cfg.data), device)
    nets = []
    for seed in range(replicas):
        torch.manual_seed(seed)
        nets.append(growlab_net(cfg, data, 2, device))
    optimizers = [build_optimizer(cfg, net) for net in nets]
    inputs = nets[0].features(data.x_train, upto=0)  # what the stage loop trains on
    return cfg, data, nets, optimizers, inputs


def bench_stacked_epoch(device: torch.device, replicas: list[int], repeats: int) -> dict[str, Any]:
    """Seconds of one epoch: one seed alone, and R seeds as one stack, for each R."""
    largest = max(replicas)
    cfg, data, nets, optimizers, inputs = _replicas(largest, device)
    batch = int(cfg.train.batch_size)
    generators = [torch.Generator().manual_seed(seed) for seed in range(largest)]
    losses = Classification().replica_losses

    graphs = bool(cfg.train.cuda_graphs)

    def solo(graphs: bool = graphs) -> None:
        train_epoch(
            Solo(nets[0]),
            inputs,
            data.y_train,
            optimizers[0],
            batch,
            generators[:1],
            0,
            cuda_graphs=graphs,
        )

    def stack(r: int) -> Any:
        fresh = [build_optimizer(cfg, net) for net in nets[:r]]  # no state from earlier epochs
        state = StackedState(nets[:r], fresh, cfg.optimizer)
        net = StackedNet(nets[0], state.tensors)

        def epoch() -> None:
            train_epoch(
                Stack(net, losses),
                inputs,
                data.y_train,
                state.optimizer,
                batch,
                generators[:r],
                0,
                graphs,
            )

        return epoch

    set_tf32(False, device)
    fns = {"solo": solo, **{f"stack_{r}": stack(r) for r in replicas}}
    if device.type == "cuda":  # what the CUDA graphs save
        fns["solo_eager"] = lambda: solo(graphs=False)
    for fn in fns.values():  # warm-up: kernels, allocator, lazy imports
        fn()
    times = interleaved(fns, device, repeats)
    best = {name: min(t) for name, t in times.items()}
    if device.type == "cuda":  # train.tf32=true, the explicit option
        set_tf32(True, device)
        tf32 = {"solo_tf32": solo, f"stack_{largest}_tf32": stack(largest)}
        for fn in tf32.values():
            fn()
        best |= {name: min(t) for name, t in interleaved(tf32, device, repeats).items()}
        set_tf32(False, device)
    result: dict[str, Any] = {
        "device": str(device),
        "batch_size": batch,
        "n_train": int(data.x_train.shape[0]),
        "cuda_graphs": graphs and device.type == "cuda",
        "solo_epoch_s": best["solo"],
    }
    if "solo_eager" in best:
        result["solo_eager_epoch_s"] = best["solo_eager"]
    if device.type == "cuda":
        result["solo_tf32_epoch_s"] = best["solo_tf32"]
        result[f"stack_{largest}_tf32_epoch_s"] = best[f"stack_{largest}_tf32"]
        result[f"stack_{largest}_tf32_ratio"] = best[f"stack_{largest}_tf32"] / best["solo_tf32"]
    for r in replicas:
        result[f"stack_{r}_epoch_s"] = best[f"stack_{r}"]
        result[f"stack_{r}_ratio"] = best[f"stack_{r}"] / best["solo"]
        log(
            f"stacks: fashion-mnist epoch on {device}: {r} seeds stacked {best[f'stack_{r}']:.3f}"
            f" s vs one seed {best['solo']:.3f} s"
        )
    return result
