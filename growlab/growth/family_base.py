"""What a model family is and how one registers: the `ModelFamily` base and `@register_family`.

A family says how to build a network's stem, its hidden blocks and its head, the spec a
checkpoint stores to rebuild each block, what data it takes and whether its runs can train as
a stack of seeds. `@register_family` files a `ModelFamily` subclass under its `name` (as timm's
`register_model` does), so there is no list of families to keep in step. growlab.growth.families
finds a model's family (by `model.name`, or the class a model YAML's `_target_` names).

Data are described by the rank of one sample's canonical shape (`VECTORS`, `SIGNALS`,
`IMAGES`): `accepts(rank)` is checked before a run starts, `data` words the refusal.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Protocol, TypeVar, runtime_checkable

import torch
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException
from torch import nn

from growlab.config import ConfigError, ModelConfig
from growlab.growth.blocks import Block, BlockSpec, RunChild

Model = Mapping[str, Any]

# The rank of one sample's canonical shape: vectors (D,), 1-D signals (C, L), images (C, H, W).
VECTORS, SIGNALS, IMAGES = 1, 2, 3
# Token ids (T,): a sequence of integers, not features; only a family that embeds them takes it.
TOKENS = 0


@runtime_checkable
class StackedBlock(Protocol):
    """A block that says how it runs on a stack of replicas: through its children, each run by
    `child(name, h)` on (R, B, ...) activations (growlab.engine.stacking.forward). A block
    without it runs through torch.func.vmap, which stacks any module but costs more."""

    def forward_stacked(self, child: RunChild, h: torch.Tensor) -> torch.Tensor: ...


class ModelFamily:
    """Base of every family: override what differs. The defaults are an MLP's: a linear
    block of growlab's (op -> norm -> activation -> dropout), a linear head."""

    name: ClassVar[str]
    # The data it takes, as the refusal words it ("model=cnn needs image data").
    data: ClassVar[str] = "feature (vector, 1-D signal or image)"
    # The typed schema of its model config (its YAML may leave out a key at its default).
    schema: ClassVar[type] = ModelConfig

    def accepts(self, rank: int) -> bool:
        """Whether it takes data whose samples have this canonical rank (VECTORS, ...; any
        features, not token ids, by default)."""
        return rank in (VECTORS, SIGNALS, IMAGES)

    def check(self, model: Model) -> None:
        """Refuse, before the run starts, a model config no schema can rule out."""

    def arch_model(self, model: Model, input_shape: tuple[int, ...]) -> dict[str, Any]:
        """The model config as the architecture (and so each checkpoint) stores it."""
        return dict(model)

    def bind_outputs(self, model: Model, outputs: int) -> dict[str, Any]:
        """The model config given the network's output size (a language model's vocabulary,
        which its stem embeds), as the architecture stores it."""
        return dict(model)

    def input_width(self, model: Model, input_shape: tuple[int, ...]) -> int:
        """The width the first hidden block reads: the stem's output features or channels."""
        return int(torch.Size(input_shape).numel())

    def block_spec(self, model: Model, d_in: int, d_out: int) -> BlockSpec:
        """The spec of a hidden block from d_in to d_out units; `build_block` rebuilds it."""
        return {"type": "block", "op": "linear", "in": d_in, "out": d_out}

    def build_block(self, spec: BlockSpec, model: Model) -> nn.Module:
        return Block(spec, dict(model))

    def standard_block(self, model: Model, residual: bool = False) -> nn.Module:
        """A fresh hidden block like the network's own, at its width (growth operators)."""
        spec = self.block_spec(model, model["width"], model["width"])
        if residual:
            spec["residual"] = True
        return self.build_block(spec, model)

    def build_stem(self, model: Model, input_shape: tuple[int, ...], load: bool) -> nn.Module:
        """Input -> what the first block reads. `load`: read local weights (a fresh run)."""
        return nn.Flatten()

    def build_head(self, model: Model, width: int, outputs: int) -> nn.Module:
        return nn.Linear(width, outputs)

    def stem_trains(self, model: Model) -> bool:
        """Whether the stem may train when a strategy trains everything."""
        return True

    def unstackable(self, model: Model) -> str | None:
        """Why runs of this model cannot train as one stack of seeds (None: they can)."""
        return None

    def complete(self, model: Model) -> dict[str, Any]:
        """The model config checked against `schema`, keys left out at their defaults."""
        values = {k: v for k, v in model.items() if k != "_target_"}
        try:
            merged = OmegaConf.merge(OmegaConf.structured(self.schema), values)
        except OmegaConfBaseException as exc:
            reason = str(exc).strip().splitlines()[0]
            key = f" model.{exc.full_key}:" if exc.full_key else ""
            raise ConfigError(f"model={model.get('name')}:{key} {reason}") from None
        out = OmegaConf.to_container(merged, resolve=True, enum_to_str=True)
        assert isinstance(out, dict)
        target = {"_target_": model["_target_"]} if "_target_" in model else {}
        return {**target, **{str(k): v for k, v in out.items()}}


_REGISTRY: dict[str, type[ModelFamily]] = {}
F = TypeVar("F", bound=type[ModelFamily])


def register_family(cls: F) -> F:
    """Class decorator: file the family under its `name` (a second class of that name is an
    error; re-importing the same class is not)."""
    name = cls.name
    known = _REGISTRY.get(name)
    if known is not None and _dotted(known) != _dotted(cls):
        raise ValueError(
            f"model family {name} is registered twice: {_dotted(known)}, {_dotted(cls)}"
        )
    _REGISTRY[name] = cls
    return cls


def registered() -> dict[str, type[ModelFamily]]:
    """The registered families by name (a copy)."""
    return dict(_REGISTRY)


def _dotted(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"
