"""A residual MLP family: a linear stem projects the input to model.width, each hidden block
adds a pre-norm two-layer MLP to its input, x + down(act(up(norm(x)))), a linear head reads
the last block.

growlab finds it through `_target_: my_models.resmlp.ResidualMLP` in the model YAML
(examples/conf/model/resmlp.yaml), which imports this module; `@register_family` files it
under `name`. Nothing inside growlab names it: its knobs (`expansion`) come with its own
schema, what data it takes with `accepts`, how a stack of seeds runs its block with
`forward_stacked`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from growlab.config import ModelConfig
from growlab.growth.families import SIGNALS, VECTORS, Model, ModelFamily, register_family

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh}


@dataclass
class ResidualMLPConfig(ModelConfig):
    """ModelConfig's keys (width, activation, norm, dropout) and this family's own."""

    # Hidden units of each block's MLP, as a multiple of model.width.
    expansion: int = 2


class ResidualMLPBlock(nn.Module):
    """x + down(act(up(norm(x)))); `norm` is model.norm (none, batch or layer)."""

    def __init__(self, width: int, model: Model) -> None:
        super().__init__()
        norms: dict[str, Callable[[int], nn.Module]] = {
            "none": lambda _: nn.Identity(),
            "batch": nn.BatchNorm1d,
            "layer": nn.LayerNorm,
        }
        self.norm = norms[str(model["norm"])](width)
        self.up = nn.Linear(width, width * int(model["expansion"]))
        self.act = ACTIVATIONS[str(model["activation"])]()
        self.down = nn.Linear(width * int(model["expansion"]), width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.down(self.act(self.up(self.norm(x))))

    def forward_stacked(
        self, child: Callable[[str, torch.Tensor], torch.Tensor], h: torch.Tensor
    ) -> torch.Tensor:
        """The same on a stack of replicas: each child runs on (R, B, width) activations, so
        the linear layers are batched matmuls (growlab.engine.stacked_forward)."""
        return h + child("down", child("act", child("up", child("norm", h))))


@register_family
class ResidualMLP(ModelFamily):
    name: ClassVar[str] = "resmlp"
    data: ClassVar[str] = "vector or 1-D signal"
    schema: ClassVar[type] = ResidualMLPConfig

    def accepts(self, rank: int) -> bool:
        return rank in (VECTORS, SIGNALS)

    def input_width(self, model: Model, input_shape: tuple[int, ...]) -> int:
        return int(model["width"])  # the stem projects to the width

    def block_spec(self, model: Model, d_in: int, d_out: int) -> dict[str, Any]:
        return {"type": "block", "op": "resmlp", "in": d_in, "out": d_out}

    def build_block(self, spec: dict[str, Any], model: Model) -> nn.Module:
        return ResidualMLPBlock(spec["out"], model)

    def build_stem(self, model: Model, input_shape: tuple[int, ...], load: bool) -> nn.Module:
        return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), model["width"]))
