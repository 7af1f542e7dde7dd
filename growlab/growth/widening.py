"""Widening a hidden block in place: k new units (neurons, or conv channels) in its op, its norm
and the next layer's fan-in, the block specs updated so a checkpoint rebuilds the wider net.

A width operator decides the new units' numbers (`NewUnits`); `widen_block` does the surgery.
New units are appended, so every existing parameter sits at the leading corner of its wider
replacement; the returned map (old parameter -> new one) is what lets the optimizer carry its
per-parameter state through a widening (growlab.engine.optim.carry_state).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from growlab.config import ConfigError
from growlab.growth.blocks import Block
from growlab.growth.nets import GrowableNet

# Old parameter -> its wider replacement, whose leading corner holds the old values.
Moved = dict[nn.Parameter, nn.Parameter]
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class GrowthData:
    """Training batches a width operator may look at to initialise new units (GradMax):
    consecutive slices of the training set, in order, so drawing them touches no RNG."""

    x: torch.Tensor
    targets: torch.Tensor
    batch_size: int
    loss: LossFn

    def batches(self, n: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        size = self.batch_size
        starts = range(0, min(n * size, len(self.x)), size)
        return [(self.x[i : i + size], self.targets[i : i + size]) for i in starts]


@dataclass
class NewUnits:
    """k new units of one block, as an operator chose them."""

    fan_in: torch.Tensor  # (k, in, *kernel): incoming weights
    bias: torch.Tensor  # (k,)
    fan_out: torch.Tensor  # (next_out, k, *next_kernel): their weights in the next layer
    # Per new unit, the existing unit whose norm parameters and statistics it copies
    # (Net2Wider); None: a fresh norm (gain 1, shift 0, running mean 0, variance 1).
    source: torch.Tensor | None = None
    # New values for the existing units' outgoing weights (Net2Wider divides them); None: kept.
    old_fan_out: torch.Tensor | None = None


@dataclass
class Layer:
    """The modules widening block `index` touches."""

    index: int
    op: nn.Linear | nn.Conv2d
    norm: nn.Module
    next: nn.Linear | nn.Conv2d  # the next block's op, or the head's linear layer

    @property
    def width(self) -> int:
        return self.op.weight.shape[0]


def layer(net: GrowableNet, index: int) -> Layer:
    """Block `index`'s op and norm and the layer that reads its output; only plain blocks widen."""
    block = net.blocks[index]
    if not isinstance(block, Block) or block.residual:
        raise ConfigError(
            f"block {index} ({type(block).__name__}) cannot be widened; "
            "only plain linear/conv blocks can"
        )
    if index + 1 < net.depth:
        after = net.blocks[index + 1]
        if not isinstance(after, Block) or after.residual:
            raise ConfigError(f"block {index + 1} reads block {index} and cannot be widened")
        nxt = after.op
    else:
        nxt = net.head if isinstance(net.head, nn.Linear) else net.head[-1]
    assert isinstance(block.op, nn.Linear | nn.Conv2d) and isinstance(nxt, nn.Linear | nn.Conv2d)
    return Layer(index, block.op, block.norm, nxt)


def _param(module: nn.Module, name: str, value: torch.Tensor, moved: Moved) -> None:
    old = getattr(module, name)
    new = nn.Parameter(value.detach().clone(), requires_grad=old.requires_grad)
    moved[old] = new
    setattr(module, name, new)


def _extend(old: torch.Tensor, source: torch.Tensor | None, fresh: float, k: int) -> torch.Tensor:
    """A per-unit vector with k more entries: copies of `source` units, else `fresh`."""
    if source is not None:
        extra = old[source.to(old.device)]
    else:
        extra = torch.full((k,), fresh, dtype=old.dtype)
    return torch.cat([old.detach(), extra.to(old.device)])


@torch.no_grad()
def _widen_norm(norm: nn.Module, units: NewUnits, k: int, moved: Moved) -> None:
    if isinstance(norm, nn.Identity):
        return
    if norm.weight is not None:
        _param(norm, "weight", _extend(norm.weight, units.source, 1.0, k), moved)
        _param(norm, "bias", _extend(norm.bias, units.source, 0.0, k), moved)
    if isinstance(norm, nn.BatchNorm1d | nn.BatchNorm2d):
        norm.running_mean = _extend(norm.running_mean, units.source, 0.0, k)
        norm.running_var = _extend(norm.running_var, units.source, 1.0, k)
        norm.num_features += k
    elif isinstance(norm, nn.LayerNorm):
        norm.normalized_shape = (norm.normalized_shape[0] + k,)
    elif isinstance(norm, nn.GroupNorm):
        norm.num_channels += k
    else:
        raise ConfigError(f"cannot widen a {type(norm).__name__}")


@torch.no_grad()
def widen_block(net: GrowableNet, index: int, units: NewUnits) -> Moved:
    """Append `units` to block `index`; returns the parameters that were replaced."""
    where = layer(net, index)
    op, nxt = where.op, where.next
    k = units.fan_in.shape[0]
    device = op.weight.device
    moved: Moved = {}
    _param(op, "weight", torch.cat([op.weight, units.fan_in.to(device)]), moved)
    _param(op, "bias", torch.cat([op.bias, units.bias.to(device)]), moved)
    if isinstance(op, nn.Linear):
        op.out_features += k
    else:
        op.out_channels += k
    _widen_norm(where.norm, units, k, moved)
    kept = nxt.weight if units.old_fan_out is None else units.old_fan_out.to(device)
    _param(nxt, "weight", torch.cat([kept, units.fan_out.to(device)], dim=1), moved)
    if isinstance(nxt, nn.Linear):
        nxt.in_features += k
    else:
        nxt.in_channels += k
    specs = net.arch["blocks"]
    specs[index]["out"] += k
    if index + 1 < len(specs):
        specs[index + 1]["in"] += k
    return moved
