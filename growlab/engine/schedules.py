"""Learning-rate schedulers from the `scheduler` config group, stepped once per epoch.

A scheduler is rebuilt whenever the optimizer is (every growth) and at every stage start, then
fast-forwarded to where the schedule stands: the epochs done in the run, or in the stage with
`restart_each_stage`. So it needs no state of its own in the `last` checkpoint, a growth keeps
its place in a run-long schedule, and a restarted schedule re-warms at each stage.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch.optim.lr_scheduler import CosineAnnealingLR, LinearLR, LRScheduler, SequentialLR

# Keys of the scheduler config that growlab reads and the scheduler's constructor never sees.
OWN_KEYS = ("restart_each_stage", "horizon_arg")


def warmup_cosine(
    optimizer: torch.optim.Optimizer,
    total_epochs: int,
    warmup_epochs: int = 1,
    start_factor: float = 0.1,
    eta_min: float = 0.0,
) -> LRScheduler:
    """Linear warmup from start_factor x lr, then cosine decay to eta_min, in torch's parts."""
    warmup = min(warmup_epochs, max(total_epochs - 1, 0))
    cosine = CosineAnnealingLR(optimizer, T_max=max(total_epochs - warmup, 1), eta_min=eta_min)
    if warmup == 0:
        return cosine
    ramp = LinearLR(optimizer, start_factor=start_factor, total_iters=warmup)
    return SequentialLR(optimizer, [ramp, cosine], milestones=[warmup])


def restarts_each_stage(node: Any) -> bool:
    return bool(OmegaConf.select(node, "restart_each_stage", default=False))


def build_scheduler(
    node: Any, optimizer: torch.optim.Optimizer, horizon: int, done: int = 0
) -> LRScheduler | None:
    """The configured scheduler over `horizon` epochs, already stepped `done` epochs into it
    (None when `_target_` is null)."""
    if node is None or OmegaConf.select(node, "_target_", default=None) is None:
        return None
    config = OmegaConf.to_container(node, resolve=True, enum_to_str=True)
    assert isinstance(config, dict)
    horizon_arg = config.get("horizon_arg")
    for key in OWN_KEYS:
        config.pop(key, None)
    kwargs = {} if horizon_arg is None else {horizon_arg: max(horizon, 1)}
    for group in optimizer.param_groups:
        # A scheduler that ran on this optimizer (or on the one a resume loaded) left the rate
        # mid-schedule; the replay below must start from the base rate it recorded.
        if "initial_lr" in group:
            group["lr"] = group["initial_lr"]
    scheduler = instantiate(config)(optimizer, **kwargs)
    with warnings.catch_warnings():
        # Replaying epochs already trained: no optimizer step belongs between these steps.
        warnings.simplefilter("ignore", UserWarning)
        for _ in range(done):
            scheduler.step()
    return scheduler
