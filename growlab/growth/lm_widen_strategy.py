"""`strategy=widen-lm`: a GPT grown from model.width to strategy.final_width (a multiple) in
one growth by duplication (growlab.growth.lm_widen); with train.carry_optimizer_state=true the
Adam state and per-parameter learning rates follow (growlab.growth.lm_widen_optim).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from growlab.config import ConfigError
from growlab.growth.lm_widen import DuplicateWidth
from growlab.growth.lm_widen_optim import moment_carry, param_scales
from growlab.growth.nets import GrowableNet
from growlab.growth.operators import Model
from growlab.growth.strategies import Epochs, Growth, GrowthStrategy, StagePlan, stage_epochs
from growlab.growth.widening import GrowthData
from growlab.strategy_config import TrainableSet


@dataclass
class LMWidthStrategy(GrowthStrategy):
    """Grow a GPT from model.width to strategy.final_width (a multiple) in one growth."""

    operator: DuplicateWidth | None = None  # type: ignore[assignment]
    trainable: TrainableSet = TrainableSet.all
    from_width: int = 64
    final_width: int | None = None  # null: twice from_width
    steerable: ClassVar[str | None] = None  # every tensor widens at once: no one block

    @property
    def target_width(self) -> int:
        return 2 * self.from_width if self.final_width is None else self.final_width

    def initial_depth(self, depth: int, start_depth: int) -> int:
        return depth

    def plan(self, depth: int, start_depth: int, epochs_per_stage: Epochs) -> list[StagePlan]:
        epochs = stage_epochs(epochs_per_stage, 2, self.name)
        plan = [StagePlan("train", epochs[0]), StagePlan("grow", epochs[1])]
        if self.finetune_epochs > 0:
            plan.append(StagePlan("finetune", self.finetune_epochs))
        return plan

    def check(self, cfg: Any) -> None:
        model = self.check_parts(cfg)
        prefix = f"strategy={self.name}: "
        self._check_width(model, prefix)
        if cfg.train.carry_optimizer_state:
            self._check_carry(cfg, prefix)
        if self.trainable is not TrainableSet.all or self.position is not None:
            raise ConfigError(
                f"{prefix}strategy.trainable={self.trainable.value} "
                f"strategy.position={self.position}: every widened tensor holds old and new "
                "units; valid: trainable=all, position=null"
            )

    def _check_carry(self, cfg: Any, prefix: str) -> None:
        target = str(cfg.optimizer._target_)
        if target not in ("torch.optim.Adam", "torch.optim.AdamW"):
            raise ConfigError(
                f"{prefix}train.carry_optimizer_state=true transforms Adam's state, not "
                f"{target}'s; valid: optimizer=adam|adamw, or carry_optimizer_state=false"
            )
        if self.operator is not None and self.operator.keep_heads:
            raise ConfigError(
                f"{prefix}strategy.keep_heads=true scales the queries alone, so no per-tensor "
                "learning rate keeps Adam's step; valid: keep_heads=false with "
                "train.carry_optimizer_state=true"
            )

    def _check_width(self, model: Model, prefix: str) -> None:
        width, final = int(model["n_embd"]), self.target_width
        if self.from_width != width:
            raise ConfigError(
                f"{prefix}strategy.from_width={self.from_width} differs from model.n_embd="
                f"{width}; valid: ${{model.width}}"
            )
        if final <= width or final % width:
            raise ConfigError(
                f"{prefix}strategy.final_width={final} is not a multiple of model.n_embd="
                f"{width} (duplication copies every unit equally often); valid: "
                f"{2 * width}, {3 * width}, ..."
            )

    def grow(
        self, net: GrowableNet, data: GrowthData | None = None, at: int | None = None
    ) -> Growth:
        """Every tensor widened to final_width (`at` must be None: there is no one block)."""
        assert self.operator is not None and at is None
        old = dict(net.named_parameters())
        moved, widening = self.operator.widen(net, self.target_width)
        new = dict(net.named_parameters())
        if self.operator.keep_heads:  # the queries' scale differs from the keys': no carry
            return Growth(None, moved)
        net.arch["param_scales"] = param_scales(widening, old)
        return Growth(None, moved, carry=moment_carry(widening, old, new))

    def set_trainable(self, net: GrowableNet, phase: str, new_index: int | None) -> None:
        net.set_trainable(set(range(net.depth)), head=True, stem=True)
