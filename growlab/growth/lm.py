"""`objective=lm`: next-token cross-entropy for a language model (conf/objective/lm.yaml sets it
as the strategy's objective).

The network maps (B, T) ids to (B, T, V) logits and is trained on the mean cross-entropy of
every position's next token. After each stage it records, as a classifier's stage does,
`val_loss`/`test_loss` (nats per token) and `val_acc`/`test_acc` (next-token accuracy), and
adds `val_bpc`/`test_bpc` (bits per character: the loss / ln 2). Its runs are judged by their
test loss, lower is better: the summary's `primary_metric`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from growlab.growth.objectives import Objective, Trainer, own_metrics


@dataclass
class LanguageModelling(Objective):
    models: ClassVar[tuple[str, ...] | None] = ("gpt",)
    primary_metric: ClassVar[str | None] = "test_loss"

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(outputs.flatten(0, -2), targets.flatten())

    def replica_losses(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        each = F.cross_entropy(outputs.flatten(0, -2), targets.flatten(), reduction="none")
        return each.view(targets.shape[0], -1).mean(1)

    def stage_metrics(self, trainer: Trainer) -> dict[str, Any]:
        metrics = own_metrics(trainer, self)
        return {
            **metrics,
            "test_bpc": metrics["test_loss"] / math.log(2),
            "val_bpc": metrics["val_loss"] / math.log(2),
        }
