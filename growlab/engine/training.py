"""One epoch of training and one evaluation, on whole-dataset tensors (no per-sample pipeline)."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from growlab.engine.accelerators import flop_memo
from growlab.engine.accelerators.batch_loop import run_batches, use_cuda_graphs
from growlab.engine.accelerators.no_dynamo import flop_counter_mode
from growlab.growth.nets import GrowableNet

LossFn = Callable[..., torch.Tensor]


def _correct(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Correct predictions for class targets (classes on the last axis: one label per sample,
    or per position of a sequence); 0 for regression targets (reconstruction)."""
    if targets.dtype.is_floating_point:
        return torch.zeros((), device=outputs.device, dtype=torch.long)
    return (outputs.argmax(-1) == targets).sum()


def epoch_order(
    n: int, batch_size: int, steps: int | None, generator: torch.Generator
) -> torch.Tensor:
    """The samples of an epoch, in order: a permutation of all n (steps None), or `steps`
    batches drawn at random with replacement (data whose windows are sampled)."""
    if steps is None:
        return torch.randperm(n, generator=generator)
    return torch.randint(n, (steps * batch_size,), generator=generator)


def labels_per_sample(targets: torch.Tensor) -> int:
    """Labels each sample carries: 1 for a class, T for a sequence of T next tokens."""
    return math.prod(targets.shape[1:])


@dataclass(frozen=True)
class DivergenceGuard:
    """A finite loss can diverge too: far above where the run or the stage started."""

    factor: float
    max_loss: float | None = None

    def check(self, loss: float, run_start: float | None, stage_start: float) -> str | None:
        """Why `loss` (an epoch's mean training loss) means divergence, or None."""
        if not math.isfinite(loss):
            return f"training loss is {loss}"
        if self.max_loss is not None and loss > self.max_loss:
            return f"training loss {loss:.4g} exceeds train.max_loss={self.max_loss:g}"
        starts = [s for s in (run_start, stage_start) if s is not None and math.isfinite(s)]
        if starts and loss > self.factor * max(starts):
            return (
                f"training loss {loss:.4g} exceeds train.divergence_factor={self.factor:g} x "
                f"the starting loss {max(starts):.4g}"
            )
        return None


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
    loss_fn: LossFn = F.cross_entropy,
    cuda_graphs: bool = False,
    steps: int | None = None,
) -> EpochResult:
    """Shuffle with `generator`, step through mini-batches; `inputs` are features(x, start_block).
    With `steps`, the epoch is that many batches drawn at random (epoch_order).

    Loss and accuracy accumulate on the device, so the loop never waits for the GPU mid-epoch;
    with `cuda_graphs` on a GPU the steps replay as a CUDA graph
    (growlab.engine.accelerators.batch_loop).
    """
    net.train()
    order = epoch_order(inputs.shape[0], batch_size, steps, generator).to(inputs.device)
    n = order.shape[0]
    loss_sum = torch.zeros((), device=inputs.device)
    correct = torch.zeros((), device=inputs.device, dtype=torch.long)

    def step(xb: torch.Tensor, yb: torch.Tensor) -> None:
        logits = net.forward_from(xb, start_block)
        loss = loss_fn(logits, yb)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss_sum.add_(loss.detach() * yb.shape[0])
        correct.add_(_correct(logits.detach(), yb))

    if use_cuda_graphs(cuda_graphs, inputs.device, optimizer):
        run_batches(order, batch_size, lambda index: step(inputs[index], targets[index]), True)
    else:
        # One gather per epoch, then contiguous slices: the same batches, cheaper.
        shuffled_x, shuffled_y = inputs[order], targets[order]
        for i in range(0, n, batch_size):
            step(shuffled_x[i : i + batch_size], shuffled_y[i : i + batch_size])
    return _result(loss_sum, correct, n, targets)


def _result(
    loss_sum: torch.Tensor, correct: torch.Tensor, n: int, targets: torch.Tensor
) -> EpochResult:
    labels = n * labels_per_sample(targets)
    acc = float("nan") if targets.dtype.is_floating_point else (correct.double() / labels).item()
    return EpochResult(loss=(loss_sum / n).item(), acc=acc)


@torch.no_grad()
def evaluate(
    net: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    batch_size: int,
    loss_fn: LossFn = F.cross_entropy,
    start_block: int | None = None,
) -> EpochResult:
    """Mean loss and accuracy; with `start_block`, `inputs` are the features before that block
    (net is then a GrowableNet, run from there)."""
    if inputs.shape[0] == 0:
        return EpochResult(loss=float("nan"), acc=float("nan"))
    forward: Callable[[torch.Tensor], torch.Tensor] = net
    if start_block is not None:
        assert isinstance(net, GrowableNet)
        forward = functools.partial(net.forward_from, start=start_block)
    was_training = net.training
    net.eval()
    loss_sum = torch.zeros((), device=inputs.device, dtype=torch.float64)
    correct = torch.zeros((), device=inputs.device, dtype=torch.long)
    for i in range(0, inputs.shape[0], batch_size):
        logits = forward(inputs[i : i + batch_size])
        yb = targets[i : i + batch_size]
        # Mean over samples (and features, for reconstruction), as in training.
        loss_sum += loss_fn(logits, yb).double() * yb.shape[0]
        correct += _correct(logits, yb)
    net.train(was_training)
    return _result(loss_sum, correct, inputs.shape[0], targets)


@torch.no_grad()
def max_output_change(before: torch.Tensor, after: torch.Tensor) -> float:
    return (before - after).abs().max().item()


@torch.no_grad()
def flops_per_sample(net: nn.Module, sample: torch.Tensor, upto: int | None = None) -> int:
    """Forward FLOPs of one sample (through the first `upto` blocks of a GrowableNet when given),
    as counted by torch's FlopCounterMode (matmuls, convs). Memoised per architecture: the count
    depends on shapes only, and counting costs a traced forward pass."""
    arch = getattr(net, "arch", None)
    key = None
    if arch is not None:
        key = flop_memo.memo_key(arch, list(sample.shape[1:]), upto)
        if (known := flop_memo.recall(key)) is not None:
            return known
    was_training = net.training
    net.eval()
    counter = flop_counter_mode()
    with counter:
        if upto is None:
            net(sample[:1])
        else:
            net.features(sample[:1], upto=upto)
    net.train(was_training)
    flops = int(counter.get_total_flops())
    if key is not None:
        flop_memo.remember(key, flops)
    return flops
