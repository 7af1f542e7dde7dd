"""growlab's own hidden blocks: op -> norm -> activation (-> dropout), and the multiplicative
conv gate. The built-in families (growlab.growth.model_families) are made of them; identity
insertion and widening know how to set their weights.

Each block also says how it runs on a stack of replicas (`forward_stacked`, see
growlab.engine.stacking.forward): through its children, so their batched fast paths apply.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from growlab.config import Activation, Norm

BlockSpec = dict[str, Any]
# Runs the child module of that name on stacked (R, B, ...) activations.
RunChild = Callable[[str, torch.Tensor], torch.Tensor]

ACTIVATIONS: dict[Activation, type[nn.Module]] = {
    Activation.relu: nn.ReLU,
    Activation.gelu: nn.GELU,
    Activation.tanh: nn.Tanh,
}


def spatial_dims(model_cfg: dict[str, Any]) -> int:
    """1 for a CNN on signals (Conv1d), 2 for one on images; set by the CNN family."""
    return int(model_cfg.get("spatial_dims", 2))


def make_conv(model_cfg: dict[str, Any], d_in: int, d_out: int) -> nn.Module:
    k = model_cfg["kernel_size"]
    conv = nn.Conv1d if spatial_dims(model_cfg) == 1 else nn.Conv2d
    return conv(d_in, d_out, k, padding=k // 2)


def make_norm(norm: Norm, op: str, dim: int, dims: int = 2) -> nn.Module:
    if norm is Norm.none:
        return nn.Identity()
    if op == "linear" or dims == 1:
        if norm is Norm.batch:
            return nn.BatchNorm1d(dim)
        if op == "linear":
            return nn.LayerNorm(dim)
    elif norm is Norm.batch:
        return nn.BatchNorm2d(dim)
    # GroupNorm with one group normalises over (C, H, W) or (C, L): LayerNorm for feature maps.
    return nn.GroupNorm(1, dim)


class Block(nn.Module):
    """op -> norm -> activation (-> dropout); with `residual`, activation(x + norm(op(x))).

    Dropout (model.dropout) acts only in training mode, so it never changes the function that
    evaluation, probes and preservation checks see."""

    def __init__(self, spec: BlockSpec, model_cfg: dict[str, Any]) -> None:
        super().__init__()
        op, d_in, d_out = spec["op"], spec["in"], spec["out"]
        if op == "linear":
            self.op: nn.Module = nn.Linear(d_in, d_out)
        else:
            self.op = make_conv(model_cfg, d_in, d_out)
        self.norm = make_norm(Norm(model_cfg["norm"]), op, d_out, spatial_dims(model_cfg))
        self.act = ACTIVATIONS[Activation(model_cfg["activation"])]()
        self.residual = bool(spec.get("residual", False))
        p = float(model_cfg.get("dropout", 0.0))
        self.drop: nn.Module = nn.Dropout(p) if p > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.norm(self.op(x))
        return self.drop(self.act(x + z if self.residual else z))

    def forward_stacked(self, child: RunChild, h: torch.Tensor) -> torch.Tensor:
        z = child("norm", child("op", h))
        return child("drop", child("act", h + z if self.residual else z))


class GateBlock(nn.Module):
    """x * g(x) with g = activation(conv(x)); seed 001's multiplicative conv insertion."""

    def __init__(self, spec: BlockSpec, model_cfg: dict[str, Any]) -> None:
        super().__init__()
        c = spec["channels"]
        self.gate = make_conv(model_cfg, c, c)
        self.act = ACTIVATIONS[Activation(model_cfg["activation"])]()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.act(self.gate(x))

    def forward_stacked(self, child: RunChild, h: torch.Tensor) -> torch.Tensor:
        return h * child("act", child("gate", h))
