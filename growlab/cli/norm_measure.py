"""Seed 003's measurement: the output norm of untrained MLPs against depth, per normalisation
(used by `python -m growlab.norm_study`, whose docstring explains the numbers)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from growlab.growth.nets import build_network, initial_arch

NORMS: tuple[str, ...] = ("none", "batch", "layer")
SEED_INPUT_DIM = 3 * 128 * 128
# Below this many multiply-adds in the first layer one CPU thread is fastest.
SMALL_MACS = 10_000_000
CSV_FIELDS = (
    "depth",
    "norm",
    "output_norm",
    "output_norm_std",
    "per_sample_norm",
    "per_sample_norm_std",
    "predicted_output_norm",
    "growlab_blocks",
    "builder",
    "n_seeds",
)


def derived_seed(*key: int) -> int:
    """A well-mixed 63-bit seed for `key`, so input and weight streams never coincide.

    (Seeding the input generator and the weight RNG with the same integer makes the first
    layer's uniform weights and the normal inputs come from one stream, which correlates them.)
    """
    state = np.random.SeedSequence(list(key)).generate_state(2, dtype=np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


def random_inputs(batch: int, input_dim: int, seed: int) -> torch.Tensor:
    """A batch of standard-normal inputs, fixed by `seed` (the seed notebook's torch.randn)."""
    gen = torch.Generator().manual_seed(derived_seed(seed, 0))
    return torch.randn(batch, input_dim, generator=gen)


def build_mlp(
    depth: int, norm: str, width: int, input_shape: tuple[int, ...], num_classes: int
) -> nn.Module:
    """The growlab MLP with `depth` hidden blocks; depth 0 is the bare linear classifier."""
    if depth == 0:
        return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), num_classes))
    model_cfg = {
        "name": "mlp",
        "width": width,
        "activation": "relu",
        "norm": norm,
        "kernel_size": 3,
    }
    return build_network(initial_arch(model_cfg, input_shape, num_classes, depth))


def predicted_output_norm(
    depth: int,
    norm: str,
    input_second_moment: float,
    input_dim: int,
    width: int,
    batch: int,
    num_classes: int,
) -> float:
    """Mean-field sqrt(E ||f(x)||_F^2) for PyTorch's default Linear init and ReLU."""

    def linear(q: float, fan_in: int) -> float:  # variance after a default-initialised Linear
        return q / 3.0 + 1.0 / (3.0 * fan_in)

    q, fan_in = input_second_moment, input_dim
    for _ in range(depth):
        pre = 1.0 if norm != "none" else linear(q, fan_in)
        q, fan_in = pre / 2.0, width  # ReLU of a symmetric variable keeps half its second moment
    return math.sqrt(batch * num_classes * linear(q, fan_in))


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return statistics.fmean(values), std


def measure_output_norms(
    input_dim: int = SEED_INPUT_DIM,
    width: int = 512,
    max_depth: int = 9,
    batch: int = 10,
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    norms: Sequence[str] = NORMS,
    num_classes: int = 102,
    inputs: Sequence[torch.Tensor] | None = None,
    zero_bias: bool = False,
    threads: int | None = None,
) -> list[dict[str, Any]]:
    """One row per (depth, norm) for depth 0..max_depth: output norm of untrained nets.

    `inputs`, when given, holds one batch per seed (any shape with the batch first); otherwise
    each seed draws a standard-normal batch of shape (batch, input_dim). With `zero_bias` every
    Linear bias is set to zero after initialisation (the seed's suggested no-bias check).
    `threads` sets torch's CPU threads for the call (restored afterwards); None picks one thread
    for small networks, whose tiny operations only lose time to thread synchronisation.
    """
    previous = torch.get_num_threads()
    if threads is None:
        first_layer_macs = batch * width * (input_dim if inputs is None else inputs[0][0].numel())
        threads = 1 if first_layer_macs < SMALL_MACS else previous
    torch.set_num_threads(threads)
    try:
        return _measure(
            input_dim, width, max_depth, batch, seeds, norms, num_classes, inputs, zero_bias
        )
    finally:
        torch.set_num_threads(previous)


@torch.no_grad()
def _measure(
    input_dim: int,
    width: int,
    max_depth: int,
    batch: int,
    seeds: Sequence[int],
    norms: Sequence[str],
    num_classes: int,
    inputs: Sequence[torch.Tensor] | None,
    zero_bias: bool,
) -> list[dict[str, Any]]:
    if inputs is None:
        inputs = [random_inputs(batch, input_dim, s) for s in seeds]
    if len(inputs) != len(seeds):
        raise ValueError(f"{len(inputs)} input batches for {len(seeds)} seeds")
    input_shape = tuple(inputs[0].shape[1:])
    flat_dim = math.prod(input_shape)
    batch_size = inputs[0].shape[0]
    second_moment = statistics.fmean(float(x.float().pow(2).mean()) for x in inputs)

    frob: dict[tuple[int, str], list[float]] = {}
    per_sample: dict[tuple[int, str], list[float]] = {}
    for seed, x in zip(seeds, inputs, strict=True):
        for depth in range(max_depth + 1):
            for norm in norms:
                torch.manual_seed(derived_seed(seed, 1, depth))  # same weights for every norm
                net = build_mlp(depth, norm, width, input_shape, num_classes)
                if zero_bias:
                    for module in net.modules():
                        if isinstance(module, nn.Linear) and module.bias is not None:
                            module.bias.zero_()
                net.train()  # BatchNorm on batch statistics, as in the seed
                out = net(x.float())
                frob.setdefault((depth, norm), []).append(float(out.norm()))
                per_sample.setdefault((depth, norm), []).append(
                    float(out.flatten(1).norm(dim=1).mean())
                )

    rows: list[dict[str, Any]] = []
    for depth in range(max_depth + 1):
        for norm in norms:
            mean, std = _mean_std(frob[(depth, norm)])
            ps_mean, ps_std = _mean_std(per_sample[(depth, norm)])
            predicted = (
                float("nan")
                if zero_bias
                else predicted_output_norm(
                    depth, norm, second_moment, flat_dim, width, batch_size, num_classes
                )
            )
            rows.append(
                {
                    "depth": depth,
                    "norm": norm,
                    "output_norm": mean,
                    "output_norm_std": std,
                    "per_sample_norm": ps_mean,
                    "per_sample_norm_std": ps_std,
                    "predicted_output_norm": predicted,
                    "growlab_blocks": depth,
                    "builder": "linear" if depth == 0 else "growlab",
                    "n_seeds": len(seeds),
                    "per_seed_output_norm": frob[(depth, norm)],
                }
            )
    return rows
