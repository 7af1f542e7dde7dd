"""A growable network: stem, an ordered list of blocks, head.

Every block is described by a small dict (its spec), so an architecture is plain data that a
checkpoint stores and `build_network` rebuilds, whatever growth produced it.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from hydra.utils import instantiate
from torch import nn

from growlab.config import Activation, ModelKind, Norm

BlockSpec = dict[str, Any]
Arch = dict[str, Any]

ACTIVATIONS: dict[Activation, type[nn.Module]] = {
    Activation.relu: nn.ReLU,
    Activation.gelu: nn.GELU,
    Activation.tanh: nn.Tanh,
}


def spatial_dims(model_cfg: dict[str, Any]) -> int:
    """1 for a CNN on signals (Conv1d), 2 for one on images; set by `initial_arch`."""
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


class GateBlock(nn.Module):
    """x * g(x) with g = activation(conv(x)); seed 001's multiplicative conv insertion."""

    def __init__(self, spec: BlockSpec, model_cfg: dict[str, Any]) -> None:
        super().__init__()
        c = spec["channels"]
        self.gate = make_conv(model_cfg, c, c)
        self.act = ACTIVATIONS[Activation(model_cfg["activation"])]()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.act(self.gate(x))


def build_block(spec: BlockSpec, model_cfg: dict[str, Any]) -> nn.Module:
    """The module a spec describes; a grown block is rebuilt by the operator that made it."""
    if spec["type"] == "operator":
        return instantiate(spec["operator"]).make_block(model_cfg)
    return GateBlock(spec, model_cfg) if spec["type"] == "gate" else Block(spec, model_cfg)


def block_widths(arch: Arch) -> list[int]:
    """Each hidden block's output width: its spec's `out` once widened, else model.width."""
    width = arch["model"]["width"]
    return [int(spec.get("out", spec.get("channels", width))) for spec in arch["blocks"]]


def has_parameters(module: nn.Module) -> bool:
    return next(module.parameters(), None) is not None


class GrowableNet(nn.Module):
    def __init__(self, arch: Arch, load_weights: bool = False) -> None:
        """`load_weights` reads a backbone's local weights file (a fresh run, not a reload)."""
        super().__init__()
        self.arch = copy.deepcopy(arch)
        model_cfg = self.arch["model"]
        kind = ModelKind(model_cfg["name"])
        width = block_widths(self.arch)[-1] if self.arch["blocks"] else model_cfg["width"]
        classes = self.arch["num_classes"]
        if kind is ModelKind.cnn:
            shape = self.arch["input_shape"]
            # A 1-D signal without a channel axis gets one: (N, L) -> (N, 1, L).
            one_channel = nn.Unflatten(1, (1, shape[0]))
            self.stem: nn.Module = one_channel if len(shape) == 1 else nn.Identity()
            one_d = spatial_dims(model_cfg) == 1
            pool = nn.Sequential(
                nn.AdaptiveAvgPool1d(1) if one_d else nn.AdaptiveAvgPool2d(1), nn.Flatten()
            )
            self.head: nn.Module = nn.Sequential(pool, nn.Linear(width, classes))
        else:
            if kind is ModelKind.backbone:
                from growlab.growth.backbones import BackboneStem

                weights = model_cfg.get("weights") if load_weights else None
                self.stem = BackboneStem(model_cfg["backbone"], model_cfg["input_size"], weights)
            else:
                self.stem = nn.Flatten()
            self.head = nn.Linear(width, classes)
        self.blocks = nn.ModuleList(build_block(s, model_cfg) for s in self.arch["blocks"])
        self.frozen: list[bool] = [False] * len(self.blocks)
        self.head_frozen = False
        # A stem without parameters (Flatten, Identity) is a fixed function by construction.
        self.stem_frozen = not has_parameters(self.stem)

    @property
    def depth(self) -> int:
        return len(self.blocks)

    def features(self, x: torch.Tensor, upto: int | None = None) -> torch.Tensor:
        """Output of the stem and the first `upto` blocks (all blocks when None)."""
        x = self.stem(x)
        for block in self.blocks[:upto]:
            x = block(x)
        return x

    def forward_from(self, h: torch.Tensor, start: int | None) -> torch.Tensor:
        """Run blocks[start:] and the head on `h` = features(x, upto=start); None: h is x."""
        if start is None:
            return self(h)
        for block in self.blocks[start:]:
            h = block(h)
        return self.head(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_from(self.features(x, upto=0), 0)

    def insert(self, position: int, spec: BlockSpec, block: nn.Module) -> None:
        self.blocks.insert(position, block)
        self.arch["blocks"].insert(position, spec)
        self.frozen.insert(position, False)

    @property
    def stem_trainable_allowed(self) -> bool:
        return not self.arch["model"].get("freeze_backbone", True)

    def set_trainable(self, blocks: set[int], head: bool, stem: bool = False) -> None:
        """Freeze for real: no gradients and eval mode, so frozen parts compute a fixed function.

        The stem trains only when asked and allowed (model.freeze_backbone=false)."""
        self.frozen = [i not in blocks for i in range(len(self.blocks))]
        self.head_frozen = not head
        stem_trains = stem and self.stem_trainable_allowed and has_parameters(self.stem)
        self.stem_frozen = not stem_trains
        self.stem.requires_grad_(stem_trains)
        for i, block in enumerate(self.blocks):
            block.requires_grad_(not self.frozen[i])
        self.head.requires_grad_(head)
        self.train(self.training)

    def train(self, mode: bool = True) -> GrowableNet:
        super().train(mode)
        for block, frozen in zip(self.blocks, self.frozen, strict=True):
            if frozen:
                block.eval()
        if self.head_frozen:
            self.head.eval()
        if self.stem_frozen:
            self.stem.eval()
        return self

    def frozen_prefix(self) -> int | None:
        """Number of leading frozen blocks after a frozen stem: their output is a fixed function
        of x. None when the stem itself trains."""
        if not self.stem_frozen:
            return None
        n = 0
        for frozen in self.frozen:
            if not frozen:
                break
            n += 1
        return n


def initial_arch(
    model_cfg: dict[str, Any], input_shape: tuple[int, ...], num_classes: int, depth: int
) -> Arch:
    kind = ModelKind(model_cfg["name"])
    op = "conv" if kind is ModelKind.cnn else "linear"
    width = model_cfg["width"]
    if kind is ModelKind.mlp:
        d_in = int(torch.Size(input_shape).numel())
    elif kind is ModelKind.cnn:
        # (L,) or (C, L): Conv1d; (C, H, W): Conv2d.
        d_in = 1 if len(input_shape) == 1 else input_shape[0]
        model_cfg = {**model_cfg, "spatial_dims": max(len(input_shape) - 1, 1)}
    else:
        from growlab.growth.backbones import BackboneStem, feature_dim

        stem = BackboneStem(model_cfg["backbone"], model_cfg["input_size"])
        d_in = feature_dim(stem, input_shape)
    blocks = [
        {"type": "block", "op": op, "in": d_in if i == 0 else width, "out": width}
        for i in range(depth)
    ]
    return {
        "model": dict(model_cfg),
        "input_shape": list(input_shape),
        "num_classes": num_classes,
        "blocks": blocks,
    }


def build_network(arch: Arch, load_weights: bool = False) -> GrowableNet:
    return GrowableNet(arch, load_weights)


def count_params(model: nn.Module) -> tuple[int, int]:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return total, trainable
