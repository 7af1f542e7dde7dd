"""An epoch of training and an evaluation for a stack of replicas (see forward.py).

Each replica draws its own order from its own generator, exactly as its solo run would, and
the stack's loss is the sum of the replicas' mean losses: the gradient each replica gets is
its own. Losses and accuracies accumulate on the device, so an epoch never waits for the GPU.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from growlab.engine.accelerators.batch_loop import run_batches, use_cuda_graphs
from growlab.engine.stacking.forward import StackedNet
from growlab.engine.training import EpochResult, epoch_order, labels_per_sample

# The objective's loss of each replica: (R, B, ...) outputs and targets -> (R,).
ReplicaLosses = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _correct(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    if targets.dtype.is_floating_point:  # reconstruction: no accuracy
        return torch.zeros(outputs.shape[0], device=outputs.device, dtype=torch.long)
    return (outputs.argmax(-1) == targets).flatten(1).sum(1)


def _results(
    loss_sum: torch.Tensor, correct: torch.Tensor, n: int, targets: torch.Tensor
) -> list[EpochResult]:
    losses = (loss_sum / n).tolist()  # the one host synchronisation
    if targets.dtype.is_floating_point:
        return [EpochResult(loss, float("nan")) for loss in losses]
    accs = (correct.double() / (n * labels_per_sample(targets))).tolist()
    return [EpochResult(loss, acc) for loss, acc in zip(losses, accs, strict=True)]


def stacked_train_epoch(
    net: StackedNet,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    batch_size: int,
    generators: list[torch.Generator],
    start: int | None,
    replica_losses: ReplicaLosses,
    per_replica_inputs: bool,
    cuda_graphs: bool = False,
    steps: int | None = None,
) -> list[EpochResult]:
    """`inputs`: (N, ...) shared by the replicas, or (R, N, ...) with `per_replica_inputs`
    (each replica's cached features). `steps`: batches drawn at random, as a solo run's."""
    net.template.train()
    device = inputs.device
    orders = [epoch_order(targets.shape[0], batch_size, steps, g) for g in generators]
    order = torch.stack(orders).to(device)
    n = order.shape[1]
    rows = torch.arange(len(generators), device=device).unsqueeze(1)
    loss_sum = torch.zeros(len(generators), device=device)
    correct = torch.zeros(len(generators), device=device, dtype=torch.long)

    def step(index: torch.Tensor) -> None:
        xb = inputs[rows, index] if per_replica_inputs else inputs[index]
        yb = targets[index]
        outputs = net.forward_from(xb, start)
        losses = replica_losses(outputs, yb)
        optimizer.zero_grad(set_to_none=True)
        losses.sum().backward()
        optimizer.step()
        loss_sum.add_(losses.detach() * index.shape[1])
        correct.add_(_correct(outputs.detach(), yb))

    graphs = use_cuda_graphs(cuda_graphs, device, optimizer)
    run_batches(order, batch_size, step, graphs)
    return _results(loss_sum, correct, n, targets)


@torch.no_grad()
def stacked_evaluate(
    net: StackedNet,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    batch_size: int,
    replica_losses: ReplicaLosses,
) -> list[EpochResult]:
    """Every replica on the same (N, ...) inputs, in eval mode."""
    r = net.replicas
    if inputs.shape[0] == 0:
        return [EpochResult(float("nan"), float("nan"))] * r
    was_training = net.template.training
    net.template.eval()
    loss_sum = torch.zeros(r, device=inputs.device, dtype=torch.float64)
    correct = torch.zeros(r, device=inputs.device, dtype=torch.long)
    for i in range(0, inputs.shape[0], batch_size):
        xb = inputs[i : i + batch_size].expand(r, *inputs[i : i + batch_size].shape)
        yb = targets[i : i + batch_size].expand(r, *targets[i : i + batch_size].shape)
        outputs = net(xb)
        loss_sum += replica_losses(outputs, yb).double() * yb.shape[1]
        correct += _correct(outputs, yb)
    net.template.train(was_training)
    return _results(loss_sum, correct, inputs.shape[0], targets)
