"""A growth trigger of a user's own: grow when the validation loss has stopped improving.

Used as `trigger=my-plateau` with this folder's `conf` on the config path (examples/conf/trigger/
my-plateau.yaml). growlab asks `stage_done` after every epoch of a stage and checkpoints
`state_dict`, so a resumed run makes the same decisions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from growlab.growth.triggers import EpochReport, GrowthTrigger


@dataclass
class Plateau(GrowthTrigger):
    """Done when the validation loss has not improved by `min_delta` for `patience` epochs, or
    after `max_epochs` (null: the stage's planned epochs)."""

    patience: int = 2
    min_delta: float = 0.0
    max_epochs_per_stage: int | None = None
    # Its memory within a stage, not knobs.
    best: float = field(default=math.inf, init=False)  # the stage's lowest validation loss
    stale: int = field(default=0, init=False)  # epochs since it last improved by min_delta

    def __post_init__(self) -> None:
        if self.patience < 1:
            raise ValueError(f"patience={self.patience} must be >= 1")
        if self.max_epochs_per_stage is not None and self.max_epochs_per_stage < 1:
            raise ValueError(f"max_epochs_per_stage={self.max_epochs_per_stage} must be >= 1")

    def begin_stage(self, stage: int, planned: int) -> None:
        self.best, self.stale = math.inf, 0

    def max_epochs(self, planned: int) -> int:
        return planned if self.max_epochs_per_stage is None else self.max_epochs_per_stage

    def stage_done(self, report: EpochReport) -> bool:
        if report.val_loss < self.best - self.min_delta:  # False for NaN: a NaN is no progress
            self.best, self.stale = report.val_loss, 0
        else:
            self.stale += 1
        return self.stale >= self.patience

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "stale": self.stale}
