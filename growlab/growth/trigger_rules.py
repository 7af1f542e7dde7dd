"""Growth triggers that decide from what an epoch measured: the losses and the FLOPs so far.

- `Plateau` (`trigger=plateau`): grow when the validation loss has not improved by
  `min_delta` for `patience` epochs.
- `Budget` (`trigger=budget`): grow at given fractions of a total training-FLOPs budget; stop
  growing once it is spent.
- `Gap` (`trigger=gap`, FRAGrow-style, our reading): the stage runs while training still
  gains (the training loss falls by at least `min_improvement` of itself per epoch); growth
  stops when the train/validation gap says the network overfits (more capacity would not help).

Each stage trains at most `max_epochs_per_stage` epochs (null: its planned epochs,
`train.epochs_per_stage`, a number or a per-stage list). Every decision reads the trigger's
own memory (`state_dict`), which the `last` checkpoint keeps, so a resumed run decides as an
uninterrupted one. A NaN loss is never progress.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from growlab.growth.triggers import EpochReport, GrowthTrigger


def _check_positive(name: str, value: int | None) -> None:
    if value is not None and value < 1:
        raise ValueError(f"{name}={value} must be >= 1 (or null)")


@dataclass
class CappedStages(GrowthTrigger):
    """A trigger whose stages may end early, at most `max_epochs_per_stage` epochs each, and
    that (with `stop_without_gain`) stops growth after a stage that did not lower the lowest
    validation loss of the stages before it by `min_gain` of it: the last growth did not help,
    so the next would not either. A stage's loss above the chance-level validation loss
    (`EpochReport.chance_loss`, when the objective knows it) counts as chance. Subclasses
    decide in `decide` and open a stage in `open_stage`; their memory is their fields that
    are not knobs (`init=False`)."""

    max_epochs_per_stage: int | None = None
    stop_without_gain: bool = True
    min_gain: float = 0.01
    stage_best: float = field(default=math.inf, init=False)  # this stage's lowest val loss
    before_best: float = field(default=math.inf, init=False)  # the stages' before it
    chance: float = field(default=math.inf, init=False)  # the chance-level validation loss

    def __post_init__(self) -> None:
        _check_positive("max_epochs_per_stage", self.max_epochs_per_stage)
        if not 0 <= self.min_gain < 1:
            raise ValueError(f"min_gain={self.min_gain} must be in [0, 1)")

    def max_epochs(self, planned: int) -> int:
        return planned if self.max_epochs_per_stage is None else self.max_epochs_per_stage

    def begin_stage(self, stage: int, planned: int) -> None:
        # A loss above chance level counts as chance: a stage that learnt nothing sets no bar
        # a later stage could clear by merely unlearning its miscalibration.
        self.before_best = min(self.before_best, self.stage_best, self.chance)
        self.stage_best = math.inf
        self.open_stage(stage, planned)

    def open_stage(self, stage: int, planned: int) -> None:
        """A stage opens: reset what the decision remembers within one."""

    def stage_done(self, report: EpochReport) -> bool:
        if report.val_loss < self.stage_best:  # False for NaN
            self.stage_best = report.val_loss
        if report.chance_loss < self.chance:  # False for NaN (unknown)
            self.chance = report.chance_loss
        return self.decide(report)

    def decide(self, report: EpochReport) -> bool:
        return super().stage_done(report)

    def stop_growing(self) -> str | None:
        gained = self.stage_best < self.before_best - self.min_gain * abs(self.before_best)
        if self.stop_without_gain and math.isfinite(self.before_best) and not gained:
            return (
                f"the stage did not lower the validation loss by min_gain={self.min_gain} of it "
                f"(best {self.stage_best:.4g}, before it {self.before_best:.4g})"
            )
        return None

    def state_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if not f.init}


@dataclass
class Plateau(CappedStages):
    """Done when the validation loss has not improved by `min_delta` for `patience` epochs."""

    patience: int = 2
    min_delta: float = 0.0
    best: float = field(default=math.inf, init=False)  # the stage's lowest validation loss
    stale: int = field(default=0, init=False)  # epochs since it last improved by min_delta

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.patience < 1:
            raise ValueError(f"patience={self.patience} must be >= 1")
        if not self.min_delta >= 0:
            raise ValueError(f"min_delta={self.min_delta} must be >= 0")

    def open_stage(self, stage: int, planned: int) -> None:
        self.best, self.stale = math.inf, 0

    def decide(self, report: EpochReport) -> bool:
        if report.val_loss < self.best - self.min_delta:  # False for NaN
            self.best, self.stale = report.val_loss, 0
        else:
            self.stale += 1
        return self.stale >= self.patience


@dataclass
class Budget(CappedStages):
    """Stage k ends once the run's training FLOPs reach `fractions[k]` x `total_flops` (stages
    past the list: the whole budget); growth stops once the budget is spent."""

    stop_without_gain: bool = False  # a schedule: it grows whatever the losses say
    total_flops: float = 0.0
    fractions: list[float] = field(default_factory=lambda: [0.25, 0.5, 0.75])
    stage: int = field(default=0, init=False)
    spent: float = field(default=0.0, init=False)  # the run's training FLOPs at the last epoch

    def __post_init__(self) -> None:
        super().__post_init__()
        if not (self.total_flops > 0 and math.isfinite(self.total_flops)):
            raise ValueError(f"total_flops={self.total_flops} must be a finite number > 0")
        points = list(self.fractions)
        if any(not 0 < f <= 1 for f in points) or points != sorted(set(points)):
            raise ValueError(f"fractions={points} must increase within (0, 1]")

    def open_stage(self, stage: int, planned: int) -> None:
        self.stage = stage

    def threshold(self) -> float:
        share = self.fractions[self.stage] if self.stage < len(self.fractions) else 1.0
        return share * self.total_flops

    def decide(self, report: EpochReport) -> bool:
        self.spent = report.cum_train_flops
        return self.spent >= self.threshold()

    def stop_growing(self) -> str | None:
        if self.spent >= self.total_flops:
            return f"the training-FLOPs budget {self.total_flops:.3g} is spent"
        return super().stop_growing()


@dataclass
class Gap(CappedStages):
    """Done once the training loss improves by less than `min_improvement` (a fraction of
    itself) in an epoch, after at least `min_epochs`; growth stops after a stage whose
    validation loss exceeds its training loss by more than `max_gap` of the validation loss."""

    min_epochs: int = 1
    min_improvement: float = 0.01
    max_gap: float = 0.5
    previous: float = field(default=math.nan, init=False)  # the last epoch's training loss
    gap: float = field(default=0.0, init=False)  # the last epoch's relative gap

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_positive("min_epochs", self.min_epochs)
        if not self.min_improvement >= 0 or not self.max_gap > 0:
            raise ValueError(
                f"min_improvement={self.min_improvement} must be >= 0 and "
                f"max_gap={self.max_gap} > 0"
            )

    def open_stage(self, stage: int, planned: int) -> None:
        self.previous, self.gap = math.nan, 0.0

    def decide(self, report: EpochReport) -> bool:
        train, val = report.train_loss, report.val_loss
        self.gap = (val - train) / abs(val) if val else 0.0
        gain = (self.previous - train) / abs(self.previous) if self.previous else math.nan
        self.previous = train
        # NaN (first epoch, or a NaN loss) is not "stopped gaining": the stage goes on.
        return report.epoch >= self.min_epochs and gain < self.min_improvement

    def stop_growing(self) -> str | None:
        if self.gap > self.max_gap:  # NaN: no decision
            return f"train/validation gap {self.gap:.3f} of the validation loss > {self.max_gap}"
        return super().stop_growing()
