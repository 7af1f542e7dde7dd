"""The stage loop: grow -> verify -> train -> evaluate -> record -> checkpoint.

Read top to bottom: `run` sets up (or resumes) a run, then each stage of `plan_stages` is
begun (growth, trainable set, optimizer), trained epoch by epoch and closed with an evaluation,
a record in summary.json and a checkpoint. A `last` checkpoint after every epoch (interval
configurable) holds everything needed to continue exactly where the run stopped.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import OmegaConf

from growlab import checkpoint as ckpt
from growlab.config import OperatorName, TrainableSet
from growlab.data import DataSplits, load_data
from growlab.feature_cache import FeatureCache, cached_inputs
from growlab.loggers import SafeLogger
from growlab.models import GrowableNet, build_network, count_params, initial_arch
from growlab.operators import OPERATORS, grow
from growlab.probes import block_norms
from growlab.progress import RunProgress
from growlab.records import MetricsFile, write_summary
from growlab.run_dir import fingerprint, result_config
from growlab.training import (
    DivergenceGuard,
    evaluate,
    flops_per_sample,
    max_output_change,
    train_epoch,
)

log = logging.getLogger("growlab")

# Below this many forward FLOPs per batch, one CPU thread beats several (measured on 2 cores).
SMALL_BATCH_FLOPS = 20e6


@dataclass
class StagePlan:
    phase: str  # "train" (no growth), "grow" (insert a block first) or "finetune"
    epochs: int


@dataclass
class Progress:
    """Where the run stands; saved in the `last` checkpoint."""

    stage: int = 0
    epoch: int = 0
    current: dict[str, Any] | None = None  # the open stage's record, None between stages
    stages: list[dict[str, Any]] = field(default_factory=list)
    cum_train_flops: float = 0.0
    wall_s: float = 0.0
    resumes: int = 0
    start_loss: float | None = None  # validation loss of the untrained network


def plan_stages(cfg: Any) -> list[StagePlan]:
    n = cfg.depth - cfg.train.start_depth + 1
    first_grow = "grow" if cfg.strategy.grow else "train"
    plan = [
        StagePlan("train" if k == 0 else first_grow, cfg.train.epochs_per_stage) for k in range(n)
    ]
    if cfg.strategy.finetune_epochs > 0:
        plan.append(StagePlan("finetune", cfg.strategy.finetune_epochs))
    return plan


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def build_optimizer(cfg: Any, net: GrowableNet, lr_factor: float = 1.0) -> torch.optim.Optimizer:
    params = [p for p in net.parameters() if p.requires_grad]
    factory = instantiate(cfg.optimizer)
    return factory(params, lr=cfg.optimizer.lr * lr_factor)


def carry_state(old: torch.optim.Optimizer, new: torch.optim.Optimizer) -> int:
    """Give surviving parameters their per-parameter state (e.g. Adam moments) back."""
    carried = 0
    for group in new.param_groups:
        for p in group["params"]:
            if p in old.state:
                new.state[p] = old.state[p]
                carried += 1
    return carried


def apply_trainable_set(net: GrowableNet, trainable: TrainableSet, new_index: int | None) -> None:
    if new_index is None or trainable is TrainableSet.all:
        net.set_trainable(set(range(net.depth)), head=True, stem=True)
    elif trainable is TrainableSet.new_and_head:
        net.set_trainable({new_index}, head=True)
    else:
        net.set_trainable({new_index}, head=False)


class Run:
    def __init__(
        self, cfg: Any, run_dir: Path, logger: SafeLogger, last: dict[str, Any] | None = None
    ) -> None:
        """`last`: the run directory's `last` checkpoint to resume from (None: a fresh run)."""
        self.cfg = cfg
        self.last = last
        self.config = result_config(cfg)
        self.run_dir = run_dir
        self.logger = logger
        self.device = resolve_device(cfg.device)
        self.max_threads = cfg.train.num_threads or int(
            os.environ.get("SLURM_CPUS_PER_TASK", torch.get_num_threads())
        )
        self.plan = plan_stages(cfg)
        self.metrics = MetricsFile(run_dir / "metrics.jsonl")
        self.generator = torch.Generator().manual_seed(cfg.seed)
        self.started = time.perf_counter()
        torch.manual_seed(cfg.seed)
        self.data: DataSplits = load_data(cfg.data).to(self.device)
        probe_x, probe_y = self.split("val")
        self.probe = probe_x[: cfg.train.probe_size]
        self.probe_y = probe_y[: cfg.train.probe_size]
        self.model_cfg = OmegaConf.to_container(cfg.model, resolve=True, enum_to_str=True)
        self.net: GrowableNet
        self.optimizer: torch.optim.Optimizer
        self.progress: Progress
        self.status = "running"
        self.error: str | None = None
        self.feature_cache = FeatureCache()
        self.divergence = DivergenceGuard(cfg.train.divergence_factor, cfg.train.max_loss)

    # ---- setup and resume -------------------------------------------------------------
    def start_or_resume(self) -> None:
        last = self.last
        if last is None:
            start_depth = self.cfg.train.start_depth if self.cfg.strategy.grow else self.cfg.depth
            arch = initial_arch(
                self.model_cfg, self.data.input_shape, self.output_dim(), start_depth
            )
            self.net = build_network(arch, load_weights=True).to(self.device)
            self.net.set_trainable(set(range(self.net.depth)), head=True, stem=True)
            self.optimizer = build_optimizer(self.cfg, self.net)
            self.progress = Progress()
            self.metrics.start_fresh()
            return
        self.net = build_network(last["arch"]).to(self.device)
        self.net.load_state_dict(last["model"])
        self.net.set_trainable(
            {i for i, f in enumerate(last["frozen"]) if not f},
            head=not last["head_frozen"],
            stem=not last["stem_frozen"],
        )
        self.optimizer = build_optimizer(self.cfg, self.net)
        self.optimizer.load_state_dict(last["optimizer"])
        self.progress = Progress(**last["progress"])
        self.progress.resumes += 1
        self.metrics.truncate_to(last["metrics_rows"])
        ckpt.restore_rng(last["rng"], self.generator)
        log.info(
            "resuming from %s: stage %d, epoch %d, %d metric rows",
            self.run_dir / "checkpoints" / ckpt.LAST,
            self.progress.stage,
            self.progress.epoch,
            last["metrics_rows"],
        )

    def save_last(self) -> None:
        self.progress.wall_s += time.perf_counter() - self.started
        self.started = time.perf_counter()
        ckpt.save_last(
            self.run_dir,
            {
                "arch": self.net.arch,
                "model": self.net.state_dict(),
                "frozen": self.net.frozen,
                "head_frozen": self.net.head_frozen,
                "stem_frozen": self.net.stem_frozen,
                "optimizer": self.optimizer.state_dict(),
                "rng": ckpt.rng_state(self.generator),
                "progress": asdict(self.progress),
                "metrics_rows": self.metrics.rows,
                "config": self.config,
            },
        )

    def elapsed(self) -> float:
        return self.progress.wall_s + time.perf_counter() - self.started

    # ---- records ------------------------------------------------------------------------
    def record(self, row: dict[str, Any]) -> None:
        self.metrics.append(row)
        self.logger.log(row)

    def summary(self, error: str | None = None) -> dict[str, Any]:
        cfg = self.cfg
        stages = self.progress.stages
        summary: dict[str, Any] = {
            "strategy": cfg.strategy.name,
            "operator": str(OperatorName(cfg.strategy.operator).value),
            "model": self.model_cfg["name"],
            "data": self.data.name,
            "seed": cfg.seed,
            "depth": cfg.depth,
            "start_depth": cfg.train.start_depth,
            "epochs_per_stage": cfg.train.epochs_per_stage,
            "status": self.status,
            "test_acc": stages[-1]["test_acc"] if stages else None,
            "best_test_acc": max((s["test_acc"] for s in stages), default=None),
            "train_flops": self.progress.cum_train_flops,
            "wall_s": self.elapsed(),
            "device": str(self.device),
            "resumes": self.progress.resumes,
            "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
            "slurm_array_job_id": os.environ.get("SLURM_ARRAY_JOB_ID"),
            "slurm_array_task_id": os.environ.get("SLURM_ARRAY_TASK_ID"),
            "stages": stages,
            "config_fingerprint": fingerprint(self.config),
            "config": self.config,
        }
        if error or self.error:
            summary["error"] = error or self.error
        return summary

    def write_summary(self, error: str | None = None) -> dict[str, Any]:
        summary = self.summary(error)
        write_summary(self.run_dir / "summary.json", summary)
        return summary

    # ---- the stage loop -----------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        if "SLURM_JOB_ID" in os.environ:
            log.info(
                "running as slurm job %s (restart %s)",
                os.environ["SLURM_JOB_ID"],
                os.environ.get("SLURM_RESTART_COUNT", "0"),
            )
        self.start_or_resume()
        done = sum(p.epochs for p in self.plan[: self.progress.stage]) + self.progress.epoch
        self.bar = RunProgress(sum(p.epochs for p in self.plan), done)
        try:
            while self.progress.stage < len(self.plan):
                plan = self.plan[self.progress.stage]
                if self.progress.current is None:
                    self.begin_stage(plan)
                self.error = self.train_stage(plan)
                if self.error is not None:
                    self.status = "diverged"
                    log.error("diverged: %s", self.error)
                    break
                self.end_stage()
        finally:
            self.bar.close()
        if self.status == "running":
            self.status = "completed"
            self.save_whole_model()
        self.save_last()
        # Written last: a `completed` summary means every output of the run is on disk.
        summary = self.write_summary()
        self.logger.finish(summary)
        return summary

    def save_whole_model(self) -> None:
        """The pickled module, the second way seed 002 saves a model (see growlab.evaluate)."""
        torch.save(self.final_model(), self.run_dir / "checkpoints" / "model_full.pt")

    def final_model(self) -> GrowableNet:
        return self.net

    # The objective: classification here; growlab.autoencoder overrides the methods below.
    loss_fn = staticmethod(F.cross_entropy)

    def output_dim(self) -> int:
        return self.data.num_classes

    def split(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(inputs, targets) of "train", "val" (train when there is no val split) or "test"."""
        if name == "val" and not len(self.data.x_val):
            name = "train"
        return getattr(self.data, f"x_{name}"), getattr(self.data, f"y_{name}")

    def stage_metrics(self) -> dict[str, Any]:
        bs = self.cfg.train.eval_batch_size
        test = evaluate(self.net, *self.split("test"), bs, self.loss_fn)
        val = evaluate(self.net, *self.split("val"), bs, self.loss_fn)
        return {
            "test_acc": test.acc,
            "test_loss": test.loss,
            "val_acc": val.acc,
            "val_loss": val.loss,
        }

    def begin_stage(self, plan: StagePlan) -> None:
        cfg, strategy = self.cfg, self.cfg.strategy
        stage_start = time.perf_counter()
        record: dict[str, Any] = {
            "stage": self.progress.stage,
            "phase": plan.phase,
            "inserted_at": None,
            "preservation_error": None,
            "shock": None,
        }
        if plan.phase == "grow":
            operator = OperatorName(strategy.operator)
            x_val, y_val = self.split("val")
            bs = cfg.train.eval_batch_size
            before = evaluate(self.net, x_val, y_val, bs, self.loss_fn)
            self.net.eval()
            with torch.no_grad():
                probe_before = self.net(self.probe)
            index = grow(self.net, operator, strategy.position, strategy.literal_seed_init)
            self.net.eval()
            with torch.no_grad():
                probe_after = self.net(self.probe)
            after = evaluate(self.net, x_val, y_val, bs, self.loss_fn)
            if OPERATORS[operator].preserves_function:
                record["preservation_error"] = max_output_change(probe_before, probe_after)
            record["inserted_at"] = index
            record["shock"] = {
                "acc_before": before.acc,
                "acc_after": after.acc,
                "loss_before": before.loss,
                "loss_after": after.loss,
            }
            record["start_loss"] = after.loss
            apply_trainable_set(self.net, TrainableSet(strategy.trainable), index)
            self.new_optimizer(lr_factor=1.0)
            self.record({"event": "growth", "depth": self.net.depth, **record})
        else:
            if plan.phase == "finetune":
                self.net.set_trainable(set(range(self.net.depth)), head=True, stem=True)
                self.new_optimizer(lr_factor=strategy.finetune_lr_factor)
            val = evaluate(self.net, *self.split("val"), cfg.train.eval_batch_size, self.loss_fn)
            record["start_loss"] = val.loss
        if self.progress.start_loss is None:
            self.progress.start_loss = record["start_loss"]
        record["depth"] = self.net.depth
        record["epochs"] = plan.epochs
        record["stage_wall_s"] = time.perf_counter() - stage_start
        self.progress.current = record
        self.progress.epoch = 0

    def new_optimizer(self, lr_factor: float) -> None:
        old = self.optimizer
        self.optimizer = build_optimizer(self.cfg, self.net, lr_factor)
        if self.cfg.train.carry_optimizer_state:
            carry_state(old, self.optimizer)

    def train_stage(self, plan: StagePlan) -> str | None:
        """Train the open stage's epochs; returns why training diverged, or None."""
        cfg = self.cfg
        assert self.progress.current is not None
        record = self.progress.current
        t_setup = time.perf_counter()
        self.choose_threads()
        max_bytes = cfg.train.cache_max_mb * 2**20 if cfg.train.cache_frozen_features else 0
        inputs, start = cached_inputs(self.net, self.data.x_train, max_bytes, self.feature_cache)
        flops_epoch = self.train_flops_per_sample() * len(self.data.x_train)
        x_val, y_val = self.split("val")
        record["stage_wall_s"] += time.perf_counter() - t_setup  # the cache build is stage work
        while self.progress.epoch < plan.epochs:
            t0 = time.perf_counter()
            result = train_epoch(
                self.net,
                inputs,
                self.split("train")[1],
                self.optimizer,
                cfg.train.batch_size,
                self.generator,
                start,
                self.loss_fn,
            )
            val = evaluate(self.net, x_val, y_val, cfg.train.eval_batch_size, self.loss_fn)
            self.progress.epoch += 1
            self.progress.cum_train_flops += flops_epoch
            record["stage_wall_s"] += time.perf_counter() - t0
            self.record(
                {
                    "event": "epoch",
                    "stage": self.progress.stage,
                    "depth": self.net.depth,
                    "epoch": self.progress.epoch,
                    "train_loss": result.loss,
                    "train_acc": result.acc,
                    "val_loss": val.loss,
                    "val_acc": val.acc,
                    "lr": self.optimizer.param_groups[0]["lr"],
                    "cum_train_flops": self.progress.cum_train_flops,
                }
            )
            record["train_loss"], record["train_acc"] = result.loss, result.acc
            self.bar.update(
                self.progress.stage,
                len(self.plan),
                self.net.depth,
                self.progress.epoch,
                result.loss,
            )
            diverged = self.divergence.check(
                result.loss, self.progress.start_loss, record["start_loss"]
            )
            if diverged is not None:
                return f"stage {self.progress.stage} epoch {self.progress.epoch}: {diverged}"
            every = cfg.train.checkpoint_every_epochs
            if every > 0 and self.progress.epoch % every == 0 and self.progress.epoch < plan.epochs:
                self.save_last()
        return None

    def choose_threads(self) -> None:
        """On the CPU, small batches run faster on one thread than on several."""
        if self.device.type != "cpu":
            return
        threads = self.cfg.train.num_threads
        if threads is None:
            batch_flops = (
                flops_per_sample(self.net, self.data.x_train[:1]) * self.cfg.train.batch_size
            )
            threads = 1 if batch_flops < SMALL_BATCH_FLOPS else self.max_threads
        torch.set_num_threads(threads)

    def train_flops_per_sample(self) -> float:
        """Forward through everything, backward (2x forward) from the first trainable block."""
        sample = self.data.x_train[:1]
        total = flops_per_sample(self.net, sample)
        prefix = self.net.frozen_prefix()
        frozen = 0 if prefix is None else flops_per_sample(self.net, sample, upto=prefix)
        return float(total + 2 * (total - frozen))

    def end_stage(self) -> None:
        t0 = time.perf_counter()
        assert self.progress.current is not None
        record = self.progress.current
        metrics = self.stage_metrics()
        total, trainable = count_params(self.net)
        previous = self.progress.stages[-1] if self.progress.stages else None
        improved = None if previous is None else bool(metrics["val_loss"] < previous["val_loss"])
        record.update(
            {
                "depth": self.net.depth,
                **metrics,
                "params_total": total,
                "params_trainable": trainable,
                "flops_per_sample": flops_per_sample(self.net, self.data.x_test[:1]),
                "cum_train_flops": self.progress.cum_train_flops,
                "improved": improved,
                **block_norms(self.net, self.probe, lambda out: self.loss_fn(out, self.probe_y)),
            }
        )
        record.setdefault("train_loss", None)
        record.setdefault("train_acc", None)
        record["wall_s"] = record.pop("stage_wall_s") + time.perf_counter() - t0
        self.progress.stages.append(record)
        self.progress.current = None
        self.progress.stage += 1
        self.progress.epoch = 0
        self.record({"event": "stage", **record})
        self.save_stage_checkpoint(record["stage"])
        self.write_summary()
        self.save_last()
        log.info(stage_line(record, previous, len(self.plan)))

    def save_stage_checkpoint(self, stage: int) -> None:
        ckpt.save_weights(self.net, ckpt.stage_path(self.run_dir, stage))


def stage_line(record: dict[str, Any], previous: dict[str, Any] | None, n_stages: int) -> str:
    line = (
        f"stage {record['stage'] + 1}/{n_stages} [{record['phase']}] depth {record['depth']}: "
        f"test_acc {record['test_acc']:.4f} val_loss {record['val_loss']:.4f}"
    )
    if record["preservation_error"] is not None:
        line += f" preservation_error {record['preservation_error']:.2e}"
    if previous is not None:
        verdict = "helped" if record["improved"] else "did not help"
        line += f" (prev val_loss {previous['val_loss']:.4f}: new stage {verdict})"
    return line
