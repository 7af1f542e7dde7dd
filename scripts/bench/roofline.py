"""Target 1: one training epoch against the matmul roofline, with reference loops."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from bench.common import compose_cfg, growlab_net, interleaved, log, sync, timed
from growlab.data import load_data
from growlab.data.sets.fashion_mnist import raw_fashion_mnist_root
from growlab.engine.feature_cache import cached_inputs
from growlab.engine.optim import build_optimizer
from growlab.engine.replica_axis import Solo
from growlab.engine.training import flops_per_sample, train_epoch

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
        str(raw_fashion_mnist_root()), train=True, transform=transforms.ToTensor()
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
        Solo(net), inputs, data.y_train, optimizer, batch, [generator], start
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
