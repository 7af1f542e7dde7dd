"""What the stage loop stands on: setting a run up or resuming it and the services the objective
uses (splits, evaluation, fitting an extra model). The run's outputs (metrics rows, the summary,
the `last` checkpoint) are growlab.engine.run_outputs; the loop itself is growlab.engine.loop."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf

from growlab.data import DataSplits, load_data
from growlab.engine.accelerators.precision import set_tf32
from growlab.engine.feature_cache import FeatureCache, SplitFeatures, cached_inputs
from growlab.engine.optim import build_optimizer, carry_state, resolve_device
from growlab.engine.replica_axis import Solo
from growlab.engine.run_directory import checkpoint as ckpt
from growlab.engine.run_directory.folder import result_config
from growlab.engine.run_directory.records import MetricsFile
from growlab.engine.run_directory.state import Progress
from growlab.engine.run_outputs import RunOutputs
from growlab.engine.schedules import build_scheduler, restarts_each_stage
from growlab.engine.training import (
    DivergenceGuard,
    EpochResult,
    evaluate,
    flops_per_sample,
    train_epoch,
)
from growlab.growth.families import model_config
from growlab.growth.nets import GrowableNet, build_network, initial_arch
from growlab.growth.objectives import Objective
from growlab.growth.strategies import (
    GrowthStrategy,
    StateCarry,
    build_strategy,
    stage_plan,
    without_growth,
)
from growlab.growth.triggers import build_trigger
from growlab.growth.widening import GrowthData, Moved
from growlab.tracking.loggers import SafeLogger

log = logging.getLogger("growlab")

# Runs of one process (a sweep, a stack of replicas) share one copy of the data on the device.
_ON_DEVICE: dict[tuple[int, str], tuple[DataSplits, DataSplits]] = {}


def data_on_device(data: DataSplits, device: torch.device) -> DataSplits:
    key = (id(data), str(device))
    if key not in _ON_DEVICE:
        if len(_ON_DEVICE) >= 2:
            _ON_DEVICE.pop(next(iter(_ON_DEVICE)))
        _ON_DEVICE[key] = (data, data.to(device))  # holding `data` keeps its id unique
    return _ON_DEVICE[key][1]


class RunBase(RunOutputs):
    def __init__(
        self,
        cfg: Any,
        run_dir: Path,
        logger: SafeLogger,
        last: dict[str, Any] | None = None,
        strategy: GrowthStrategy | None = None,
    ) -> None:
        """`last`: the run directory's `last` checkpoint to resume from (None: a fresh run);
        `strategy`: the one the job's validation built (None: built here)."""
        self.cfg, self.run_dir, self.logger, self.last = cfg, run_dir, logger, last
        self.strategy = build_strategy(cfg.strategy) if strategy is None else strategy
        self.objective: Objective = self.strategy.objective
        self.config = result_config(cfg)
        self.device = resolve_device(cfg.device)
        self.tf32 = set_tf32(bool(OmegaConf.select(cfg, "train.tf32", default=False)), self.device)
        self.plan = stage_plan(self.strategy, cfg)
        self.trigger = build_trigger(OmegaConf.select(cfg, "trigger", default=None))
        self.metrics = MetricsFile(run_dir / "metrics.jsonl")
        self.generator = torch.Generator().manual_seed(cfg.seed)
        # A replica of a stack counts its share of the stack's time (growlab.engine.stacking.clock);
        # `stack_clock` counts the whole stack's, which for a solo run is its own.
        self.clock: Callable[[], float] = time.perf_counter
        self.stack_clock: Callable[[], float] = self.clock
        self.started = self.stack_started = time.perf_counter()
        self.checkpoints = ckpt.BackgroundWriter()
        torch.manual_seed(cfg.seed)
        self.data = data_on_device(load_data(cfg.data), self.device)
        self.num_classes = self.data.num_classes
        probe_x, probe_y = self.split("val")
        self.probe = probe_x[: cfg.train.probe_size]
        self.probe_y = self.objective.targets(self.probe, probe_y[: cfg.train.probe_size])
        self.status, self.error = "running", None
        self.stack_size = 1  # replicas training together now (growlab.engine.stacking.lockstep)
        self.feature_cache = FeatureCache()
        cache = cfg.train.cache_frozen_features and cfg.train.steps_per_epoch is None
        self.split_features = SplitFeatures(cfg.train.cache_max_mb * 2**20 if cache else 0)
        self.divergence = DivergenceGuard(cfg.train.divergence_factor, cfg.train.max_loss)

    def split(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(inputs, labels) of "train", "val" (train when there is no val split) or "test"."""
        if name == "val" and not len(self.data.x_val):
            name = "train"
        return getattr(self.data, f"x_{name}"), getattr(self.data, f"y_{name}")

    def evaluate(
        self, net: torch.nn.Module, split: str, objective: Objective | None = None
    ) -> EpochResult:
        x, y = self.split(split)
        inputs, start = x, None
        if net is self.net:
            inputs, start = self.split_features.inputs(net, split, x)
        bs = self.cfg.train.eval_batch_size
        if objective is None:
            return evaluate(Solo(net), inputs, y, bs, start)[0]
        return evaluate(Solo(net, objective.loss), inputs, objective.targets(x, y), bs, start)[0]

    def current_val(self) -> EpochResult:
        """The objective on the validation split for the current weights, evaluated once."""
        if self.progress.last_val is None:
            val = self.evaluate(self.net, "val", self.objective)
            self.progress.last_val = [val.loss, val.acc]
        return EpochResult(*self.progress.last_val)

    def fit(self, net: GrowableNet, split: str, epochs: int | None) -> None:
        """Train `net` on `split` for `epochs` (None: the open stage's planned epochs)."""
        if epochs is None:
            epochs = self.plan[min(self.progress.stage, len(self.plan) - 1)].epochs
        x, y = self.split(split)
        inputs, start = cached_inputs(net, x, self.cfg.train.cache_max_mb * 2**20)
        optimizer = build_optimizer(self.cfg, net)
        for _ in range(epochs):
            train_epoch(
                Solo(net),
                inputs,
                y,
                optimizer,
                self.cfg.train.batch_size,
                [self.generator],
                start,
                cuda_graphs=self.cfg.train.cuda_graphs,
            )

    def start_or_resume(self) -> None:
        if "SLURM_JOB_ID" in os.environ:
            restart = os.environ.get("SLURM_RESTART_COUNT", "0")
            log.info("running as slurm job %s (restart %s)", os.environ["SLURM_JOB_ID"], restart)
        last = self.last
        if last is None:
            depth = self.strategy.initial_depth(self.cfg.depth, self.cfg.train.start_depth)
            model = model_config(self.cfg.model)
            out = self.objective.output_dim(self.data.input_shape, self.num_classes)
            arch = self.strategy.starting_arch(
                initial_arch(model, self.data.input_shape, out, depth)
            )
            self.net = build_network(arch, load_weights=True).to(self.device)
            self.net.set_trainable(set(range(self.net.depth)), head=True, stem=True)
            self.optimizer = build_optimizer(self.cfg, self.net)
            self.progress = Progress()
            self.metrics.start_fresh()
            self.record_data_split()
            self.attach_scheduler()
            return
        self.net = build_network(last["arch"]).to(self.device)
        self.net.load_state_dict(last["model"])
        trainable = {i for i, frozen in enumerate(last["frozen"]) if not frozen}
        self.net.set_trainable(
            trainable, head=not last["head_frozen"], stem=not last["stem_frozen"]
        )
        self.optimizer = build_optimizer(self.cfg, self.net)
        self.optimizer.load_state_dict(last["optimizer"])
        self.progress = Progress(**last["progress"])
        self.progress.resumes += 1
        self.trigger.load_state_dict(self.progress.trigger_state)
        if self.progress.stopped_growing is not None:
            self.plan = without_growth(self.plan, self.progress.stopped_growing["stage"] + 1)
        self.attach_scheduler()
        self.metrics.truncate_to(last["metrics_rows"])
        ckpt.restore_rng(last["rng"], self.generator)
        log.info(
            "resuming from %s: stage %d, epoch %d",
            self.run_dir / "checkpoints" / ckpt.LAST,
            self.progress.stage,
            self.progress.epoch,
        )

    def record_data_split(self) -> None:
        """What a data set that splits itself (by play, say) put in each split, in the run dir."""
        manifest = getattr(self.data, "manifest", None)
        if manifest:
            text = json.dumps(manifest, indent=1)
            (self.run_dir / "data_split.json").write_text(text + "\n", encoding="utf-8")

    def attach_scheduler(self) -> None:
        """A scheduler on the current optimizer, at the epoch the schedule has reached."""
        stage, node = self.progress.stage, OmegaConf.select(self.cfg, "scheduler")
        if restarts_each_stage(node):
            horizon = self.plan[min(stage, len(self.plan) - 1)].epochs
            done = self.progress.epoch
        else:
            horizon = sum(p.epochs for p in self.plan)
            done = sum(p.epochs for p in self.plan[:stage]) + self.progress.epoch
        self.scheduler = build_scheduler(node, self.optimizer, horizon, done)

    def probe_outputs(self) -> torch.Tensor:
        self.net.eval()
        with torch.no_grad():
            return self.net(self.probe)

    def new_optimizer(
        self, lr_factor: float, moved: Moved | None = None, carry: StateCarry | None = None
    ) -> None:
        """`moved`: parameters a widening replaced (old -> new), whose state is carried too;
        `carry`: the growth's own rule for their state (growlab.growth.strategies.Growth)."""
        old = self.optimizer
        self.optimizer = build_optimizer(self.cfg, self.net, lr_factor)
        if self.cfg.train.carry_optimizer_state:
            carry_state(old, self.optimizer, moved)
            if carry is not None:
                carry(old, self.optimizer)

    def growth_data(self) -> GrowthData:
        """Training batches an operator may look at when it initialises what it grows."""
        x, y = self.split("train")
        return GrowthData(
            x, self.objective.targets(x, y), self.cfg.train.batch_size, self.objective.loss
        )

    def train_flops_per_sample(self) -> float:
        """Forward through everything, backward (2x forward) from the first trainable block."""
        sample = self.data.x_train[:1]
        total = flops_per_sample(self.net, sample)
        prefix = self.net.frozen_prefix()
        frozen = 0 if prefix is None else flops_per_sample(self.net, sample, upto=prefix)
        return float(total + 2 * (total - frozen))
