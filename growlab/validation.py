"""Everything a run needs from its config, checked before any data is loaded or file written.

`validate` raises one `ConfigError` whose message names the key, the bad value and what is
allowed. The schemas catch wrong keys and types at composition; this module catches values no
type can rule out (a negative learning rate, an insert position past the network) and the
combinations a strategy's operator requires. `environment=True` also checks what only the
machine that runs the job can answer (a GPU, the dataset files); the sweeper skips that for a
SLURM sweep, whose jobs run elsewhere.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Callable, Iterator
from typing import Any

import torch
from hydra.errors import InstantiationException
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from growlab.config import ConfigError
from growlab.data import DataKind, data_config, registered, require_data
from growlab.engine.optim import optimizer_factory
from growlab.growth.families import IMAGES, SIGNALS, TOKENS, VECTORS, family_of, model_config
from growlab.growth.strategies import build_strategy, stage_plan
from growlab.growth.triggers import build_trigger

# The rank of one sample of each kind of data set (growlab.data.registry), what a model
# family's `accepts` is asked about.
SAMPLE_RANKS = {
    DataKind.vector: VECTORS,
    DataKind.signal: SIGNALS,
    DataKind.image: IMAGES,
    DataKind.tokens: TOKENS,
}
DEVICES = ("auto", "cpu", "cuda")


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


# (key, rule, what is allowed). A key absent from the composed config (a user's own optimizer
# without momentum, say) is skipped.
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
    ("logger.init_timeout_s", _positive, "a finite number > 0"),
]

_ABSENT = object()


def validate(cfg: Any, environment: bool = True) -> None:
    """Raise ConfigError for the first value or combination this run cannot use."""
    try:
        _validate(cfg, environment)
    except OmegaConfBaseException as exc:  # a deleted key (~depth), ???, a broken ${...}
        key = f"{exc.full_key}: " if exc.full_key else ""
        raise ConfigError(f"{key}{_reason(exc)}") from None


def _validate(cfg: Any, environment: bool) -> None:
    missing = sorted(_missing_keys(cfg))
    if missing:
        raise ConfigError(f"{missing[0]}=??? has no value; give it one on the command line")
    _check_known_keys(cfg)
    for key, rule, allowed in RULES:
        value = OmegaConf.select(cfg, key, default=_ABSENT)
        if value is not _ABSENT and not rule(value):
            raise ConfigError(f"{key}={value} is not allowed; valid: {allowed}")
    _check_depths(cfg)
    _check_combinations(cfg)
    _check_strategy(cfg)
    trigger = build_trigger(OmegaConf.select(cfg, "trigger", default=None))
    trigger_name = OmegaConf.select(cfg, "trigger.name", default="fixed")
    trigger.check(str(trigger_name), str(OmegaConf.select(cfg, "model.name")))
    _check_optimizer(cfg)
    _check_scheduler(cfg)
    if environment:
        check_environment(cfg)


def _missing_keys(cfg: Any) -> Iterator[str]:
    """Keys whose value is ???, outside `hydra` (whose job keys a sweeper fills in later)."""
    for key in cfg:
        if key == "hydra":
            continue
        node = cfg._get_node(key)
        if node._is_missing():
            yield str(key)
        elif isinstance(node, DictConfig | ListConfig):
            yield from OmegaConf.missing_keys(node)  # full keys already


def _check_known_keys(cfg: Any) -> None:
    """A key added with `+key=value` that its schema lacks (a typo such as
    `+train.epoch_per_stage`) would be silently ignored. A `_partial_` node (an optimizer or
    scheduler) passes extra keys to torch's class, which `_check_optimizer` and `_check_scheduler`
    build."""
    for path, node in _schema_nodes(cfg):
        fields = {f.name for f in dataclasses.fields(node._metadata.object_type)}
        for key in node:
            if key in fields or (not path and key == "hydra"):
                continue
            name = f"{path}.{key}" if path else str(key)
            known = [k for k in _leaf_keys(cfg) if k != name and not k.startswith(f"{name}.")]
            near = difflib.get_close_matches(name, known, n=1)
            nearest = f"; nearest valid key: {near[0]}" if near else ""
            raise ConfigError(f"{name} is not a key of this config{nearest}")


def _schema_nodes(node: Any, path: str = "") -> Iterator[tuple[str, DictConfig]]:
    """Every node backed by a dataclass schema, with its dotted path, but for a torch class's
    factory (`_partial_` with a `_target_`)."""
    if not isinstance(node, DictConfig) or node._is_none() or node._is_missing():
        return
    factory = "_partial_" in node and node.get("_target_") is not None
    if dataclasses.is_dataclass(node._metadata.object_type) and not factory:
        yield path, node
    for key in node:
        if not path and key == "hydra":
            continue
        yield from _schema_nodes(node._get_node(key), f"{path}.{key}" if path else str(key))


def _leaf_keys(node: Any, path: str = "") -> Iterator[str]:
    if isinstance(node, DictConfig | ListConfig) and not node._is_none():
        if isinstance(node, ListConfig):
            yield path
            return
        for key in node:
            if not path and key == "hydra":
                continue
            yield from _leaf_keys(node._get_node(key), f"{path}.{key}" if path else str(key))
    else:
        yield path


def _check_depths(cfg: Any) -> None:
    start = cfg.train.start_depth
    if cfg.depth < start:
        raise ConfigError(
            f"depth={cfg.depth} is below train.start_depth={start}; valid: depth >= {start}"
        )


def _check_strategy(cfg: Any) -> None:
    """Build the strategy (operator and objective included) and check what they declare."""
    try:
        strategy = build_strategy(cfg.strategy)
    except ConfigError:
        raise
    except (InstantiationException, TypeError, ValueError) as exc:
        name = cfg.strategy.name
        # A key the strategy or its operator does not take: Hydra's first line names only the
        # class, the TypeError it wraps names the key.
        cause = exc.__cause__ if isinstance(exc.__cause__, TypeError) else exc
        reason = _reason(cause)
        if reason.startswith("Error locating target"):  # e.g. a user's operator's package
            reason += " (is its package importable here? e.g. PYTHONPATH=<folder holding it>)"
        raise ConfigError(f"strategy={name} cannot be built: {reason}") from None
    strategy.check(cfg)
    stage_plan(strategy, cfg)  # a per-stage epoch list of the wrong length


def _check_combinations(cfg: Any) -> None:
    _check_model(cfg)
    device = str(cfg.device)
    if device not in DEVICES and not (device.startswith("cuda:") and device[5:].isdigit()):
        raise ConfigError(f"device={device} is not one of {', '.join(DEVICES)} (or cuda:N)")


def _check_model(cfg: Any) -> None:
    """The model's family is registered, its config fits the family's schema, and it takes
    the data."""
    model = model_config(cfg.model)
    family = family_of(model)
    family.check(model)
    dataset, _ = data_config(cfg.data)  # an unknown name, key or type is refused here
    if not family.accepts(SAMPLE_RANKS[dataset.kind]):
        takes = tuple(k for k in DataKind if family.accepts(SAMPLE_RANKS[k]))
        raise ConfigError(
            f"model={model['name']} needs {family.data} data, got data={dataset.name} "
            f"({dataset.kind.words} data); valid choices: {', '.join(registered(takes))}"
        )
    layers = model.get("n_layer")
    if layers is not None and layers != cfg.depth:
        raise ConfigError(
            f"model.n_layer={layers} but depth={cfg.depth}: the number of blocks is the run's "
            f"depth; set depth={layers} (model.n_layer follows it)"
        )
    if dataset.kind.sampled and cfg.train.steps_per_epoch is None:
        raise ConfigError(
            f"data={dataset.name} samples its training windows at random: an epoch needs "
            "train.steps_per_epoch (e.g. 100); valid: an integer >= 1"
        )


def _check_optimizer(cfg: Any) -> None:
    """Build the optimizer on a dummy parameter: whatever else it rejects is refused here too."""
    target = OmegaConf.select(cfg, "optimizer._target_", default="?")
    try:
        optimizer_factory(cfg.optimizer)([torch.nn.Parameter(torch.zeros(1))], lr=cfg.optimizer.lr)
    except (InstantiationException, ValueError, TypeError, RuntimeError) as exc:
        raise ConfigError(f"optimizer ({target}) rejects its settings: {_reason(exc)}") from None


def _check_scheduler(cfg: Any) -> None:
    """Build the scheduler on a dummy optimizer, so a bad argument is refused before the run."""
    from growlab.engine.schedules import build_scheduler

    node = OmegaConf.select(cfg, "scheduler", default=None)
    target = OmegaConf.select(cfg, "scheduler._target_", default=None)
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    try:
        horizon = max(p.epochs for p in stage_plan(build_strategy(cfg.strategy), cfg))
        build_scheduler(node, optimizer, horizon=max(horizon, 1))
    except (InstantiationException, ValueError, TypeError, KeyError) as exc:
        raise ConfigError(f"scheduler ({target}) rejects its settings: {_reason(exc)}") from None


def _reason(exc: BaseException) -> str:
    """The first line of a construction error, without Hydra's HYDRA_FULL_ERROR advice."""
    lines = str(exc).strip().splitlines() or [type(exc).__name__]
    return lines[0].split(", set env var HYDRA_FULL_ERROR")[0]


def check_environment(cfg: Any) -> None:
    """What only the machine running the job can answer: the device and the dataset files."""
    device = str(cfg.device)
    if device.startswith("cuda"):
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = int(device[5:]) if ":" in device else 0
        if index >= count:
            have = f"{count} CUDA device(s)" if count else "no CUDA GPU"
            raise ConfigError(f"device={device} but this machine has {have}; valid here: auto, cpu")
    require_data(cfg.data)
