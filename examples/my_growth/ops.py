"""ReZero-style growth: insert x + alpha * relu(W x + b) with alpha = 0, so the network computes
exactly the same function at insertion and the new block learns how much to contribute
(Bachlechner et al., 2020, "ReZero is all you need")."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from growlab.growth.operators import GrowthOperator


class ReZeroBlock(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.linear = nn.Linear(width, width)
        self.alpha = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.alpha * torch.relu(self.linear(x))


@dataclass
class ReZeroResidual(GrowthOperator):
    # growlab measures the preservation error because this says the function is preserved,
    # and refuses models other than these before a run starts.
    preserves_function: ClassVar[bool] = True
    models: ClassVar[tuple[str, ...] | None] = ("mlp", "backbone")
    # A field is part of the operator's config: `+strategy.operator.alpha_init=0.1`.
    alpha_init: float = 0.0

    def make_block(self, model: Mapping[str, Any]) -> nn.Module:
        return ReZeroBlock(model["width"])

    def initialise(self, block: nn.Module, model: Mapping[str, Any]) -> None:
        assert isinstance(block, ReZeroBlock)
        with torch.no_grad():
            block.alpha.fill_(self.alpha_init)
