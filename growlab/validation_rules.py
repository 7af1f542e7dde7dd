"""The value rules `growlab.validation.validate` checks key by key: (key, rule, what is allowed).

A key absent from the composed config (a user's own optimizer without momentum, say) is
skipped; what a rule refuses is reported with its key, the value and the allowed text.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from omegaconf import ListConfig


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _at_least(low: float) -> Callable[[Any], bool]:
    return lambda v: _number(v) and math.isfinite(v) and v >= low


def _positive(v: Any) -> bool:
    return _number(v) and math.isfinite(v) and v > 0


def _optional(rule: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda v: v is None or rule(v)


def _is_list(v: Any) -> bool:
    return isinstance(v, list | ListConfig)


def _fraction(v: Any) -> bool:
    return _number(v) and 0 <= v < 1


# torch keeps a seed's low 64 bits and numpy refuses seeds >= 2**32: 2**32 would silently
# reproduce seed 0, so only seeds both represent are taken.
SEED_LIMIT = 2**32


def _seed(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < SEED_LIMIT


def _some_blocks(v: Any) -> bool:
    return v is None or len(v) > 0


RULES: list[tuple[str, Callable[[Any], bool], str]] = [
    ("depth", _at_least(1), "an integer >= 1"),
    ("seed", _seed, f"an integer in 0..{SEED_LIMIT - 1} (what torch and numpy both keep)"),
    ("train.start_depth", _at_least(1), "an integer >= 1"),
    (
        "train.epochs_per_stage",
        lambda v: _at_least(0)(v) or (_is_list(v) and len(v) > 0 and all(map(_at_least(0), v))),
        "an integer >= 0, or a list of them, one per stage",
    ),
    ("train.batch_size", _at_least(1), "an integer >= 1"),
    ("train.steps_per_epoch", _optional(_at_least(1)), "null or an integer >= 1"),
    ("train.eval_batch_size", _at_least(1), "an integer >= 1"),
    ("train.checkpoint_every_epochs", _at_least(0), "an integer >= 0 (0: only between stages)"),
    ("train.probe_size", _at_least(1), "an integer >= 1"),
    ("train.cache_max_mb", _at_least(0), "an integer >= 0"),
    ("train.num_threads", _optional(_at_least(1)), "null or an integer >= 1"),
    ("train.divergence_factor", lambda v: _at_least(1)(v) and v > 1, "a finite number > 1"),
    ("train.max_loss", _optional(_positive), "null or a finite number > 0"),
    ("model.width", _at_least(1), "an integer >= 1"),
    ("model.block_size", _at_least(1), "an integer >= 1"),
    ("model.kernel_size", lambda v: _at_least(1)(v) and v % 2 == 1, "an odd integer >= 1"),
    ("model.input_size", _optional(_at_least(1)), "null or an integer >= 1"),
    ("model.dropout", _fraction, "a number in [0, 1)"),
    ("data.val_fraction", _fraction, "a number in [0, 1)"),
    ("data.split_seed", _seed, f"an integer in 0..{SEED_LIMIT - 1}"),
    ("data.train_fraction", lambda v: _number(v) and 0 < v <= 1, "a number in (0, 1]"),
    ("data.n_samples", _at_least(4), "an integer >= 4"),
    ("data.centers", _at_least(2), "an integer >= 2"),
    ("data.cluster_std", _positive, "a finite number > 0"),
    ("data.test_fraction", lambda v: _fraction(v) and v > 0, "a number in (0, 1)"),
    ("data.image_size", _at_least(1), "an integer >= 1"),
    ("data.block_size", _at_least(1), "an integer >= 1"),
    ("data.eval_windows", _optional(_at_least(0)), "null or an integer >= 0 (0: all)"),
    ("strategy.finetune_epochs", _at_least(0), "an integer >= 0"),
    ("strategy.finetune_lr_factor", _positive, "a finite number > 0"),
    ("strategy.final_width", _optional(_at_least(1)), "null or an integer >= 1"),
    ("strategy.widen_by", _optional(_at_least(1)), "null or an integer >= 1"),
    ("strategy.noise", _at_least(0), "a finite number >= 0"),
    ("strategy.layers", _some_blocks, "null (every block) or a non-empty list of block indices"),
    ("strategy.gradmax_batches", _at_least(1), "an integer >= 1"),
    ("strategy.objective.classifier_epochs", _optional(_at_least(0)), "null or an integer >= 0"),
    ("optimizer.lr", _positive, "a finite number > 0"),
    ("optimizer.weight_decay", _at_least(0), "a finite number >= 0"),
    ("optimizer.momentum", _fraction, "a number in [0, 1)"),
    ("scheduler.step_size", _at_least(1), "an integer >= 1"),
    ("scheduler.gamma", _positive, "a finite number > 0"),
    ("scheduler.warmup_epochs", _at_least(0), "an integer >= 0"),
    ("scheduler.start_factor", lambda v: _positive(v) and v <= 1, "a number in (0, 1]"),
    ("scheduler.eta_min", _at_least(0), "a finite number >= 0"),
    ("trigger.steer", lambda v: isinstance(v, bool), "true or false"),
    ("logger.init_timeout_s", _positive, "a finite number > 0"),
]
