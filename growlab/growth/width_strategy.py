"""Width growth: at a fixed depth, widen blocks from model.width to final_width, widen_by units
(neurons, or conv channels) per growth stage, with a width operator deciding the new units.

With no operator the network starts at final_width and trains for as many epochs as the
widening schedule (`from-scratch-wide`), the baseline a width-growth run is compared with.
Everything trains after a widening: the old units' parameters are part of every widened tensor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from growlab.config import ConfigError
from growlab.growth.nets import Arch, GrowableNet
from growlab.growth.strategies import Epochs, Growth, GrowthStrategy, StagePlan, stage_epochs
from growlab.growth.widening import GrowthData, Moved, widen_block
from growlab.growth.width_operators import Net2Wider, WidthOperator
from growlab.strategy_config import TrainableSet


@dataclass
class WidthGrowthStrategy(GrowthStrategy):
    operator: WidthOperator | None = None  # type: ignore[assignment]
    trainable: TrainableSet = TrainableSet.all
    # Width the growth starts from (conf/strategy/*-widen.yaml: ${model.width}).
    from_width: int = 64
    # Final width of every widened block; null: twice from_width.
    final_width: int | None = None
    # Units added to each widened block per growth stage; null: from_width.
    widen_by: int | None = None
    # Indices of the blocks to widen (0 = the first hidden block); null: all of them.
    layers: list[int] | None = None
    # A growth steered to one block (growlab.growth.steering) widens that block alone.
    steerable: ClassVar[str | None] = "widen"

    @property
    def target_width(self) -> int:
        return 2 * self.from_width if self.final_width is None else self.final_width

    @property
    def step(self) -> int:
        return self.from_width if self.widen_by is None else self.widen_by

    def initial_depth(self, depth: int, start_depth: int) -> int:
        return depth

    def plan(self, depth: int, start_depth: int, epochs_per_stage: Epochs) -> list[StagePlan]:
        growths = max(self.target_width - self.from_width, 0) // self.step
        later = "grow" if self.grows else "train"
        epochs = stage_epochs(epochs_per_stage, growths + 1, self.name)
        plan = [StagePlan("train" if k == 0 else later, n) for k, n in enumerate(epochs)]
        if self.finetune_epochs > 0:
            plan.append(StagePlan("finetune", self.finetune_epochs))
        return plan

    def widened(self, depth: int) -> list[int]:
        return list(range(depth)) if self.layers is None else sorted(self.layers)

    def check(self, cfg: Any) -> None:
        model = self.check_parts(cfg)
        prefix = f"strategy={self.name}: "
        if self.operator is None and model["name"] not in WidthOperator.models:
            valid = "|".join(WidthOperator.models or ())
            raise ConfigError(
                f"{prefix}width growth needs model={valid}, got model={model['name']}"
            )
        if self.trainable is not TrainableSet.all:
            raise ConfigError(
                f"strategy.trainable={self.trainable.value} is not available for width growth "
                "(every widened tensor holds old and new units); valid: all"
            )
        if self.position is not None:
            raise ConfigError(
                f"strategy.position={self.position} means nothing for width growth; valid: null"
            )
        if self.from_width != model["width"]:
            raise ConfigError(
                f"strategy.from_width={self.from_width} differs from model.width={model['width']}; "
                "valid: ${model.width} (growth starts from the model's width)"
            )
        self._check_widths(cfg.depth)
        if model.get("norm") == "layer" and self.operator is not None:
            self._check_layer_norm(model["width"])

    def _check_layer_norm(self, width: int) -> None:
        """LayerNorm normalises over every unit of a layer, new ones included: the function is
        kept only if the old units' statistics are, i.e. when net2wider copies every unit
        equally often (the width multiplied in one step). Zero-fan-out units with their own
        fan-in (GradMax, random) change the statistics whatever their fan-out."""
        name = f"strategy={self.name}"
        if not isinstance(self.operator, Net2Wider):
            raise ConfigError(
                f"{name} cannot keep the function with model.norm=layer (LayerNorm normalises "
                "over the new units too); valid: model.norm=none|batch, or strategy=net2wider "
                "multiplying the width in one step"
            )
        final = self.target_width
        if final % width != 0 or self.step != final - width:
            raise ConfigError(
                f"{name} with model.norm=layer keeps the function only when every unit is "
                f"copied equally often: strategy.final_width={final} must be a multiple of "
                f"model.width={width} reached in one step (strategy.widen_by={final - width}); "
                f"valid: final_width {2 * width}, {3 * width}, ... with widen_by = final_width - "
                f"{width}"
            )

    def _check_widths(self, depth: int) -> None:
        start, final, step = self.from_width, self.target_width, self.step
        if final < start or (final - start) % step != 0:
            raise ConfigError(
                f"strategy.final_width={final} must be model.width={start} plus whole "
                f"strategy.widen_by={step} steps; valid: {start}, {start + step}, "
                f"{start + 2 * step}, ..."
            )
        bad = [i for i in self.layers or [] if not 0 <= i < depth]
        if bad or (self.layers is not None and len(set(self.layers)) != len(self.layers)):
            raise ConfigError(
                f"strategy.layers={self.layers} must list distinct blocks of the depth={depth} "
                f"network; valid: indices 0..{depth - 1}, or null (all)"
            )

    def starting_arch(self, arch: Arch) -> Arch:
        """From scratch: the widened blocks are final_width wide from the start."""
        if self.grows:
            return arch
        blocks = arch["blocks"]
        for i in self.widened(len(blocks)):
            blocks[i]["out"] = self.target_width
            if i + 1 < len(blocks):
                blocks[i + 1]["in"] = self.target_width
        return arch

    def grow(
        self, net: GrowableNet, data: GrowthData | None = None, at: int | None = None
    ) -> Growth:
        """Add widen_by units to block `at` alone, or (None) to every widened block, first
        block first (a block's new units see the new units of the block before it)."""
        assert self.operator is not None
        if at is not None and not 0 <= at < net.depth:
            raise ConfigError(
                f"the growth position={at} is no block of the network; valid: 0..{net.depth - 1}"
            )
        moved: Moved = {}
        origin: Moved = {}  # current parameter -> the one it replaced before this growth
        for index in self.widened(net.depth) if at is None else [at]:
            units = self.operator.new_units(net, index, self.step, data)
            # Block index+1's op was already widened once, as block index's next layer.
            for old, new in widen_block(net, index, units).items():
                first = origin.pop(old, old)
                moved[first] = new
                origin[new] = first
        return Growth(None, moved, at=at)

    def set_trainable(self, net: GrowableNet, phase: str, new_index: int | None) -> None:
        net.set_trainable(set(range(net.depth)), head=True, stem=True)
