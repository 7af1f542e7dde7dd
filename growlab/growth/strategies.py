"""A strategy: which operator grows the network, where, what trains after, and the schedule.

`conf/strategy/*.yaml` each configure one `GrowthStrategy` (with a nested operator and
objective), so a new strategy made of existing parts is one YAML file. The stage loop asks the
strategy for its plan and calls `grow` and `set_trainable`; it knows no strategy by name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from hydra.utils import instantiate
from omegaconf import OmegaConf

from growlab.config import ConfigError
from growlab.growth.families import model_config
from growlab.growth.nets import Arch, GrowableNet
from growlab.growth.objectives import Classification, Objective
from growlab.growth.operators import GrowthOperator
from growlab.growth.widening import GrowthData, Moved
from growlab.strategy_config import TrainableSet

# Sets grown parameters' optimizer state: (the old optimizer, the new one).
StateCarry = Callable[[Any, Any], None]


@dataclass
class Growth:
    """What a growth changed: the index of an inserted block (None: none inserted), and the
    parameters replaced by wider ones (old -> new), whose optimizer state can be carried."""

    index: int | None
    moved: Moved = field(default_factory=dict)
    # Sets the moved parameters' optimizer state (old optimizer, new one) where copying the
    # old values into the leading corner is not the rule (widen-lm's duplication); None: that.
    carry: StateCarry | None = None
    # Where it grew, as `grow(..., at)` takes it, so that passing it replays this growth
    # (recorded as the stage's `grow_at`); None: the strategy's own places (no one position).
    at: int | None = None


# train.epochs_per_stage: one number for every growth stage, or one per stage.
Epochs = int | Sequence[int]


def stage_epochs(epochs_per_stage: Epochs, stages: int, strategy: str) -> list[int]:
    """The epochs of each of `stages` stages (the fine-tune stage, if any, is not one of them:
    it trains strategy.finetune_epochs). A list must have one entry per stage."""
    if isinstance(epochs_per_stage, int):
        return [epochs_per_stage] * stages
    epochs = [int(n) for n in epochs_per_stage]
    if len(epochs) != stages:
        given = "[" + ",".join(map(str, epochs)) + "]"
        raise ConfigError(
            f"train.epochs_per_stage={given} has {len(epochs)} entries but strategy={strategy} "
            f"plans {stages} stage(s); valid: a list of {stages} integers >= 0, or one integer"
        )
    return epochs


def stage_plan(strategy: GrowthStrategy, cfg: Any) -> list[StagePlan]:
    """The run's stages from its config: the one place `train.epochs_per_stage` is read."""
    value = cfg.train.epochs_per_stage
    epochs = list(value) if OmegaConf.is_list(value) else value
    return strategy.plan(cfg.depth, cfg.train.start_depth, epochs)


@dataclass
class StagePlan:
    phase: str  # "train" (no growth), "grow" (insert a block first) or "finetune"
    epochs: int


def without_growth(plan: list[StagePlan], start: int) -> list[StagePlan]:
    """The plan with its growth stages from `start` on dropped (a trigger stopped growing)."""
    return plan[:start] + [p for p in plan[start:] if p.phase != "grow"]


@dataclass
class GrowthStrategy:
    """Grow from train.start_depth to depth, one block per stage, then optionally fine-tune.

    With no operator the network starts at its final depth (from scratch) and trains for as
    many epochs as the growth schedule would.
    """

    name: str
    operator: GrowthOperator | None = None
    objective: Objective = field(default_factory=Classification)
    trainable: TrainableSet = TrainableSet.new_and_head
    # Index in the block list where a new block goes; None: just before the head.
    position: int | None = None
    finetune_epochs: int = 0
    finetune_lr_factor: float = 0.1
    # The position `grow(..., at)` takes (growlab.growth.steering): "insert", a block-list
    # index for the new block; "widen", the one block to widen; None: it takes none.
    steerable: ClassVar[str | None] = "insert"

    def __post_init__(self) -> None:
        self.trainable = TrainableSet(self.trainable)

    @property
    def grows(self) -> bool:
        return self.operator is not None

    def initial_depth(self, depth: int, start_depth: int) -> int:
        return start_depth if self.grows else depth

    def starting_arch(self, arch: Arch) -> Arch:
        """The architecture the run starts from, given the config's initial one."""
        return arch

    def plan(self, depth: int, start_depth: int, epochs_per_stage: Epochs) -> list[StagePlan]:
        later = "grow" if self.grows else "train"
        epochs = stage_epochs(epochs_per_stage, depth - start_depth + 1, self.name)
        plan = [StagePlan("train" if k == 0 else later, n) for k, n in enumerate(epochs)]
        if self.finetune_epochs > 0:
            plan.append(StagePlan("finetune", self.finetune_epochs))
        return plan

    def check_parts(self, cfg: Any) -> dict[str, Any]:
        """The model config, once the objective and operator accept it (their refusals named
        as this strategy's)."""
        model = model_config(cfg.model)
        assert isinstance(model, dict)
        try:
            self.objective.check(model)
            if self.operator is not None:
                self.operator.check(model)
        except ConfigError as exc:
            raise ConfigError(f"strategy={self.name}: {exc}") from None
        return model

    def check(self, cfg: Any) -> None:
        """Everything the operator and objective require of the config, before the run."""
        self.check_parts(cfg)
        if self.operator is None or cfg.depth == cfg.train.start_depth:
            return
        start = cfg.train.start_depth
        # Growth inserts into networks of start_depth .. depth-1 blocks; block 0 maps the input
        # to the width, so index 1 .. start_depth is valid at every one of them.
        if self.position is not None and not 1 <= self.position <= start:
            raise ConfigError(
                f"strategy.position={self.position} is outside the network: the first growth "
                f"inserts into train.start_depth={start} block(s); valid: 1..{start}, "
                "or null (before the head)"
            )

    def grow(
        self, net: GrowableNet, data: GrowthData | None = None, at: int | None = None
    ) -> Growth:
        """Insert the operator's new block at block-list index `at` (None: strategy.position,
        else just before the head). `data`: training batches for operators that look at data
        (None when replaying a growth to rebuild a checkpoint)."""
        assert self.operator is not None
        index = at if at is not None else net.depth if self.position is None else self.position
        if not 1 <= index <= net.depth:
            name = "strategy.position" if at is None else "the growth position"
            raise ConfigError(
                f"{name}={index} is outside the valid range 1..{net.depth} "
                f"for a network with {net.depth} blocks (null inserts before the head)"
            )
        model = net.arch["model"]
        block = self.operator.make_block(model)
        self.operator.initialise(block, model)
        device = next(net.parameters()).device
        net.insert(index, self.operator.spec(model), block.to(device))
        return Growth(index, at=index)

    def set_trainable(self, net: GrowableNet, phase: str, new_index: int | None) -> None:
        """After a growth, the configured set; otherwise (first stage, fine-tune) everything."""
        if phase != "grow" or new_index is None or self.trainable is TrainableSet.all:
            net.set_trainable(set(range(net.depth)), head=True, stem=True)
        elif self.trainable is TrainableSet.new_and_head:
            net.set_trainable({new_index}, head=True)
        else:
            net.set_trainable({new_index}, head=False)


OPERATOR_SHORTHANDS = (
    "literal_seed_init",
    "noise",
    "gradmax_batches",
    "ramp_steps",
    "stack_factor",
    "keep_heads",
)


def build_strategy(node: Any) -> GrowthStrategy:
    """The strategy object of a composed `strategy` config, operator and objective included."""
    config = OmegaConf.to_container(node, resolve=True, enum_to_str=True)
    assert isinstance(config, dict)
    # Operator fields also settable as `strategy.<name>` (literal_seed_init for old command
    # lines): the strategy YAML passes them to its operator by interpolation.
    for name in OPERATOR_SHORTHANDS:
        config.pop(name, None)
    strategy = instantiate(config, _convert_="partial")
    if not isinstance(strategy, GrowthStrategy):
        raise ConfigError(
            f"strategy._target_={config.get('_target_')} does not build a GrowthStrategy"
        )
    return strategy
