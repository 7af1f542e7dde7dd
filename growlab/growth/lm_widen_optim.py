"""Adam's state through a widen-lm duplication, so the grown model's next step changes its
logits as the small model's step would (staged training's optimizer-state transforms).

A widened parameter is W' = A * tile(W) (A = 1 for a copied entry, 1/k for weights reading a
duplicated activation); by the symmetry of the copies its gradient is g' = B * tile(g), B = 1/k
for everything but the logits layer (B = 1: the logits are not duplicated). Adam's step
lr * m / (sqrt(v) + eps) is invariant to the gradient's scale, so keeping W' + dW' =
A * tile(W + dW) takes, per parameter: moments m' = B tile(m) and v' = B^2 tile(v), the step
count kept, eps' = B eps, learning rate lr' = A lr, and weight decay wd' = wd B / A (Adam's L2)
or wd / A (AdamW's decoupled). A per-parameter learning rate is part of the transform: moments
alone cannot do it, because Adam's update does not scale with the gradient. The scales are
recorded in the architecture (`param_scales`), so a resumed run builds the same groups.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from growlab.config import ConfigError
from growlab.growth.lm_widen import Widening, widened_value
from growlab.growth.strategies import StateCarry

LOGITS = "head.out.weight"
# Parameter name -> (A, B): its value and gradient scale after the widening.
Scales = dict[str, list[float]]


def scales_of(widening: Widening, name: str, old: torch.Tensor) -> list[float]:
    value = widened_value(widening, name, torch.ones_like(old))
    a = float(value.flatten()[0])
    if not torch.all(value == a):
        raise ConfigError(
            f"{name} is widened with more than one scale (strategy.keep_heads=true scales the "
            "queries only): its Adam state cannot be carried; valid: keep_heads=false"
        )
    return [a, 1.0 if name.endswith(LOGITS) else 1.0 / widening.k]


def param_scales(widening: Widening, old: Mapping[str, torch.Tensor]) -> Scales:
    return {name: scales_of(widening, name, value) for name, value in old.items()}


def scaled_groups(
    params: Mapping[str, nn.Parameter], scales: Scales, defaults: dict[str, Any], decoupled: bool
) -> list[dict[str, Any]]:
    """One parameter group per scaled parameter (lr A, eps B, weight decay), one for the rest."""
    groups: list[dict[str, Any]] = []
    rest = []
    lr, eps, decay = defaults["lr"], defaults["eps"], defaults.get("weight_decay", 0.0)
    for name, param in params.items():
        if name not in scales:
            rest.append(param)
            continue
        a, b = scales[name]
        wd = decay / a if decoupled else decay * b / a
        groups.append({"params": [param], "lr": lr * a, "eps": eps * b, "weight_decay": wd})
    return groups + ([{"params": rest}] if rest else [])


def is_decoupled(optimizer: torch.optim.Optimizer) -> bool:
    if not isinstance(optimizer, torch.optim.Adam | torch.optim.AdamW):
        raise ConfigError(
            f"optimizer {type(optimizer).__name__}: the widen-lm state transform is Adam's; "
            "valid: optimizer=adam|adamw"
        )
    return isinstance(optimizer, torch.optim.AdamW) or bool(
        optimizer.defaults.get("decoupled_weight_decay")
    )


def moment_carry(
    widening: Widening, old: Mapping[str, nn.Parameter], new: Mapping[str, nn.Parameter]
) -> StateCarry:
    """What gives each widened parameter its transformed Adam state (old optimizer -> new)."""

    def carry(before: torch.optim.Optimizer, after: torch.optim.Optimizer) -> None:
        for name, param in new.items():
            state = before.state.get(old[name])
            if state:
                a, b = scales_of(widening, name, old[name])
                after.state[param] = {
                    k: _moment(widening, name, k, v, a, b) for k, v in state.items()
                }

    return carry


def _moment(widening: Widening, name: str, key: str, value: Any, a: float, b: float) -> Any:
    if key == "exp_avg":
        return widened_value(widening, name, value) * (b / a)
    if key in ("exp_avg_sq", "max_exp_avg_sq"):
        return widened_value(widening, name, value) * (b * b / a)
    return value.clone() if isinstance(value, torch.Tensor) else value
