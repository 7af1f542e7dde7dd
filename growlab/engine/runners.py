"""What trains one epoch of the open stage, for the members of a stage loop
(growlab.engine.stage_loop): `SoloRunner` for one network, `StackRunner`
(growlab.engine.stacking.runner) for a stack of replicas trained as one. Both take the members
still training and give each one's training and validation results of the epoch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import torch

from growlab.engine.replica_axis import Solo
from growlab.engine.training import EpochResult, train_epoch

if TYPE_CHECKING:
    from growlab.engine.loop import Run


@dataclass
class StageInputs:
    inputs: torch.Tensor  # what the first trainable block gets (x itself when start is None)
    start: int | None  # index of the first block `inputs` go into
    targets: torch.Tensor
    flops_epoch: float  # training FLOPs of one epoch


class Member(Protocol):
    """A run in a stage loop, and how a step of it alone is taken (its RNG, logs and clock)."""

    run: Run
    index: int
    summary: dict[str, Any] | None

    def call(self, method: Any, *args: Any) -> Any: ...


class EpochRunner(Protocol):
    inputs: list[StageInputs]  # each member's, in the order of the members

    def train_epoch(self, members: list[Member]) -> list[tuple[EpochResult, EpochResult]]:
        """Each member's (training, validation) results of one epoch."""
        ...

    def keep(self, rows: list[int]) -> None:
        """Only the members at these positions go on."""
        ...


class SoloRunner:
    """One network trained on its own."""

    def __init__(self, inputs: list[StageInputs]) -> None:
        self.inputs = inputs

    def train_epoch(self, members: list[Member]) -> list[tuple[EpochResult, EpochResult]]:
        (member,), (stage,) = members, self.inputs
        return [member.call(self._epoch, member.run, stage)]

    @staticmethod
    def _epoch(run: Run, stage: StageInputs) -> tuple[EpochResult, EpochResult]:
        (result,) = train_epoch(
            Solo(run.net, run.objective.loss),
            stage.inputs,
            stage.targets,
            run.optimizer,
            run.cfg.train.batch_size,
            [run.generator],
            stage.start,
            run.cfg.train.cuda_graphs,
            run.cfg.train.steps_per_epoch,
        )
        return result, run.evaluate(run.net, "val", run.objective)

    def keep(self, rows: list[int]) -> None:
        self.inputs = [self.inputs[i] for i in rows]


def same(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a is b or (a.shape == b.shape and bool(torch.equal(a, b)))
