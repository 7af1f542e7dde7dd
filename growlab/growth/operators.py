"""Growth operators: each builds the block a growth inserts, and says what it needs.

An operator is a small object built from config (`strategy.operator._target_`), so one in a
researcher's own package works like these. It declares whether it preserves the network's
function at insertion (the stage loop then measures the preservation error on a probe batch)
and which models and activations it works with (checked before a run starts). The block it
inserts is recorded in the architecture as the operator's own config, so a checkpoint rebuilds
the block by asking the same operator for a fresh one and loading the saved weights into it.

To add one: subclass `GrowthOperator` (a dataclass whose fields are its config), implement
`make_block`, and `initialise` if the block needs more than PyTorch's default init. Build the
block from `standard_block(model)`, the network's own block, so it keeps the model's norm,
activation and dropout (a hand-written Linear + ReLU silently drops `model.norm=batch`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from growlab.config import ConfigError, Norm
from growlab.growth.blocks import Block, BlockSpec, GateBlock
from growlab.growth.families import family_of

Model = Mapping[str, Any]


@dataclass
class OperatorBase:
    """What every operator (inserting a block, or widening blocks) declares and records."""

    preserves_function: ClassVar[bool] = False
    # Not function-preserving, but its error at insertion is measured too (copying operators).
    measures_error: ClassVar[bool] = False
    # model kinds (model.name) and activations it works with; None: any
    models: ClassVar[tuple[str, ...] | None] = None
    activations: ClassVar[tuple[str, ...] | None] = None

    @property
    def name(self) -> str:
        return type(self).__name__

    def check(self, model: Model) -> None:
        """Refuse, before the run starts, a model this operator cannot grow."""
        for key, allowed in (("name", self.models), ("activation", self.activations)):
            if allowed is not None and str(model[key]) not in allowed:
                field = "model" if key == "name" else f"model.{key}"
                raise ConfigError(
                    f"operator {self.name} needs {field}={'|'.join(allowed)}, "
                    f"got {field}={model[key]}"
                )

    def config(self) -> dict[str, Any]:
        """Its `_target_` and fields: what rebuilds the same operator from a checkpoint."""
        cls = type(self)
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return {"_target_": f"{cls.__module__}.{cls.__qualname__}", **fields}


@dataclass
class GrowthOperator(OperatorBase):
    """Base of every operator that inserts a block; the class attributes are its declarations."""

    def make_block(self, model: Model) -> nn.Module:
        """A new block of the network's width, with PyTorch's initialisation."""
        raise NotImplementedError

    def initialise(self, block: nn.Module, model: Model) -> None:
        """Set the new block's weights for insertion (default: keep PyTorch's)."""

    def spec(self, model: Model) -> BlockSpec:
        return {"type": "operator", "operator": self.config()}


def width_spec(model: Model) -> BlockSpec:
    """The spec of a hidden block of the model's family that keeps the network's width."""
    return family_of(model).block_spec(model, model["width"], model["width"])


def standard_block(model: Model, residual: bool = False) -> nn.Module:
    """A fresh hidden block like the network's own, at its width, as its family builds it
    (ModelFamily.standard_block). For growlab's families: op (Linear, or the CNN's
    Conv1d/Conv2d) -> the model's norm (model.norm) -> its activation -> its dropout, with
    PyTorch's initialisation; `residual`: activation(x + norm(op(x))). Every built-in depth
    operator builds on it; a user's operator should too, alone or as a branch of its own
    module, so the grown block normalises and drops out like the others."""
    return family_of(model).standard_block(model, residual)


@dataclass
class RandomBlock(GrowthOperator):
    """A block as PyTorch initialises it: the function changes at insertion."""

    def make_block(self, model: Model) -> nn.Module:
        return standard_block(model)


@dataclass
class IdentityBlock(GrowthOperator):
    """A block computing the identity on the non-negative outputs of a ReLU block.

    op = I (identity matrix, or a Dirac kernel) and zero bias; BatchNorm with zero running mean
    and unit effective variance is the identity in eval mode. LayerNorm normalises each sample,
    which no weight matrix can undo, so with norm=layer the block is residual,
    relu(x + LN(op(x))), with the norm's gain and bias zero: the residual branch starts at 0.
    """

    preserves_function: ClassVar[bool] = True
    activations: ClassVar[tuple[str, ...] | None] = ("relu",)

    def check(self, model: Model) -> None:
        super().check(model)
        block = self.make_block(model)
        if not isinstance(block, Block):
            raise ConfigError(
                f"operator {self.name} sets growlab's Block (op -> norm -> activation); "
                f"model={model['name']}'s blocks are {type(block).__name__}"
            )

    def make_block(self, model: Model) -> nn.Module:
        return standard_block(model, residual=Norm(model["norm"]) is Norm.layer)

    def initialise(self, block: nn.Module, model: Model) -> None:
        assert isinstance(block, Block)
        norm = Norm(model["norm"])
        with torch.no_grad():
            if isinstance(block.op, nn.Linear):
                nn.init.eye_(block.op.weight)
            else:
                nn.init.dirac_(block.op.weight)
            nn.init.zeros_(block.op.bias)
            if norm is Norm.batch:
                block.norm.running_mean.zero_()
                block.norm.running_var.fill_(1.0 - block.norm.eps)
            elif norm is Norm.layer:
                nn.init.zeros_(block.norm.weight)
                nn.init.zeros_(block.norm.bias)


@dataclass
class MultiplicativeGate(GrowthOperator):
    """x * relu(conv(x)) with the gate == 1 (zero kernel, unit bias) at insertion.

    literal_seed_init reproduces seed 001: an all-ones kernel and no bias, which sums k*k*C
    inputs per output and so does not preserve the function (its error is measured anyway).
    """

    preserves_function: ClassVar[bool] = True
    models: ClassVar[tuple[str, ...] | None] = ("cnn",)
    literal_seed_init: bool = False

    def make_block(self, model: Model) -> nn.Module:
        return GateBlock({"type": "gate", "channels": model["width"]}, dict(model))

    def initialise(self, block: nn.Module, model: Model) -> None:
        assert isinstance(block, GateBlock)
        with torch.no_grad():
            if self.literal_seed_init:
                nn.init.ones_(block.gate.weight)
                nn.init.zeros_(block.gate.bias)
            else:
                nn.init.zeros_(block.gate.weight)
                nn.init.ones_(block.gate.bias)
