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
from collections.abc import Iterator
from typing import Any

import torch
from hydra.errors import InstantiationException
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from growlab.config import ConfigError
from growlab.data import DataKind, data_config, registered, require_data
from growlab.engine.optim import optimizer_factory
from growlab.engine.schedules import build_scheduler
from growlab.growth.families import IMAGES, SIGNALS, TOKENS, VECTORS, family_of, model_config
from growlab.growth.steering import check_steering
from growlab.growth.strategies import GrowthStrategy, build_strategy, stage_plan
from growlab.growth.triggers import build_trigger
from growlab.validation_rules import RULES

# The rank of one sample of each kind of data set (growlab.data.registry), what a model
# family's `accepts` is asked about.
SAMPLE_RANKS = {
    DataKind.vector: VECTORS,
    DataKind.signal: SIGNALS,
    DataKind.image: IMAGES,
    DataKind.tokens: TOKENS,
}
DEVICES = ("auto", "cpu", "cuda")


_ABSENT = object()


def validate(cfg: Any, environment: bool = True) -> GrowthStrategy:
    """Raise ConfigError for the first value or combination this run cannot use; else return
    the strategy the check built (the job's run uses it rather than building another)."""
    try:
        return _validate(cfg, environment)
    except OmegaConfBaseException as exc:  # a deleted key (~depth), ???, a broken ${...}
        key = f"{exc.full_key}: " if exc.full_key else ""
        raise ConfigError(f"{key}{_reason(exc)}") from None


def _validate(cfg: Any, environment: bool) -> GrowthStrategy:
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
    strategy = _check_strategy(cfg)
    trigger = build_trigger(OmegaConf.select(cfg, "trigger", default=None))
    trigger_name = OmegaConf.select(cfg, "trigger.name", default="fixed")
    trigger.check(str(trigger_name), str(OmegaConf.select(cfg, "model.name")))
    check_steering(trigger, str(trigger_name), strategy)
    _check_optimizer(cfg)
    _check_scheduler(cfg, strategy)
    if environment:
        check_environment(cfg)
    return strategy


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


def _check_strategy(cfg: Any) -> GrowthStrategy:
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
    _check_targets(cfg, strategy)
    stage_plan(strategy, cfg)  # a per-stage epoch list of the wrong length
    return strategy


def _check_targets(cfg: Any, strategy: GrowthStrategy) -> None:
    """Float (regression) targets need an objective that trains on them, and it needs them."""
    task = str(OmegaConf.select(cfg, "data.task", default="classification"))
    objective = type(strategy.objective)
    if task == "regression" and not objective.float_targets:
        raise ConfigError(
            f"data.task=regression gives float targets, which strategy.objective "
            f"{objective.__name__} cannot train on; valid: objective=regression (or "
            "data.task=classification)"
        )
    if task != "regression" and objective.float_targets:
        raise ConfigError(
            f"objective {objective.__name__} trains on float targets, but data={cfg.data.name} "
            f"gives class labels (data.task={task}); valid: data=teacher data.task=regression"
        )


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


def _check_scheduler(cfg: Any, strategy: GrowthStrategy) -> None:
    """Build the scheduler on a dummy optimizer, so a bad argument is refused before the run."""
    node = OmegaConf.select(cfg, "scheduler", default=None)
    target = OmegaConf.select(cfg, "scheduler._target_", default=None)
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    try:
        horizon = max(p.epochs for p in stage_plan(strategy, cfg))
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
