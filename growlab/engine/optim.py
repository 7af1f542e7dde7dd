"""Optimizers built from config, the device, and CPU threads."""

from __future__ import annotations

import inspect
import logging
import os
from collections.abc import Mapping
from typing import Any

import torch
from hydra.utils import instantiate
from torch import nn

from growlab.engine.accelerators.no_dynamo import make_lean
from growlab.growth.lm_widen_optim import is_decoupled, scaled_groups

log = logging.getLogger("growlab")

# Below this many forward FLOPs per batch, one CPU thread beats several (measured on 2 cores).
SMALL_BATCH_FLOPS = 20e6
# What torch would use, read before growlab sets a thread count.
DEFAULT_THREADS = torch.get_num_threads()


def optimizer_factory(optimizer_cfg: Any) -> Any:
    """The configured optimizer as a callable `(params, lr=...)`, its class made lean first."""
    factory = instantiate(optimizer_cfg)
    cls = getattr(factory, "func", factory)
    if isinstance(cls, type):
        make_lean(cls)
    return factory


def build_optimizer(cfg: Any, net: nn.Module, lr_factor: float = 1.0) -> torch.optim.Optimizer:
    """On a GPU, with state on the device where the optimizer can (`capturable`), so that a
    training step can be replayed as a CUDA graph (growlab.engine.accelerators.batch_loop)."""
    params = [p for p in net.parameters() if p.requires_grad]
    factory = optimizer_factory(cfg.optimizer)
    extra: dict[str, Any] = {}
    if params and params[0].is_cuda and "capturable" in _parameters(factory):
        extra["capturable"] = True
    optimizer = factory(params, lr=cfg.optimizer.lr * lr_factor, **extra)
    scales = getattr(net, "arch", {}).get("param_scales")
    if scales and cfg.train.carry_optimizer_state:
        # A widen-lm growth: per-parameter learning rates that keep Adam's dynamics.
        named = {n: p for n, p in net.named_parameters() if p.requires_grad}
        groups = scaled_groups(named, scales, optimizer.defaults, is_decoupled(optimizer))
        optimizer = factory(groups, lr=cfg.optimizer.lr * lr_factor, **extra)
    return optimizer


def _parameters(factory: Any) -> set[str]:
    cls = getattr(factory, "func", factory)
    try:
        return set(inspect.signature(cls).parameters)
    except (TypeError, ValueError):
        return set()


def carry_state(
    old: torch.optim.Optimizer,
    new: torch.optim.Optimizer,
    moved: Mapping[nn.Parameter, nn.Parameter] | None = None,
) -> int:
    """Give surviving parameters their per-parameter state (e.g. Adam moments) back.

    `moved` maps a parameter replaced by a wider one (a widening) to its replacement: the old
    coordinates (the leading corner) keep their state exactly, the new ones start at zero, and
    per-parameter scalars (Adam's step) are kept, as in staged training (Shen et al., 2022)."""
    replaced = {new_p: old_p for old_p, new_p in (moved or {}).items()}
    carried = 0
    for group in new.param_groups:
        for p in group["params"]:
            if p in old.state:
                new.state[p] = old.state[p]
                carried += 1
            elif replaced.get(p) in old.state:
                source = replaced[p]
                new.state[p] = {k: _widened(v, source, p) for k, v in old.state[source].items()}
                carried += 1
    return carried


def _widened(value: Any, old: torch.Tensor, new: torch.Tensor) -> Any:
    if not isinstance(value, torch.Tensor) or value.shape != old.shape or old.shape == new.shape:
        return value.clone() if isinstance(value, torch.Tensor) else value
    out = torch.zeros(new.shape, dtype=value.dtype, device=value.device)
    out[tuple(slice(0, n) for n in old.shape)] = value
    return out


def resolve_device(name: str) -> torch.device:
    """`auto`: CUDA when usable, else the CPU, saying why when a GPU was expected (SLURM or
    CUDA_VISIBLE_DEVICES handed this process one that torch cannot use)."""
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible not in (None, "", "-1"):
        log.warning(
            "device=auto: CUDA is not usable (CUDA_VISIBLE_DEVICES=%s, but torch %s finds no "
            "working CUDA device%s); training on the CPU",
            visible,
            torch.__version__,
            "" if torch.version.cuda else ": it is a CPU-only build",
        )
    return torch.device("cpu")


def cpu_threads(configured: int | None, batch_flops: float) -> int:
    """On the CPU, small batches run faster on one thread than on several."""
    if configured is not None:
        return configured
    if batch_flops < SMALL_BATCH_FLOPS:
        return 1
    return int(os.environ.get("SLURM_CPUS_PER_TASK", DEFAULT_THREADS))
