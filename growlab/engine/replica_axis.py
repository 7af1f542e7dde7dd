"""The replica axis of an epoch: what a solo run and a stack of replicas do differently when
growlab.engine.training trains or evaluates them, so that the epoch is written once.

A solo run is a stack of one whose tensors have no replica axis: its network takes (B, ...)
batches and its loss is a scalar, seen by the epoch as the (1,) losses of one replica. A stack
(growlab.engine.stacking.forward) carries the replicas first, (R, B, ...), in its activations,
targets and per-replica losses. Either way the epoch sums (R,) losses and (R,) correct counts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

from growlab.engine.stacking.forward import StackedNet
from growlab.growth.nets import GrowableNet

LossFn = Callable[..., torch.Tensor]
# The objective's loss of each replica: (R, B, ...) outputs and targets -> (R,).
ReplicaLosses = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class ReplicaAxis(Protocol):
    """What train_epoch and evaluate ask of the network(s) they train: all that differs."""

    replicas: int  # R
    batch_dim: int  # where the samples of a batch are: after the replica axis, if there is one
    # The epoch's batches as contiguous slices of one gather of the whole epoch (batch_dim 0).
    gathers_once: bool
    module: nn.Module  # whose train/eval mode the epoch sets

    def along(self, per_replica: list[torch.Tensor]) -> torch.Tensor:
        """One tensor per replica (an epoch's order) laid along the replica axis."""
        ...

    def shared(self, batch: torch.Tensor) -> torch.Tensor:
        """A (B, ...) batch every replica gets, as the network takes it."""
        ...

    def gather(self, inputs: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """The network's inputs for `index` (an order's batch, laid out as `along` does)."""
        ...

    def forward(self, x: torch.Tensor, start: int | None) -> torch.Tensor:
        """Outputs for `x`, the features before block `start` (None: the network's inputs)."""
        ...

    def losses(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Each replica's mean loss on the batch: (R,)."""
        ...


class Solo:
    """One network on its own: R = 1, no replica axis in its tensors."""

    replicas = 1
    batch_dim = 0
    # Measured faster on the CPU than a gather per batch; the same batches.
    gathers_once = True

    def __init__(self, net: nn.Module, loss_fn: LossFn = F.cross_entropy) -> None:
        """`net`: a GrowableNet, or any module evaluated on the network's inputs (start None)."""
        self.net = self.module = net
        self.loss_fn = loss_fn

    def along(self, per_replica: list[torch.Tensor]) -> torch.Tensor:
        (only,) = per_replica
        return only

    def shared(self, batch: torch.Tensor) -> torch.Tensor:
        return batch

    def gather(self, inputs: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        return inputs[index]

    def forward(self, x: torch.Tensor, start: int | None) -> torch.Tensor:
        if start is None:
            return self.net(x)
        assert isinstance(self.net, GrowableNet), "features before a block need a GrowableNet"
        return self.net.forward_from(x, start)

    def losses(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        # A (1,) view of the scalar: the same value, and backward from 1 the same gradients.
        return self.loss_fn(outputs, targets).reshape(1)


class Stack:
    """R replicas trained as one StackedNet: the replica axis first in every tensor."""

    batch_dim = 1
    # One gather of an epoch of shared inputs would be R copies of the data set.
    gathers_once = False

    def __init__(
        self, net: StackedNet, replica_losses: ReplicaLosses, per_replica_inputs: bool = False
    ) -> None:
        """`per_replica_inputs`: the epoch's inputs are (R, N, ...), each replica's own (its
        cached features); otherwise (N, ...), the same for every replica."""
        self.net, self.replica_losses = net, replica_losses
        self.per_replica_inputs = per_replica_inputs
        self.replicas = net.replicas
        self.module: nn.Module = net.template
        device = next(iter(net.tensors.values())).device
        self.rows = torch.arange(self.replicas, device=device).unsqueeze(1)

    def along(self, per_replica: list[torch.Tensor]) -> torch.Tensor:
        return torch.stack(per_replica)

    def shared(self, batch: torch.Tensor) -> torch.Tensor:
        return batch.expand(self.replicas, *batch.shape)

    def gather(self, inputs: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        # index: (R, B); a replica's batch from its own row, or every replica's from the one set.
        return inputs[self.rows, index] if self.per_replica_inputs else inputs[index]

    def forward(self, x: torch.Tensor, start: int | None) -> torch.Tensor:
        return self.net.forward_from(x, start)

    def losses(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return self.replica_losses(outputs, targets)
