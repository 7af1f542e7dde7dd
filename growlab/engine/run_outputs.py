"""A run's outputs: its metrics rows (file and logger), its clocks, the summary, the resumable
`last` checkpoint and the final pickled model. `RunBase` (growlab.engine.run_base) sets up
every attribute declared here before the stage loop calls any of these."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from growlab.engine.run_directory import checkpoint as ckpt
from growlab.engine.run_directory.folder import fingerprint
from growlab.engine.run_directory.records import MetricsFile, write_summary
from growlab.engine.run_directory.state import Progress, operator_used, summary
from growlab.engine.training import EpochResult
from growlab.growth.nets import GrowableNet
from growlab.growth.objectives import Objective
from growlab.growth.strategies import GrowthStrategy, StagePlan
from growlab.tracking.loggers import SafeLogger


class RunOutputs:
    """What a run writes; its state is the run's (see RunBase.__init__ and start_or_resume)."""

    run_dir: Path
    logger: SafeLogger
    config: dict[str, Any]
    device: torch.device
    strategy: GrowthStrategy
    objective: Objective
    plan: list[StagePlan]
    metrics: MetricsFile
    generator: torch.Generator
    clock: Callable[[], float]
    stack_clock: Callable[[], float]
    started: float
    stack_started: float
    checkpoints: ckpt.BackgroundWriter
    status: str
    error: str | None
    stack_size: int
    net: GrowableNet
    tf32: bool
    optimizer: torch.optim.Optimizer
    progress: Progress
    bar: Any

    def record_epoch(self, result: EpochResult, val: EpochResult) -> None:
        p = self.progress
        self.record(
            {
                "event": "epoch",
                "stage": p.stage,
                "depth": self.net.depth,
                "epoch": p.epoch,
                "train_loss": result.loss,
                "train_acc": result.acc,
                "val_loss": val.loss,
                "val_acc": val.acc,
                "lr": self.optimizer.param_groups[0]["lr"],
                "cum_train_flops": p.cum_train_flops,
            }
        )
        self.bar.update(p.stage, len(self.plan), self.net.depth, p.epoch, result.loss)

    def record(self, row: dict[str, Any]) -> None:
        self.metrics.append(row)
        self.logger.log(row)

    def read_clocks(self) -> tuple[float, float]:
        """(own, stack) clocks read at one moment: the same for a solo run."""
        own = self.clock()
        return own, own if self.stack_clock is self.clock else self.stack_clock()

    def elapsed(self) -> tuple[float, float]:
        """(wall_s, stack_wall_s) so far."""
        own, stack = self.read_clocks()
        p = self.progress
        return p.wall_s + own - self.started, p.stack_wall_s + stack - self.stack_started

    def write_summary(self, error: str | None = None) -> dict[str, Any]:
        wall_s, stack_wall_s = self.elapsed()
        result = summary(
            self.progress,
            self.config,
            fingerprint(self.config),
            status=self.status,
            wall_s=wall_s,
            device=str(self.device),
            cuda_visible_devices=os.environ.get("CUDA_VISIBLE_DEVICES"),
            tf32=self.tf32,
            # A replica's wall_s is its share of its stack's, stack_wall_s the stack's whole;
            # stack_size: the replicas that trained its last stage together (each stage record
            # has its own, so a survivor of a stack that lost replicas still shows it stacked).
            stack_wall_s=stack_wall_s,
            stack_size=self.stack_size,
            **operator_used(self.strategy.operator),
        )
        if self.objective.primary_metric is not None:
            result["primary_metric"] = self.objective.primary_metric
        if error or self.error:
            result["error"] = error or self.error
        write_summary(self.run_dir / "summary.json", result)
        return result

    def save_last(self) -> None:
        """`checkpoints/last.pt`, written in the background (see ckpt.BackgroundWriter)."""
        self.progress.wall_s, self.progress.stack_wall_s = self.elapsed()
        self.started, self.stack_started = self.read_clocks()
        net = self.net
        self.checkpoints.save(
            {
                "arch": net.arch,
                "model": net.state_dict(),
                "frozen": net.frozen,
                "head_frozen": net.head_frozen,
                "stem_frozen": net.stem_frozen,
                "optimizer": self.optimizer.state_dict(),
                "rng": ckpt.rng_state(self.generator),
                "progress": self.progress.checkpoint(),
                "metrics_rows": self.metrics.rows,
                "config": self.config,
            },
            self.run_dir / "checkpoints" / ckpt.LAST,
            # The result config is never changed after the start.
            fresh=("progress", "config"),
        )

    def save_final_model(self) -> None:
        """The pickled module, the second way seed 002 saves a model (see growlab.evaluate):
        the network, or the extra model the objective evaluates (its last stage's file)."""
        model: torch.nn.Module = self.net
        if self.objective.evaluated is not None:
            path = ckpt.stage_path(self.run_dir, self.progress.stages[-1]["stage"])
            model = ckpt.load_network(path.with_name(f"{path.stem}_{self.objective.evaluated}.pt"))
        torch.save(model, self.run_dir / "checkpoints" / "model_full.pt")
