"""Where a run stands (saved in the `last` checkpoint) and the summary.json it reports."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from typing import Any

from growlab.engine.run_directory.result_identity import recorded_config


@dataclass
class Progress:
    stage: int = 0
    epoch: int = 0
    current: dict[str, Any] | None = None  # the open stage's record, None between stages
    stages: list[dict[str, Any]] = field(default_factory=list)
    cum_train_flops: float = 0.0
    wall_s: float = 0.0
    stack_wall_s: float = 0.0  # of the stacks it trained in (its own wall_s when solo)
    resumes: int = 0
    start_loss: float | None = None  # validation loss of the untrained network
    # [loss, acc] of the objective on the validation split for the current weights (None once
    # they change), so a stage start never evaluates weights the last epoch just evaluated.
    last_val: list[float] | None = None
    # The growth trigger's decision after the last epoch, and its memory (growlab.growth.triggers).
    stage_done: bool = False
    trigger_state: dict[str, Any] = field(default_factory=dict)
    # {"stage": i, "reason": ...} once a trigger stopped growth after stage i (None: it has not).
    stopped_growing: dict[str, Any] | None = None

    def checkpoint(self) -> dict[str, Any]:
        """Its fields for a checkpoint, safe from later changes: a finished stage's record is
        never changed once appended (shared), the open stage's record is copied."""
        return {
            **vars(self),
            "current": None if self.current is None else dict(self.current),
            "stages": list(self.stages),
            "last_val": None if self.last_val is None else list(self.last_val),
            "trigger_state": dict(self.trigger_state),
        }


def summary(
    progress: Progress, config: dict[str, Any], fingerprint: str, **fields: Any
) -> dict[str, Any]:
    """summary.json per the output contract from the run's progress and its result config
    (flat dotted keys, see growlab.engine.run_directory.folder); `fields` adds status, wall_s,
    device."""
    stages = progress.stages
    operator = config.get("strategy.operator._target_")
    # Where a growth trigger ended growth early (absent when the plan ran out).
    stopped = progress.stopped_growing
    stopped_growing = {} if stopped is None else {"stopped_growing": stopped}
    return {
        "strategy": config["strategy.name"],
        "operator": None if operator is None else str(operator).rsplit(".", 1)[-1],
        "model": config["model.name"],
        "data": config["data.name"],
        "seed": config["seed"],
        "depth": config["depth"],
        "width": stages[-1].get("width") if stages else None,
        "start_depth": config["train.start_depth"],
        "epochs_per_stage": config["train.epochs_per_stage"],
        **fields,
        "test_acc": stages[-1]["test_acc"] if stages else None,
        "test_loss": stages[-1].get("test_loss") if stages else None,
        "best_test_acc": max((s["test_acc"] for s in stages), default=None),
        "train_flops": progress.cum_train_flops,
        "resumes": progress.resumes,
        # The process that wrote it: runs packed into one job share it.
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
        "slurm_array_job_id": os.environ.get("SLURM_ARRAY_JOB_ID"),
        "slurm_array_task_id": os.environ.get("SLURM_ARRAY_TASK_ID"),
        "stages": stages,
        **stopped_growing,
        "config_fingerprint": fingerprint,
        "config": recorded_config(config),
    }


def operator_used(operator: object | None) -> dict[str, str | None]:
    """The class that actually grew the network (a strategy's name does not say which)."""
    if operator is None:
        return {"operator": None, "operator_class": None}
    cls = type(operator)
    return {"operator": cls.__name__, "operator_class": f"{cls.__module__}.{cls.__qualname__}"}


def stage_line(record: dict[str, Any], previous: dict[str, Any] | None, n_stages: int) -> str:
    acc = record["test_acc"]
    # A run without accuracy (regression: NaN) shows its test loss instead.
    test = f"test_acc {acc:.4f}" if acc == acc else f"test_loss {record.get('test_loss'):.4g}"
    line = (
        f"stage {record['stage'] + 1}/{n_stages} [{record['phase']}] depth {record['depth']} "
        f"width {record.get('width')}: {test} val_loss {record['val_loss']:.4f}"
    )
    if record["preservation_error"] is not None:
        line += f" preservation_error {record['preservation_error']:.2e}"
    if previous is not None:
        verdict = "helped" if record["improved"] else "did not help"
        line += f" (prev val_loss {previous['val_loss']:.4f}: new stage {verdict})"
    return line
