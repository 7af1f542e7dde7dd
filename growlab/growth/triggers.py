"""Growth triggers: when the open stage is done, asked after every epoch.

The `trigger` config group builds one `GrowthTrigger` per run. The stage loop calls
`begin_stage` when a stage opens, trains at most `max_epochs(planned)` epochs and, after each,
asks `stage_done` with what the epoch measured. A trigger's `state_dict` goes into the run's
`last` checkpoint after every epoch, so a resumed run decides exactly as an uninterrupted one.

`fixed` (the default) is the schedule of `train.epochs_per_stage`: a stage is done after its
planned epochs. The package's others: `plateau`, `budget` and `gap` decide from the epoch's
losses and FLOPs (growlab.growth.trigger_rules); `gradient` and `merit` from a first-order
signal measured on a few training batches (growlab.growth.trigger_signals). A trigger may also
stop growth early (`stop_growing`). A trigger that says where to grow (`steers`: gradient, which
block to widen; merit, where to insert) steers the next growth there with `steer=true`
(growlab.growth.steering). A user's trigger is a subclass in their own package plus a
YAML in a `trigger` folder of their config path (examples/my_growth/triggers.py,
examples/conf/trigger/).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, ClassVar

from hydra.utils import get_class, instantiate
from omegaconf import OmegaConf

from growlab.config import ConfigError
from growlab.growth.nets import GrowableNet
from growlab.growth.widening import GrowthData


@dataclass(frozen=True)
class EpochReport:
    """What one epoch of the open stage measured (losses in the objective's units)."""

    stage: int  # index of the open stage
    epoch: int  # epochs trained in this stage, this one included (1 after the first)
    planned: int  # the stage's planned epochs (train.epochs_per_stage, or its fine-tune epochs)
    phase: str  # "train", "grow" or "finetune"
    train_loss: float
    val_loss: float
    val_acc: float
    chance_loss: float = math.nan  # the validation loss of knowing nothing (NaN: unknown)
    cum_train_flops: float = 0.0  # the run's training FLOPs so far, signals included
    epoch_flops: float = 0.0  # training FLOPs of one epoch of this stage


@dataclass
class GrowthTrigger:
    """Decides when a stage is done. Subclasses are dataclasses: their fields are the config
    knobs (`trigger.<field>=...`); what they remember between epochs is in `state_dict`."""

    # The model families whose networks it can measure (None: any), checked before a run starts.
    models: ClassVar[tuple[str, ...] | None] = None
    # What its `grow_at` says (growlab.growth.steering: "insert" or "widen"); None: nothing.
    steers: ClassVar[str | None] = None
    # Grow where the trigger says (`grow_at`) rather than where the strategy would.
    steer: bool = False

    def check(self, name: str, model_name: str) -> None:
        """Refuse, before any work, a model it cannot measure (`name`: the trigger's own)."""
        if self.models is not None and model_name not in self.models:
            raise ConfigError(
                f"trigger={name} needs model={'|'.join(self.models)}, got model={model_name}; "
                f"valid choices: {', '.join(self.models)}"
            )

    def begin_stage(self, stage: int, planned: int) -> None:
        """A stage opens (not called when a run resumes inside one)."""

    def max_epochs(self, planned: int) -> int:
        """The most epochs a stage may train; the loop stops there whatever `stage_done` says."""
        return planned

    def stage_done(self, report: EpochReport) -> bool:
        return report.epoch >= report.planned

    def stop_growing(self) -> str | None:
        """Asked when a stage ends (from what the trigger remembers): why growth should stop
        here (the stages left that grow are dropped; a fine-tune stage still runs), or None."""
        return None

    # A trigger that looks at the network after each epoch (a signal such as a gradient)
    # sets this and implements `measure`; its cost counts in the run's training FLOPs.
    measures: ClassVar[bool] = False

    def measure(self, net: GrowableNet, data: GrowthData, forward_flops: float) -> float:
        """Compute the signal on the network as the epoch left it, before `stage_done`;
        `forward_flops`: one sample's forward pass. Returns the FLOPs it spent."""
        return 0.0

    def grow_at(self) -> int | None:
        """Where the next growth should happen, as the strategy's `grow(..., at)` takes it
        (None: it has not said)."""
        return None

    def state_dict(self) -> dict[str, Any]:
        """What it remembers between epochs, as plain values (saved in the `last` checkpoint)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            setattr(self, name, value)


@dataclass
class FixedEpochs(GrowthTrigger):
    """Every stage trains its planned epochs (`train.epochs_per_stage`)."""


DEFAULT_TARGET = f"{FixedEpochs.__module__}.{FixedEpochs.__qualname__}"


def is_default(node: dict[str, Any]) -> bool:
    """The built-in fixed schedule with no knobs (`steer` at its default, false): runs from
    before triggers existed."""
    knobs = {k: v for k, v in node.items() if not (k == "steer" and v is False)}
    return knobs == {"name": "fixed", "_target_": DEFAULT_TARGET}


def build_trigger(node: Any) -> GrowthTrigger:
    """The trigger of a composed `trigger` config (None or absent: the fixed schedule)."""
    if node is None:
        return FixedEpochs()
    config = OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node
    assert isinstance(config, dict)
    name = config.pop("name", None)
    if config.get("steer") is False:  # every trigger's default: a class need not know the knob
        del config["steer"]
    try:
        trigger = instantiate(config)
    except Exception as exc:  # noqa: BLE001 - an unimportable class or a bad field: one line
        cause = exc.__cause__ or exc  # Hydra wraps what the class raised
        reason = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
        keys = _fields_of(config) if isinstance(cause, TypeError) else ""
        raise ConfigError(f"trigger={name} cannot be built: {reason}{keys}") from None
    if not isinstance(trigger, GrowthTrigger):
        raise ConfigError(
            f"trigger._target_={config.get('_target_')} does not build a "
            f"{GrowthTrigger.__module__}.GrowthTrigger"
        )
    return trigger


def _fields_of(config: dict[str, Any]) -> str:
    """The knobs the trigger's class takes, to name them when a key is wrong."""
    try:
        cls = get_class(str(config.get("_target_")))
    except Exception:  # noqa: BLE001 - the class itself is the problem
        return ""
    if not dataclasses.is_dataclass(cls):
        return ""
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    return f"; valid keys: {', '.join(names) or '(none)'}"
