"""Growth triggers that measure a first-order signal on the network after each epoch.

Both compare what a growth would gain against what the present parameters still gain, on the
first `batches` training batches, at most `max_share` of the training set (in order: no RNG
is drawn, so a resume measures the same), with the network in eval mode (BatchNorm
statistics untouched, no parameter's `.grad` set):

- `GradientGain` (`trigger=gradient`, GradMax / TINY style): for each block that can widen,
  M = sum g x^T (g: the loss gradient at the next layer's output, x: the block's input, as
  gradmax-widen computes it); sigma_1(M)^2 is the first-order loss decrease per unit step of
  the best new unit with unit-norm weights (linearised). The signal is the best block's
  sigma_1(M)^2 over ||grad_theta L||^2 of the trainable parameters: the gain of growing
  relative to the present rate of loss decrease under gradient flow. The best block is where
  to widen (`where`, a block index); with `steer=true` the next growth widens that block alone.
- `Merit` (`trigger=merit`, SensLI style): a zero-cost probe of a candidate layer inserted
  after each block and initialised to the identity (W = I before a ReLU of non-negative
  features): its weight gradient at insertion is sum g h^T (h: the block's output, g: the loss
  gradient there, masked where the ReLU is off). The signal is the best position's ||.||_F^2
  over ||grad_theta L||^2; the position is where to insert (`where`: after block `where`); with
  `steer=true` the next growth inserts there (at block-list index `where + 1`).

A stage is done once the signal reaches `threshold` (after `min_epochs`); a stage that trains
its maximum without reaching `stop_below` stops growth ("a gain below threshold"). One
measurement costs a forward and a backward pass over the batches: 3 x forward FLOPs per
sample, counted in the run's training FLOPs (`signal_flops` per stage).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from growlab.config import ConfigError
from growlab.growth.nets import GrowableNet
from growlab.growth.trigger_rules import CappedStages
from growlab.growth.triggers import EpochReport
from growlab.growth.widening import GrowthData, Layer, layer
from growlab.growth.width_operators import batch_matrix

# A forward and a backward pass per sample, in forward passes.
PASSES = 3.0


@dataclass
class SignalTrigger(CappedStages):
    measures: ClassVar[bool] = True
    threshold: float = 0.5
    stop_below: float = 0.0
    min_epochs: int = 1
    batches: int = 1
    every: int = 1  # measure every this many epochs of a stage (and at its last)
    # A measurement looks at most this share of the training set (at least one sample), so the
    # signal costs at most about this share of the run's training FLOPs, however small the set.
    max_share: float = 0.04
    signal: float = field(default=math.nan, init=False)  # the last measurement
    best: float = field(default=math.nan, init=False)  # the stage's highest
    where: int | None = field(default=None, init=False)  # the best candidate's block index
    epoch: int = field(default=0, init=False)
    most: int = field(default=0, init=False)  # the open stage's maximum epochs

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("min_epochs", "batches", "every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be >= 1")
        if not 0 < self.max_share <= 1:
            raise ValueError(f"max_share={self.max_share} must be in (0, 1]")
        if not self.threshold > 0 or not self.stop_below >= 0:
            raise ValueError(
                f"threshold={self.threshold} must be > 0 and stop_below={self.stop_below} >= 0"
            )

    def open_stage(self, stage: int, planned: int) -> None:
        self.signal = self.best = math.nan
        self.where, self.epoch, self.most = None, 0, self.max_epochs(planned)

    def measure(self, net: GrowableNet, data: GrowthData, forward_flops: float) -> float:
        self.epoch += 1
        due = self.epoch % self.every == 0 or self.epoch >= self.most
        if self.epoch < self.min_epochs or not due:
            return 0.0
        modes = {m: m.training for m in net.modules()}
        net.eval()
        try:
            with torch.enable_grad():
                scores, norm, samples = self.scores(net, self.sample(data))
        finally:
            for module, training in modes.items():
                module.training = training
        where, score = max(scores, key=lambda c: c[1])
        self.signal = score / norm if norm > 0 else math.nan
        self.where = where
        if not self.best >= self.signal:  # NaN best: the first measurement
            self.best = self.signal
        return PASSES * forward_flops * samples

    def sample(self, data: GrowthData) -> GrowthData:
        """The first training examples the measurement may look at (`max_share` of them)."""
        most = max(1, math.floor(self.max_share * len(data.x)))
        if most >= self.batches * data.batch_size:
            return data
        return dataclasses.replace(data, x=data.x[:most], targets=data.targets[:most])

    def scores(
        self, net: GrowableNet, data: GrowthData
    ) -> tuple[list[tuple[int, float]], float, int]:
        """Each candidate's (block index, first-order gain), ||grad_theta L||^2 of the mean
        gradient over the batches, and the samples used."""
        raise NotImplementedError

    def decide(self, report: EpochReport) -> bool:
        return report.epoch >= self.min_epochs and self.signal >= self.threshold

    def stop_growing(self) -> str | None:
        if self.best < self.stop_below:  # NaN (nothing measured): no decision
            return f"signal {self.best:.3g} stayed below stop_below={self.stop_below} in the stage"
        return super().stop_growing()


def _batches(data: GrowthData, n: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    batches = data.batches(n)
    if not batches:
        raise ConfigError("the growth trigger's signal needs training data; got none")
    return batches


def _add(totals: list[torch.Tensor | None], parts: Any) -> None:
    for i, part in enumerate(parts):
        if part is not None:
            totals[i] = part.detach() if totals[i] is None else totals[i] + part.detach()


def _squared_norm(sums: list[torch.Tensor | None], n: int) -> float:
    return float(sum(float((s.double() / n).pow(2).sum()) for s in sums if s is not None))


@dataclass
class GradientGain(SignalTrigger):
    # It widens plain op blocks in thought (growlab.growth.widening); a transformer has none.
    models: ClassVar[tuple[str, ...] | None] = ("mlp", "cnn")
    steers: ClassVar[str | None] = "widen"

    def grow_at(self) -> int | None:
        """The block to widen."""
        return self.where

    def scores(
        self, net: GrowableNet, data: GrowthData
    ) -> tuple[list[tuple[int, float]], float, int]:
        layers: list[Layer] = []
        for index in range(net.depth):
            try:
                layers.append(layer(net, index))
            except ConfigError:  # a block that cannot widen is no candidate
                continue
        if not layers:
            raise ConfigError("trigger=gradient needs a network with plain blocks to widen")
        params = [p for p in net.parameters() if p.requires_grad]
        captured: dict[int, torch.Tensor] = {}
        hooks = []
        for i, where in enumerate(layers):
            hooks.append(where.op.register_forward_pre_hook(_keep(captured, 2 * i)))
            hooks.append(where.next.register_forward_hook(_keep_out(captured, 2 * i + 1)))
        totals: list[torch.Tensor | None] = [None] * len(layers)
        sums: list[torch.Tensor | None] = [None] * len(params)
        batches = _batches(data, self.batches)
        try:
            for x, y in batches:
                loss = data.loss(net(x), y)
                outs = [captured[2 * i + 1] for i in range(len(layers))]
                grads = torch.autograd.grad(loss, [*outs, *params], allow_unused=True)
                ms = [
                    batch_matrix(captured[2 * i].detach(), grads[i], w)
                    for i, w in enumerate(layers)
                ]
                _add(totals, ms)
                _add(sums, grads[len(layers) :])
        finally:
            for hook in hooks:
                hook.remove()
        n = len(batches)
        gains = [
            (w.index, float(torch.linalg.matrix_norm(t.double() / n, ord=2)) ** 2)  # type: ignore[union-attr]
            for w, t in zip(layers, totals, strict=True)
        ]
        return gains, _squared_norm(sums, n), sum(len(x) for x, _ in batches)


@dataclass
class Merit(SignalTrigger):
    steers: ClassVar[str | None] = "insert"

    def grow_at(self) -> int | None:
        """The block-list index of the new block: right after the best candidate's block."""
        return None if self.where is None else self.where + 1

    def scores(
        self, net: GrowableNet, data: GrowthData
    ) -> tuple[list[tuple[int, float]], float, int]:
        params = [p for p in net.parameters() if p.requires_grad]
        captured: dict[int, torch.Tensor] = {}
        hooks = [b.register_forward_hook(_keep_out(captured, i)) for i, b in enumerate(net.blocks)]
        totals: list[torch.Tensor | None] = [None] * net.depth
        sums: list[torch.Tensor | None] = [None] * len(params)
        batches = _batches(data, self.batches)
        try:
            for x, y in batches:
                loss = data.loss(net(x), y)
                outs = [captured[i] for i in range(net.depth)]
                grads = torch.autograd.grad(loss, [*outs, *params], allow_unused=True)
                ms = []
                for i in range(net.depth):
                    h, g = _channels_last(outs[i].detach()), _channels_last(grads[i])
                    ms.append((g * (h > 0)).T @ h)  # the identity layer's weight gradient
                _add(totals, ms)
                _add(sums, grads[net.depth :])
        finally:
            for hook in hooks:
                hook.remove()
        n = len(batches)
        merits = [(i, float((t.double() / n).pow(2).sum())) for i, t in enumerate(totals)]  # type: ignore[union-attr]
        return merits, _squared_norm(sums, n), sum(len(x) for x, _ in batches)


def _channels_last(t: torch.Tensor) -> torch.Tensor:
    """(samples x positions, channels) of a block's output (B, C, ...) or (B, C)."""
    return t.movedim(1, -1).reshape(-1, t.shape[1]) if t.dim() > 2 else t


def _keep(captured: dict[int, torch.Tensor], key: int) -> Any:
    def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        captured[key] = inputs[0]

    return hook


def _keep_out(captured: dict[int, torch.Tensor], key: int) -> Any:
    def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> torch.Tensor:
        # A frozen prefix's output has no graph: a leaf there still gets its gradient.
        if not output.requires_grad:
            output = output.detach().requires_grad_(True)
        captured[key] = output
        return output

    return hook
