"""A run's stage steps: for each stage the strategy plans, grow -> verify -> train -> evaluate
-> record -> checkpoint (growlab.engine.stage_loop drives them, for one run or a stack).

Read top to bottom: `run` sets up (or resumes) the network, then every stage is begun
(growth, preservation check, trainable set, optimizer), trained epoch by epoch and closed with
the objective's metrics, a record in summary.json and a checkpoint. The strategy, its operator
and the objective are objects from config; the loop knows none of them by name. A `last`
checkpoint after every epoch holds everything needed to continue exactly where a run stopped.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from growlab.engine.deferred_signals import CheckpointGuard
from growlab.engine.feature_cache import cached_inputs
from growlab.engine.optim import cpu_threads
from growlab.engine.probes import block_norms
from growlab.engine.progress import RunProgress
from growlab.engine.run_base import RunBase
from growlab.engine.run_directory import checkpoint as ckpt
from growlab.engine.run_directory.state import stage_line
from growlab.engine.runners import StageInputs
from growlab.engine.stage_loop import SoloMember, StageLoop
from growlab.engine.training import (
    EpochResult,
    flops_per_sample,
    max_output_change,
)
from growlab.growth.nets import block_widths, count_params
from growlab.growth.steering import steered_position
from growlab.growth.strategies import Growth, StagePlan, without_growth
from growlab.growth.triggers import EpochReport

log = logging.getLogger("growlab")


class Run(RunBase):
    def run(self) -> dict[str, Any]:
        self.start_or_resume()
        return self.run_stages()

    def run_stages(self) -> dict[str, Any]:
        """Every stage left from where the run stands, on its own (a stack of one), then its
        final outputs; returns its summary."""
        member = SoloMember(self)
        self.bar = self.progress_bar()
        try:
            StageLoop([member], CheckpointGuard(self.checkpoints.wait), False).run()
        finally:
            self.bar.close()
            self.checkpoints.close()
        assert member.summary is not None
        return member.summary

    def progress_bar(self) -> RunProgress:
        # A trigger may end stages early: the bar's total is the most epochs the run can train.
        most = [self.trigger.max_epochs(p.epochs) for p in self.plan]
        done = sum(most[: self.progress.stage]) + self.progress.epoch
        return RunProgress(sum(most), done)

    def stages_left(self) -> bool:
        return self.status == "running" and self.progress.stage < len(self.plan)

    def diverge(self, error: str) -> None:
        self.status, self.error = "diverged", error
        log.error("diverged: %s", error)

    def close_outputs(self) -> None:
        """The final model (when completed) and `last` checkpoint, on disk before the summary."""
        if self.status == "running":
            self.status = "completed"
            self.save_final_model()
        self.save_last()
        self.checkpoints.wait()

    def report(self) -> dict[str, Any]:
        # Written last: a `completed` summary means every output of the run is on disk.
        result = self.write_summary()
        self.logger.finish(result)
        return result

    def begin_stage(self, plan: StagePlan) -> None:
        """Grow (measuring preservation and shock), then set what trains and the optimizer."""
        t0 = self.clock()
        record: dict[str, Any] = {
            "stage": self.progress.stage,
            "phase": plan.phase,
            "inserted_at": None,
            "grow_at": None,  # where the growth happened, as the strategy's grow(..., at) takes it
            "preservation_error": None,
            "shock": None,
            "signal_flops": 0.0,  # the growth trigger's signal (in cum_train_flops too)
        }
        growth = Growth(None)
        if plan.phase == "grow":
            before = self.current_val()
            probe_before = self.probe_outputs()
            at, steered = steered_position(self.trigger)
            # Without a position, grow(net, data) as before: a user's strategy may not take `at`.
            data = self.growth_data()
            growth = (
                self.strategy.grow(self.net, data)
                if at is None
                else self.strategy.grow(self.net, data, at)
            )
            if steered is not None:  # trigger.steer=true: did the trigger say where?
                record["steered"] = steered
                if not steered:
                    log.info(
                        "stage %d: the growth trigger has not said where to grow (not measured "
                        "yet); strategy=%s grows at its own place",
                        self.progress.stage + 1,
                        self.strategy.name,
                    )
            self.progress.last_val = None
            probe_after = self.probe_outputs()
            after = self.current_val()
            operator = self.strategy.operator
            if operator is not None and (operator.preserves_function or operator.measures_error):
                record["preservation_error"] = max_output_change(probe_before, probe_after)
            record["inserted_at"], record["grow_at"] = growth.index, growth.at
            record["shock"] = {
                "acc_before": before.acc,
                "acc_after": after.acc,
                "loss_before": before.loss,
                "loss_after": after.loss,
            }
            record["start_loss"] = after.loss
        else:
            record["start_loss"] = self.current_val().loss
        if plan.phase != "train":
            self.strategy.set_trainable(self.net, plan.phase, growth.index)
            factor = self.strategy.finetune_lr_factor if plan.phase == "finetune" else 1.0
            self.new_optimizer(factor, growth.moved, growth.carry)
        self.progress.epoch = 0
        self.attach_scheduler()
        if plan.phase == "grow":
            self.record({"event": "growth", "depth": self.net.depth, **self.widths(), **record})
        if self.progress.start_loss is None:
            self.progress.start_loss = record["start_loss"]
        record.update(depth=self.net.depth, epochs=plan.epochs, stage_wall_s=self.clock() - t0)
        self.progress.current = record
        self.progress.epoch = 0
        self.progress.stage_done = False
        self.trigger.begin_stage(self.progress.stage, plan.epochs)
        self.progress.trigger_state = self.trigger.state_dict()

    def next_grow_at(self) -> int | None:
        """Where the stage about to open will grow when a trigger steers it (None: the
        strategy's own place, or no growth opens next)."""
        opening = self.progress.current is None and self.stages_left()
        if not opening or self.plan[self.progress.stage].phase != "grow":
            return None
        return steered_position(self.trigger)[0]

    def stage_inputs(self, replicas: int = 1) -> StageInputs:
        """What the open stage trains on: the inputs of its first trainable block (cached
        features of a frozen prefix), the targets and the training FLOPs of one epoch. On the
        CPU, sets the thread count for `replicas` networks trained together."""
        cfg = self.cfg
        if self.device.type == "cpu":
            sample = self.data.x_train[:1]
            batch_flops = flops_per_sample(self.net, sample) * cfg.train.batch_size * replicas
            torch.set_num_threads(cpu_threads(cfg.train.num_threads, batch_flops))
        # Sampled windows (train.steps_per_epoch) are few per epoch out of many: never cached.
        cache = cfg.train.cache_frozen_features and cfg.train.steps_per_epoch is None
        max_bytes = cfg.train.cache_max_mb * 2**20 if cache else 0
        inputs, start = cached_inputs(self.net, self.data.x_train, max_bytes, self.feature_cache)
        targets = self.objective.targets(*self.split("train"))
        steps = cfg.train.steps_per_epoch
        samples = len(self.data.x_train) if steps is None else steps * cfg.train.batch_size
        flops_epoch = self.train_flops_per_sample() * samples
        return StageInputs(inputs, start, targets, flops_epoch)

    def stage_complete(self, plan: StagePlan) -> bool:
        """The growth trigger said so after the last epoch, or the stage has trained the most
        epochs the trigger allows."""
        most = self.trigger.max_epochs(plan.epochs)
        return self.progress.stage_done or self.progress.epoch >= most

    def after_epoch(
        self,
        plan: StagePlan,
        stage: StageInputs,
        result: EpochResult,
        val: EpochResult,
        seconds: float,
    ) -> str | None:
        """Record a trained epoch, step the schedule, checkpoint; returns why training
        diverged, or None."""
        record = self.progress.current
        assert record is not None
        self.progress.last_val = [val.loss, val.acc]
        self.progress.epoch += 1
        self.progress.cum_train_flops += stage.flops_epoch
        record["stage_wall_s"] += seconds
        self.record_epoch(result, val)
        if self.scheduler is not None:
            self.scheduler.step()
        record["train_loss"], record["train_acc"] = result.loss, result.acc
        start = self.progress.start_loss
        diverged = self.divergence.check(result.loss, start, record["start_loss"])
        if diverged is not None:
            return f"stage {self.progress.stage} epoch {self.progress.epoch}: {diverged}"
        self.ask_trigger(plan, stage, result, val)
        every = self.cfg.train.checkpoint_every_epochs
        if every > 0 and self.progress.epoch % every == 0 and not self.stage_complete(plan):
            self.save_last()
        return None

    def ask_trigger(
        self, plan: StagePlan, stage: StageInputs, result: EpochResult, val: EpochResult
    ) -> None:
        """Whether the stage is done, from the epoch just trained (and the trigger's signal,
        whose FLOPs count as training); the trigger's memory goes into the next `last`
        checkpoint with the decision."""
        if self.trigger.measures:
            forward = flops_per_sample(self.net, self.data.x_train[:1])
            spent = self.trigger.measure(self.net, self.growth_data(), forward)
            self.progress.cum_train_flops += spent
            self.progress.current["signal_flops"] += spent  # type: ignore[index]
        report = EpochReport(
            stage=self.progress.stage,
            epoch=self.progress.epoch,
            planned=plan.epochs,
            phase=plan.phase,
            train_loss=result.loss,
            val_loss=val.loss,
            val_acc=val.acc,
            chance_loss=self.objective.chance_loss(*self.split("val")),
            cum_train_flops=self.progress.cum_train_flops,
            epoch_flops=stage.flops_epoch,
        )
        self.progress.stage_done = bool(self.trigger.stage_done(report))
        self.progress.trigger_state = self.trigger.state_dict()

    def maybe_stop_growing(self, record: dict[str, Any]) -> None:
        """The trigger may end growth after this stage: the stages left that grow are dropped
        (a fine-tune stage still runs), and the summary says where and why."""
        if any(p.phase == "grow" for p in self.plan[self.progress.stage :]):
            reason = self.trigger.stop_growing()
            if reason is not None:
                self.progress.stopped_growing = {"stage": record["stage"], "reason": reason}
                self.plan = without_growth(self.plan, self.progress.stage)
                log.info("growth stops after stage %d: %s", record["stage"] + 1, reason)

    def widths(self) -> dict[str, Any]:
        """The hidden width (the widest block) and each block's width."""
        widths = block_widths(self.net.arch)
        return {"width": max(widths), "widths": widths}

    def end_stage(self) -> None:
        """The objective's metrics, a stage record, checkpoints and the updated summary."""
        t0 = self.clock()
        record, stages = self.progress.current, self.progress.stages
        assert record is not None
        metrics = self.objective.stage_metrics(self)
        previous = stages[-1] if stages else None
        total, trainable = count_params(self.net)
        record.update(
            depth=self.net.depth,
            epochs=self.progress.epoch,  # trained: a trigger may end the stage before its plan
            **self.widths(),
            **metrics,
            params_total=total,
            params_trainable=trainable,
            flops_per_sample=flops_per_sample(self.net, self.data.x_test[:1]),
            cum_train_flops=self.progress.cum_train_flops,
            stack_size=self.stack_size,  # replicas that trained the stage together (1: solo)
            improved=None if previous is None else bool(metrics["val_loss"] < previous["val_loss"]),
            **block_norms(self.net, self.probe, lambda out: self.objective.loss(out, self.probe_y)),
        )
        if self.progress.trigger_state:  # what the trigger decided on (a signal, where to grow)
            record["trigger_state"] = dict(self.progress.trigger_state)
        record.setdefault("train_loss", None)
        record.setdefault("train_acc", None)
        record["wall_s"] = record.pop("stage_wall_s") + self.clock() - t0
        stages.append(record)
        self.progress.current, self.progress.epoch = None, 0
        self.progress.stage_done = False
        self.progress.stage += 1
        self.record({"event": "stage", **record})
        self.maybe_stop_growing(record)
        path = ckpt.stage_path(self.run_dir, record["stage"])
        ckpt.save_weights(self.net, path)
        for name, model in self.objective.extras().items():
            ckpt.save_weights(model, path.with_name(f"{path.stem}_{name}.pt"))
        self.write_summary()
        self.save_last()
        log.info(stage_line(record, previous, len(self.plan)))
