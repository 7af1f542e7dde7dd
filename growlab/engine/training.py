"""One epoch of training and one evaluation, on whole-dataset tensors (no per-sample pipeline),
of a solo network or a stack of replicas alike (the replica axis: growlab.engine.replica_axis)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from growlab.engine.accelerators import flop_memo
from growlab.engine.accelerators.batch_loop import run_batches, use_cuda_graphs
from growlab.engine.accelerators.no_dynamo import flop_counter_mode
from growlab.engine.replica_axis import ReplicaAxis


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
    axis: ReplicaAxis,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    batch_size: int,
    generators: list[torch.Generator],
    start: int | None,
    cuda_graphs: bool = False,
    steps: int | None = None,
) -> list[EpochResult]:
    """One epoch of each replica of `axis` (growlab.engine.replica_axis); `inputs` are the
    features before block `start` (None: the network's inputs), and `targets` (N, ...).

    Each replica shuffles with its own generator, exactly as its solo run would; with `steps`,
    its epoch is that many batches drawn at random (epoch_order). The step backpropagates the
    sum of the replicas' mean losses, so the gradient each replica gets is its own. Losses and
    accuracies accumulate on the device, so the loop never waits for the GPU mid-epoch; with
    `cuda_graphs` on a GPU the steps replay as a CUDA graph
    (growlab.engine.accelerators.batch_loop).
    """
    if len(generators) != axis.replicas:
        raise ValueError(f"{len(generators)} generators for {axis.replicas} replicas: one each")
    axis.module.train()
    device = inputs.device
    orders = [epoch_order(targets.shape[0], batch_size, steps, g) for g in generators]
    order = axis.along(orders).to(device)
    n = order.shape[-1]
    loss_sum = torch.zeros(axis.replicas, device=device)
    correct = torch.zeros(axis.replicas, device=device, dtype=torch.long)

    def step(xb: torch.Tensor, yb: torch.Tensor) -> None:
        outputs = axis.forward(xb, start)
        losses = axis.losses(outputs, yb)
        optimizer.zero_grad(set_to_none=True)
        # Not losses.backward(ones): an explicit gradient makes torch import its symbolic-shape
        # machinery (0.34 s, once per process), more than the sum costs in a short run.
        losses.sum().backward()
        optimizer.step()
        loss_sum.add_(losses.detach() * yb.shape[axis.batch_dim])
        correct.add_(_correct(outputs.detach(), yb, axis.replicas))

    graphs = use_cuda_graphs(cuda_graphs, device, optimizer)
    if axis.gathers_once and not graphs:
        # One gather per epoch, then contiguous slices: the same batches, cheaper.
        shuffled_x, shuffled_y = axis.gather(inputs, order), targets[order]
        for i in range(0, n, batch_size):
            step(shuffled_x[i : i + batch_size], shuffled_y[i : i + batch_size])
    else:
        run_batches(
            order,
            batch_size,
            lambda index: step(axis.gather(inputs, index), targets[index]),
            graphs,
        )
    return _results(loss_sum, correct, n, targets)


@torch.no_grad()
def evaluate(
    axis: ReplicaAxis,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    batch_size: int,
    start: int | None = None,
) -> list[EpochResult]:
    """Each replica's mean loss and accuracy on the same (N, ...) `inputs`, in eval mode; with
    `start`, `inputs` are the features before that block."""
    r = axis.replicas
    if inputs.shape[0] == 0:
        return [EpochResult(loss=float("nan"), acc=float("nan")) for _ in range(r)]
    was_training = axis.module.training
    axis.module.eval()
    loss_sum = torch.zeros(r, device=inputs.device, dtype=torch.float64)
    correct = torch.zeros(r, device=inputs.device, dtype=torch.long)
    for i in range(0, inputs.shape[0], batch_size):
        outputs = axis.forward(axis.shared(inputs[i : i + batch_size]), start)
        yb = axis.shared(targets[i : i + batch_size])
        # Mean over samples (and features, for reconstruction), as in training.
        loss_sum += axis.losses(outputs, yb).double() * yb.shape[axis.batch_dim]
        correct += _correct(outputs, yb, r)
    axis.module.train(was_training)
    return _results(loss_sum, correct, inputs.shape[0], targets)


def _correct(outputs: torch.Tensor, targets: torch.Tensor, replicas: int) -> torch.Tensor:
    """Each replica's correct predictions, (R,), for class targets (classes on the last axis: one
    label per sample, or per position of a sequence); 0 for float targets (reconstruction)."""
    if targets.dtype.is_floating_point:
        return torch.zeros(replicas, device=outputs.device, dtype=torch.long)
    return (outputs.argmax(-1) == targets).reshape(replicas, -1).sum(1)


def _results(
    loss_sum: torch.Tensor, correct: torch.Tensor, n: int, targets: torch.Tensor
) -> list[EpochResult]:
    losses = (loss_sum / n).tolist()  # the one host synchronisation (two with an accuracy)
    if targets.dtype.is_floating_point:
        return [EpochResult(loss=loss, acc=float("nan")) for loss in losses]
    accs = (correct.double() / (n * labels_per_sample(targets))).tolist()
    return [EpochResult(loss=loss, acc=acc) for loss, acc in zip(losses, accs, strict=True)]


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
