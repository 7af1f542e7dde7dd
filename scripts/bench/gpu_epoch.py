"""On a GPU: where the time of one Fashion-MNIST MLP epoch goes (target: at most 0.02 s).

    python scripts/bench/gpu_epoch.py [--out FILE]   # in a process of its own (CUPTI, graphs)

- kernels: one eager epoch of growlab's `train_epoch` on 10 batches under torch.profiler: the
  kernels each training step launches and their summed GPU time per step, by kernel name.
- floor: the same MLP and batch as plain PyTorch, the whole epoch's full batches captured as
  ONE CUDA graph (captured once, replayed per epoch; indices copied in), against one graph per
  step as growlab replays today: what capturing more steps per graph could save.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script

from bench.common import compose_cfg, growlab_net, interleaved, log  # noqa: E402
from growlab.data import load_data  # noqa: E402
from growlab.engine.optim import build_optimizer  # noqa: E402
from growlab.engine.replica_axis import Solo, Stack  # noqa: E402
from growlab.engine.run_base import data_on_device  # noqa: E402
from growlab.engine.stacking.forward import StackedNet  # noqa: E402
from growlab.engine.stacking.state import StackedState  # noqa: E402
from growlab.engine.training import train_epoch  # noqa: E402
from growlab.growth.objectives import Classification  # noqa: E402

PROFILED_STEPS = 10


def kernels_per_step(
    net: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, optimizer: Any, batch: int
) -> dict[str, Any]:
    """One seed's eager steps, profiled."""
    n = PROFILED_STEPS * batch
    x, y = inputs[:n], targets[:n]
    return _profiled(
        lambda: train_epoch(
            Solo(net), x, y, optimizer, batch, [torch.Generator().manual_seed(0)], 0
        )
    )


def stacked_kernels_per_step(cfg: Any, data: Any, replicas: int, batch: int) -> dict[str, Any]:
    """`replicas` seeds' eager stacked steps, profiled."""
    nets = [growlab_net(cfg, data, 2, data.x_train.device) for _ in range(replicas)]
    state = StackedState(nets, [build_optimizer(cfg, net) for net in nets], cfg.optimizer)
    net = StackedNet(nets[0], state.tensors)
    n = PROFILED_STEPS * batch
    x, y = nets[0].features(data.x_train[:n], upto=0), data.y_train[:n]
    generators = [torch.Generator().manual_seed(seed) for seed in range(replicas)]
    losses = Classification().replica_losses
    return _profiled(
        lambda: train_epoch(Stack(net, losses), x, y, state.optimizer, batch, generators, 0, False)
    )


def _profiled(epoch: Any) -> dict[str, Any]:
    """Kernels per step of an eager epoch of PROFILED_STEPS steps, and where their time goes."""
    epoch()
    torch.cuda.synchronize()
    activities = [torch.profiler.ProfilerActivity.CUDA]
    with torch.profiler.profile(activities=activities) as prof:
        epoch()
        torch.cuda.synchronize()
    kernels = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
    busy_us = sum(e.time_range.elapsed_us() for e in kernels)
    by_time: Counter[str] = Counter()
    for e in kernels:
        by_time[e.name[:70]] += e.time_range.elapsed_us()
    return {
        "kernels_per_step": len(kernels) / PROFILED_STEPS,
        "gpu_busy_us_per_step": busy_us / PROFILED_STEPS,
        "top_kernels_us_per_step": [
            [name, round(us / PROFILED_STEPS, 1)] for name, us in by_time.most_common(10)
        ],
    }


def _plain_mlp(device: torch.device) -> tuple[nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10)
    ).to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3, fused=True, capturable=True)
    return net, optimizer


def graph_floor(device: torch.device, n: int, batch: int, repeats: int) -> dict[str, Any]:
    """Seconds per epoch of the plain MLP: one graph per epoch, and one graph per step (each
    variant captured, timed and released before the next)."""
    x = torch.randn(n, 784, device=device)
    y = torch.randint(10, (n,), device=device)
    full = n // batch
    results: dict[str, Any] = {"n_train": n, "batch_size": batch, "full_batches": full}
    for name, captured in (("graph_per_epoch", full), ("graph_per_step", 1)):
        best = _time_graph(x, y, batch, captured, repeats)
        results[f"{name}_s"] = best
        log(f"gpu epoch floor: plain MLP, {name.replace('_', ' ')}: {best:.4f} s")
    return results


def _time_graph(x: torch.Tensor, y: torch.Tensor, batch: int, captured: int, repeats: int) -> float:
    device, n = x.device, x.shape[0]
    full = n // batch
    net, optimizer = _plain_mlp(device)
    loss_sum = torch.zeros((), device=device)
    indices = torch.zeros(full, batch, dtype=torch.long, device=device)

    def step(index: torch.Tensor) -> None:
        loss = F.cross_entropy(net(x[index]), y[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss_sum.add_(loss.detach())

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for k in range(3):
            step(indices[k])
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    log(f"gpu epoch floor: capturing {captured} step(s) as one graph")
    with torch.cuda.graph(graph):
        for k in range(captured):
            step(indices[k])

    def epoch() -> None:
        order = torch.randperm(n, device=device)[: full * batch].view(full, batch)
        loss_sum.zero_()
        if captured == full:
            indices.copy_(order)
            graph.replay()
        else:
            for k in range(full):
                indices[0].copy_(order[k])
                graph.replay()
        loss_sum.item()

    epoch()
    best = min(interleaved({"epoch": epoch}, device, repeats)["epoch"])
    torch.cuda.synchronize()
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--only", choices=["floor", "profile", "stack-profile"], default=None)
    args = parser.parse_args()
    device = torch.device("cuda")
    cfg = compose_cfg(["data=fashion_mnist", "model.width=256", "train.batch_size=256", "depth=2"])
    data = data_on_device(load_data(cfg.data), device)
    batch = int(cfg.train.batch_size)
    results: dict[str, Any] = {}
    if args.only in (None, "floor"):
        results["floor"] = graph_floor(device, int(data.x_train.shape[0]), batch, 5)
    if args.only in (None, "profile"):
        torch.manual_seed(0)
        net = growlab_net(cfg, data, 2, device)
        inputs = net.features(data.x_train, upto=0)
        optimizer = build_optimizer(cfg, net)
        results["profile"] = kernels_per_step(net, inputs, data.y_train, optimizer, batch)
    if args.only in (None, "stack-profile"):
        results["stack_64_profile"] = stacked_kernels_per_step(cfg, data, 64, batch)
    print(json.dumps(results, indent=2))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
