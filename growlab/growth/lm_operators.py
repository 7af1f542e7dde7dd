"""Depth-growth operators for transformers (`model=gpt`): the transformer-growth literature's.

- `ZeroBlock` (`strategy=zero-insert`): a fresh transformer block whose attention output
  projection and MLP output projection are zero, so both residual branches add 0: exact.
- `MaskedBlock` (`strategy=msg-depth`, masked structural growth): a fresh block whose residual
  contribution, block(x) - x, is multiplied by a mask ramped from 0 to 1 over `ramp_steps`
  optimizer steps: exact at insertion. The mask's progress is a buffer of the block, so it is in
  every checkpoint and a resumed run goes on from where it stopped.
- `StackBlocks` (`strategy=gstack`) and `InterpolateBlocks` (`strategy=interpolate-depth`) copy
  the trained blocks (growlab.growth.depth_copy grows with them): not function-preserving, their
  error at insertion is measured and recorded as `preservation_error`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from growlab.config import ConfigError
from growlab.growth.blocks import RunChild
from growlab.growth.families import family_of
from growlab.growth.nets import GrowableNet
from growlab.growth.operators import GrowthOperator, Model, width_spec

GPT_ONLY: tuple[str, ...] = ("gpt",)


def transformer_block(model: Model) -> nn.Module:
    """A fresh block of the network's own family (nanoGPT's initialisation)."""
    return family_of(model).build_block(width_spec(model), dict(model))


def output_projections(block: nn.Module) -> list[nn.Linear]:
    """The layers that write a transformer block's two residual branches."""
    return [block.get_submodule("attn.proj"), block.get_submodule("mlp.proj")]  # type: ignore[list-item]


@dataclass
class ZeroBlock(GrowthOperator):
    """A transformer block with zero attention and MLP output projections (and biases)."""

    preserves_function: ClassVar[bool] = True
    models: ClassVar[tuple[str, ...] | None] = GPT_ONLY

    def make_block(self, model: Model) -> nn.Module:
        return transformer_block(model)

    def initialise(self, block: nn.Module, model: Model) -> None:
        with torch.no_grad():
            for layer in output_projections(block):
                layer.weight.zero_()
                if layer.bias is not None:
                    layer.bias.zero_()


class RampMask(nn.Module):
    """x * min(step / ramp_steps, 1); each training-mode call (one per optimizer step) counts a
    step after it. `step` is a buffer: saved with the weights, stacked with the replicas."""

    def __init__(self, ramp_steps: int) -> None:
        super().__init__()
        self.ramp_steps = ramp_steps
        self.register_buffer("step", torch.zeros(()))

    def value(self) -> torch.Tensor:
        return torch.clamp(self.step / self.ramp_steps, max=1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x * self.value()
        if self.training:
            self.step.add_(1)
        return out


class MaskedResidual(nn.Module):
    """x + mask * (block(x) - x): the block's residual contribution, masked."""

    def __init__(self, block: nn.Module, ramp_steps: int) -> None:
        super().__init__()
        self.block = block
        self.mask = RampMask(ramp_steps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.mask(self.block(x) - x)

    def forward_stacked(self, child: RunChild, h: torch.Tensor) -> torch.Tensor:
        return h + child("mask", child("block", h) - h)


@dataclass
class MaskedBlock(GrowthOperator):
    """A fresh transformer block behind a mask ramped 0 -> 1 over `ramp_steps` steps."""

    preserves_function: ClassVar[bool] = True
    models: ClassVar[tuple[str, ...] | None] = GPT_ONLY
    ramp_steps: int = 100

    def check(self, model: Model) -> None:
        super().check(model)
        if self.ramp_steps < 1:
            raise ConfigError(
                f"strategy.ramp_steps={self.ramp_steps}; valid: an integer >= 1 (optimizer steps)"
            )

    def make_block(self, model: Model) -> nn.Module:
        return MaskedResidual(transformer_block(model), self.ramp_steps)


@dataclass
class CopyOperator(GrowthOperator):
    """Grows by copying the trained blocks, `factor` times the depth per growth."""

    models: ClassVar[tuple[str, ...] | None] = GPT_ONLY
    measures_error: ClassVar[bool] = True
    factor: int = 2

    def check(self, model: Model) -> None:
        super().check(model)
        if self.factor < 2:
            raise ConfigError(
                f"strategy.stack_factor={self.factor} would not grow the network; valid: an "
                "integer >= 2 (the depth is multiplied by it at each growth)"
            )

    def make_block(self, model: Model) -> nn.Module:
        return transformer_block(model)

    def copies(self, net: GrowableNet) -> list[tuple[int, nn.Module]]:
        """(index, block) in the order to insert them."""
        raise NotImplementedError


@dataclass
class StackBlocks(CopyOperator):
    """G_stack: the L trained blocks copied on top, factor - 1 times (depth L -> factor * L)."""

    def copies(self, net: GrowableNet) -> list[tuple[int, nn.Module]]:
        depth = net.depth
        return [
            (depth + k, copy.deepcopy(net.blocks[k % depth]))
            for k in range(depth * (self.factor - 1))
        ]


@dataclass
class InterpolateBlocks(CopyOperator):
    """Each block repeated in place (b0 b0 b1 b1 ...): bert2BERT / progressive stacking."""

    def copies(self, net: GrowableNet) -> list[tuple[int, nn.Module]]:
        out = []
        for i in reversed(range(net.depth)):
            out += [(i + 1, copy.deepcopy(net.blocks[i])) for _ in range(self.factor - 1)]
        return out
