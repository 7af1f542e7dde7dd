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

from growlab.growth.blocks import Block, BlockSpec, GateBlock
from growlab.growth.families import family_of

# Re-exported: where these lived before growlab.growth.blocks.
__all__ = [
    "Arch",
    "Block",
    "BlockSpec",
    "GateBlock",
    "GrowableNet",
    "block_widths",
    "build_block",
    "build_network",
    "count_params",
    "has_parameters",
    "initial_arch",
]

Arch = dict[str, Any]


def build_block(spec: BlockSpec, model_cfg: dict[str, Any]) -> nn.Module:
    """The module a spec describes; a grown block is rebuilt by the operator that made it."""
    if spec["type"] == "operator":
        return instantiate(spec["operator"]).make_block(model_cfg)
    if spec["type"] == "gate":
        return GateBlock(spec, model_cfg)
    return family_of(model_cfg).build_block(spec, model_cfg)


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
        family = family_of(model_cfg)
        width = block_widths(self.arch)[-1] if self.arch["blocks"] else model_cfg["width"]
        shape = tuple(self.arch["input_shape"])
        self.stem: nn.Module = family.build_stem(model_cfg, shape, load_weights)
        self.head: nn.Module = family.build_head(model_cfg, width, self.arch["num_classes"])
        self._stem_trains = family.stem_trains(model_cfg)
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
        return self._stem_trains

    def set_trainable(self, blocks: set[int], head: bool, stem: bool = False) -> None:
        """Freeze for real: no gradients and eval mode, so frozen parts compute a fixed function.

        The stem trains only when asked and its family allows it (a backbone's does with
        model.freeze_backbone=false)."""
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
    family = family_of(model_cfg)
    model_cfg = family.bind_outputs(family.arch_model(model_cfg, input_shape), num_classes)
    d_in = family.input_width(model_cfg, input_shape)
    width = model_cfg["width"]
    blocks = [family.block_spec(model_cfg, d_in if i == 0 else width, width) for i in range(depth)]
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
