"""Depth growth by copying trained blocks (`strategy=gstack`, `strategy=interpolate-depth`):
each growth multiplies the depth by `strategy.stack_factor`, from train.start_depth to depth.

The copies are recorded as the family's own blocks (their spec the network's block spec), so a
checkpoint rebuilds them as fresh blocks and loads the saved weights. Everything trains after a
growth (a copy is a trained block, and the one it copies trains too).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from growlab.config import ConfigError
from growlab.growth.lm_operators import CopyOperator
from growlab.growth.nets import GrowableNet
from growlab.growth.operators import width_spec
from growlab.growth.strategies import Epochs, Growth, GrowthStrategy, StagePlan, stage_epochs
from growlab.growth.widening import GrowthData
from growlab.strategy_config import TrainableSet


def growths(start: int, depth: int, factor: int) -> int | None:
    """How many multiplications by `factor` take start to depth (None: none does)."""
    if factor < 2 or start < 1:
        return None
    n, d = 0, start
    while d < depth:
        d, n = d * factor, n + 1
    return n if d == depth else None


@dataclass
class DepthCopyStrategy(GrowthStrategy):
    operator: CopyOperator | None = None  # type: ignore[assignment]
    trainable: TrainableSet = TrainableSet.all
    steerable: ClassVar[str | None] = None  # every block is copied: no one position

    @property
    def factor(self) -> int:
        assert self.operator is not None
        return self.operator.factor

    def plan(self, depth: int, start_depth: int, epochs_per_stage: Epochs) -> list[StagePlan]:
        n = growths(start_depth, depth, self.factor) or 0
        epochs = stage_epochs(epochs_per_stage, n + 1, self.name)
        plan = [StagePlan("train" if k == 0 else "grow", e) for k, e in enumerate(epochs)]
        if self.finetune_epochs > 0:
            plan.append(StagePlan("finetune", self.finetune_epochs))
        return plan

    def check(self, cfg: Any) -> None:
        super().check(cfg)
        prefix = f"strategy={self.name}: "
        if self.trainable is not TrainableSet.all:
            raise ConfigError(
                f"{prefix}strategy.trainable={self.trainable.value} is not available (the copies "
                "and the blocks they copy are all trained blocks); valid: all"
            )
        if self.position is not None:
            raise ConfigError(
                f"{prefix}strategy.position={self.position} means nothing when every block is "
                "copied; valid: null"
            )
        start, depth, f = cfg.train.start_depth, cfg.depth, self.factor
        if growths(start, depth, f) is None:
            valid = ", ".join(str(start * f**k) for k in range(1, 4))
            raise ConfigError(
                f"{prefix}depth={depth} is not train.start_depth={start} times a power of "
                f"strategy.stack_factor={f}; valid: depth {valid}, ..."
            )

    def grow(
        self, net: GrowableNet, data: GrowthData | None = None, at: int | None = None
    ) -> Growth:
        """Every block copied (`at` must be None: there is no one place)."""
        assert self.operator is not None and at is None
        spec = width_spec(net.arch["model"])
        placed = self.operator.copies(net)
        for index, block in placed:
            net.insert(index, dict(spec), block)
        return Growth(min(i for i, _ in placed))

    def set_trainable(self, net: GrowableNet, phase: str, new_index: int | None) -> None:
        net.set_trainable(set(range(net.depth)), head=True, stem=True)
