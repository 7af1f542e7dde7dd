"""One epoch of training and one evaluation, on whole-dataset tensors (no per-sample pipeline)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from growlab.models import GrowableNet


@dataclass
class EpochResult:
    loss: float
    acc: float


def train_epoch(
    net: GrowableNet,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    batch_size: int,
    generator: torch.Generator,
    start_block: int | None = 0,
) -> EpochResult:
    """Shuffle with `generator`, step through mini-batches; `inputs` are features(x, start_block).

    Loss and accuracy accumulate on the device, so the loop never waits for the GPU mid-epoch.
    """
    net.train()
    n = inputs.shape[0]
    order = torch.randperm(n, generator=generator).to(inputs.device)
    loss_sum = torch.zeros((), device=inputs.device)
    correct = torch.zeros((), device=inputs.device, dtype=torch.long)
    for i in range(0, n, batch_size):
        idx = order[i : i + batch_size]
        logits = net.forward_from(inputs[idx], start_block)
        yb = targets[idx]
        loss = F.cross_entropy(logits, yb)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss_sum += loss.detach() * yb.shape[0]
        correct += (logits.detach().argmax(1) == yb).sum()
    return EpochResult(loss=(loss_sum / n).item(), acc=(correct.double() / n).item())


@torch.no_grad()
def evaluate(
    net: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, batch_size: int
) -> EpochResult:
    if inputs.shape[0] == 0:
        return EpochResult(loss=float("nan"), acc=float("nan"))
    was_training = net.training
    net.eval()
    loss_sum = torch.zeros((), device=inputs.device, dtype=torch.float64)
    correct = torch.zeros((), device=inputs.device, dtype=torch.long)
    for i in range(0, inputs.shape[0], batch_size):
        logits = net(inputs[i : i + batch_size])
        yb = targets[i : i + batch_size]
        loss_sum += F.cross_entropy(logits, yb, reduction="sum").double()
        correct += (logits.argmax(1) == yb).sum()
    net.train(was_training)
    n = inputs.shape[0]
    return EpochResult(loss=(loss_sum / n).item(), acc=(correct.double() / n).item())


@torch.no_grad()
def max_output_change(before: torch.Tensor, after: torch.Tensor) -> float:
    return (before - after).abs().max().item()


@torch.no_grad()
def flops_per_sample(net: nn.Module, sample: torch.Tensor) -> int:
    """Forward FLOPs of one sample, as counted by torch's FlopCounterMode (matmuls, convs)."""
    from torch.utils.flop_counter import FlopCounterMode

    was_training = net.training
    net.eval()
    counter = FlopCounterMode(display=False)
    with counter:
        net(sample[:1])
    net.train(was_training)
    return int(counter.get_total_flops())
