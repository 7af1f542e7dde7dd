"""ReZero-style growth: insert x + alpha * block(x) with alpha = 0, so the network computes
exactly the same function at insertion and the new block learns how much to contribute
(Bachlechner et al., 2020, "ReZero is all you need").

The branch is growlab's standard block of the model being grown (Linear -> the model's norm ->
its activation -> its dropout), so with `model.norm=batch` or `model.dropout=0.1` the new block
has BatchNorm and dropout like every other block."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from growlab.growth.operators import GrowthOperator, standard_block


class ReZeroBlock(nn.Module):
    def __init__(self, branch: nn.Module) -> None:
        super().__init__()
        self.branch = branch
        self.alpha = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.alpha * self.branch(x)


@dataclass
class ReZeroResidual(GrowthOperator):
    # growlab measures the preservation error because this says the function is preserved,
    # and refuses models other than these before a run starts (this example keeps to vectors).
    preserves_function: ClassVar[bool] = True
    models: ClassVar[tuple[str, ...] | None] = ("mlp", "backbone")
    # A field is part of the operator's config: `strategy.operator.alpha_init=0.1` (with `+`
    # in front when the strategy YAML does not list it, as identity-insert's does not).
    alpha_init: float = 0.0

    def make_block(self, model: Mapping[str, Any]) -> nn.Module:
        # Also how a checkpoint rebuilds the block: same structure, then its saved weights.
        return ReZeroBlock(standard_block(model))

    def initialise(self, block: nn.Module, model: Mapping[str, Any]) -> None:
        assert isinstance(block, ReZeroBlock)
        with torch.no_grad():
            block.alpha.fill_(self.alpha_init)
