"""Schemas of the `strategy` config group (registered by growlab.config): a growth strategy,
its operator and objective named by `_target_`, and the settings of the strategies whose YAMLs
pass more on."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from omegaconf import MISSING


class TrainableSet(str, Enum):
    all = "all"
    new_and_head = "new_and_head"
    new = "new"


@dataclass
class StrategyConfig:
    """A growlab.growth.strategies.GrowthStrategy: a nested operator and objective config each
    name their class with `_target_`, so a user's own operator is one `_target_` away."""

    _target_: str = "growlab.growth.strategies.GrowthStrategy"
    name: str = MISSING
    # {_target_: a GrowthOperator subclass, its fields...}; null: no growth (from scratch).
    operator: Any = None
    objective: Any = field(
        default_factory=lambda: {"_target_": "growlab.growth.objectives.Classification"}
    )
    trainable: TrainableSet = TrainableSet.new_and_head
    # Index in the block list where the new block goes; null means just before the head.
    position: int | None = None
    finetune_epochs: int = 0
    finetune_lr_factor: float = 0.1
    # Seed 001's all-ones conv gate (read by conf/strategy/conv-multiplicative.yaml's operator).
    literal_seed_init: bool = False


@dataclass
class LMDepthStrategyConfig(StrategyConfig):
    """Transformer depth growth (growlab.growth.lm_operators): the knobs their YAMLs pass on."""

    # msg-depth: optimizer steps over which the new block's mask ramps from 0 to 1.
    ramp_steps: int = 100
    # gstack / interpolate-depth: the depth is multiplied by it at each growth (>= 2).
    stack_factor: int = 2


@dataclass
class WidthStrategyConfig(StrategyConfig):
    """A growlab.growth.width_strategy.WidthGrowthStrategy: widen blocks at a fixed depth."""

    _target_: str = "growlab.growth.width_strategy.WidthGrowthStrategy"
    trainable: TrainableSet = TrainableSet.all
    # The width growth starts from; the YAML files set it to ${model.width}.
    from_width: int = MISSING
    # Final width of every widened block (null: twice model.width).
    final_width: int | None = None
    # Units (neurons or channels) added to each widened block per growth (null: model.width).
    widen_by: int | None = None
    # Blocks to widen, 0 = the first hidden block (null: all).
    layers: list[int] | None = None
    # Net2Wider's symmetry-breaking noise (x the std of the layer's weights; 0: exact copies).
    noise: float = 0.0
    # Training batches GradMax computes its gradient matrix on.
    gradmax_batches: int = 1


@dataclass
class LMWidthStrategyConfig(StrategyConfig):
    """growlab.growth.lm_widen_strategy.LMWidthStrategy: a GPT widened by duplication."""

    _target_: str = "growlab.growth.lm_widen_strategy.LMWidthStrategy"
    trainable: TrainableSet = TrainableSet.all
    from_width: int = MISSING
    # A multiple of model.n_embd (null: twice), reached in one growth.
    final_width: int | None = None
    # false: the heads multiply (head dimension kept); true: the head dimension multiplies.
    keep_heads: bool = False
