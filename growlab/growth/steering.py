"""Steering: a growth trigger that says where to grow (`trigger.steer=true`) decides where the
next growth happens, instead of the strategy's own place.

Positions are in the strategy's terms, what its `grow(net, data, at)` takes:
- "insert" (depth strategies, growlab.growth.strategies.GrowthStrategy): `at` is the index in
  the block list the new block goes to, 1..depth (block 0 maps the input to the width; depth:
  just before the head). `trigger=merit` measures the candidate layer after each block i
  (0..depth-1) and says "after block i", index i + 1.
- "widen" (width strategies, growlab.growth.width_strategy): `at` is the one block (0..depth-1)
  that widens this growth, by strategy.widen_by units; the others keep their width.
  `trigger=gradient` says which block's best new unit gains most.

A trigger that has not measured yet (a stage shorter than its min_epochs) says nothing: the
growth happens at the strategy's own place and the stage record says so (`steered: false`).
What the loop passed is recorded as the stage's `grow_at`, which growlab.evaluate replays.
"""

from __future__ import annotations

from growlab.config import ConfigError
from growlab.growth.strategies import GrowthStrategy
from growlab.growth.triggers import GrowthTrigger

# What each kind of position means, for messages.
KINDS = {
    "insert": "where to insert a block (a depth strategy)",
    "widen": "which block to widen (a width strategy)",
}
# The package's triggers that say where to grow, by the kind of position they give.
STEERING_TRIGGERS = {"insert": "merit", "widen": "gradient"}


def check_steering(trigger: GrowthTrigger, name: str, strategy: GrowthStrategy) -> None:
    """Refuse, before any work, `trigger.steer=true` where the trigger cannot steer the
    strategy's growth (`name`: the trigger's config name)."""
    if not trigger.steer:
        return
    valid = (
        "trigger=merit with a depth strategy (freeze-all-but-new, identity-insert, "
        "finetune-all-after, ...), trigger=gradient with a width strategy (gradmax-widen, "
        "net2wider, random-widen), or trigger.steer=false"
    )
    if trigger.steers is None:
        raise ConfigError(
            f"trigger.steer=true: trigger={name} does not say where to grow; valid: {valid}"
        )
    if not strategy.grows:
        raise ConfigError(
            f"trigger.steer=true: strategy={strategy.name} does not grow, so nothing can be "
            "steered; valid: a strategy that grows, or trigger.steer=false"
        )
    if strategy.steerable != trigger.steers:
        can = KINDS.get(strategy.steerable or "", "no position")
        raise ConfigError(
            f"trigger.steer=true: trigger={name} says {KINDS[trigger.steers]}, but "
            f"strategy={strategy.name} takes {can}; valid: "
            f"trigger={STEERING_TRIGGERS.get(strategy.steerable or '', 'none')} for "
            f"strategy={strategy.name}, or {valid}"
        )
    if strategy.position is not None:
        raise ConfigError(
            f"trigger.steer=true: strategy.position={strategy.position} fixes where to insert; "
            "valid: strategy.position=null (the trigger decides), or trigger.steer=false"
        )
    layers = getattr(strategy, "layers", None)
    if layers is not None:
        raise ConfigError(
            f"trigger.steer=true: strategy.layers={list(layers)} fixes which blocks widen; "
            "valid: strategy.layers=null (the trigger picks one block per growth), or "
            "trigger.steer=false"
        )


def steered_position(trigger: GrowthTrigger) -> tuple[int | None, bool | None]:
    """The position the next growth is steered to (None: the strategy's own place) and whether
    the trigger gave it (None: not steering; False: it had not said, the default is used)."""
    if not trigger.steer:
        return None, None
    at = trigger.grow_at()
    return at, at is not None
