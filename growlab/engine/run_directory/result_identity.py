"""What makes two runs the same run: their result config and its fingerprint.

The result config is every config key that can change the numbers a run produces, flattened to
dotted names. Beyond what the user wrote, it holds what the config leaves implicit but the run
still depends on:
- the default field values of every class a `strategy.*._target_` or `trigger._target_` names
  (the strategy, its operator and objective, the growth trigger), so a changed default is a
  changed run;
- `code.<target>`: a hash of the source files of every class outside growlab that a `_target_`
  names (a user's own operator, or model family via `model._target_`), so editing it is a
  changed run too; likewise `code.<module>` for the module outside growlab that `data.module`
  names (a user's own data set).
The fingerprint (a hash of the result config) names a sweep's run folders and lets the report
count each run once.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import importlib.util
import inspect
import json
from pathlib import Path
from typing import Any

from hydra.utils import get_class
from omegaconf import OmegaConf

from growlab.config import ConfigError
from growlab.growth.triggers import is_default

RESULT_GROUPS = (
    "model", "data", "strategy", "optimizer", "scheduler", "train", "depth", "seed",
)  # fmt: skip
# Knobs that change speed or bookkeeping, not the numbers a run produces.
NOT_RESULT = {
    "train.checkpoint_every_epochs",
    "train.num_threads",
    "train.cache_frozen_features",
    "train.cache_max_mb",
    "train.cuda_graphs",
    # Where the data set lives on this machine, not what it holds.
    "data.root",
    "data.download",
    "data.archive",
}
TARGET = "._target_"
# Groups whose `_target_` classes add their defaults and code hash to the result config (a
# model's `_target_` names a user's model family; growlab's families are found by name).
CLASS_GROUPS = ("strategy", "trigger", "model")
# Classes from these packages are growlab's or its pinned dependencies': versioned, not hashed.
VERSIONED_PACKAGES = ("growlab", "torch", "torchvision", "hydra", "omegaconf", "builtins")
FINGERPRINT_CHARS = 16


class UnknownTarget(ConfigError):
    """A `_target_` that cannot be imported; the message names it."""


def result_config(cfg: Any) -> dict[str, Any]:
    """The config keys that determine a run's result, flattened to dotted names, with the
    implicit defaults and code hashes of the classes the strategy names (module docstring)."""
    flat: dict[str, Any] = {}
    for group in RESULT_GROUPS:
        node = OmegaConf.select(cfg, group)
        if OmegaConf.is_config(node):
            node = OmegaConf.to_container(node, resolve=True, enum_to_str=True)
        flat.update(flatten(node, group))
    trigger = OmegaConf.select(cfg, "trigger", default=None)
    if OmegaConf.is_config(trigger):
        trigger = OmegaConf.to_container(trigger, resolve=True, enum_to_str=True)
    for key in ("data.shuffle_labels", "train.tf32"):
        if flat.get(key) is False:
            del flat[key]  # the default keeps the fingerprints of earlier runs
    if flat.get("data.task") == "classification":
        # data=teacher's default task and output count keep the fingerprints of its runs from
        # before it had a regression task (a regression run keeps both keys).
        del flat["data.task"]
        if flat.get("data.outputs") == 4:
            del flat["data.outputs"]
    if isinstance(trigger, dict) and not is_default(trigger):
        # The fixed schedule is every run's from before triggers: it keeps their fingerprints.
        flat.update(flatten(trigger, "trigger"))
    for key in [k for k in flat if k.startswith(CLASS_GROUPS) and k.endswith(TARGET)]:
        owner = key[: -len(TARGET)]
        cls = locate(str(flat[key]), key)
        # A model family's defaults are its schema's (growlab.growth.families.ModelFamily).
        defaults = class_defaults(getattr(cls, "schema", cls) if owner == "model" else cls)
        for name, value in defaults.items():
            dotted = f"{owner}.{name}"
            if dotted not in flat and not any(k.startswith(dotted + ".") for k in flat):
                flat[dotted] = value
        digest = code_hash(cls)
        if digest is not None:
            flat[f"code.{flat[key]}"] = digest
    if flat.get("trigger.steer") is False:
        # Not steering is what every trigger did before it could steer: their fingerprints stay.
        del flat["trigger.steer"]
    module = flat.get("data.module")
    if module is not None and str(module).split(".")[0] not in VERSIONED_PACKAGES:
        flat[f"code.{module}"] = module_hash(str(module))
    return {k: v for k, v in sorted(flat.items()) if k not in NOT_RESULT}


# Recorded in every summary's config but never fingerprinted when at its default: the fixed
# schedule is every run's from before triggers, whose fingerprints stay.
IMPLICIT = {"trigger.name": "fixed"}


def recorded_config(config: dict[str, Any]) -> dict[str, Any]:
    """The result config as a summary records it: the implicit defaults written out."""
    return {**IMPLICIT, **config}


def fingerprint(config: dict[str, Any]) -> str:
    """A hash of the result config; `lr=1` and `lr=1.0` are the same run."""
    text = json.dumps(_same_numbers(config), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:FINGERPRINT_CHARS]


def _same_numbers(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _same_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_same_numbers(v) for v in value]
    return value


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """A nested config as dotted keys (`{"a": {"b": 1}}` -> `{"a.b": 1}`); lists are values and an
    empty mapping has no key. growlab's one flattener: run identity and the report both use it."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: value}


def locate(target: str, key: str) -> type:
    try:
        return get_class(target)
    except Exception as exc:  # noqa: BLE001 - any import failure is the same refusal
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UnknownTarget(f"{key}={target} cannot be imported ({reason})") from None


def class_defaults(cls: type) -> dict[str, Any]:
    """The default value of every constructor argument that has one, as plain JSON values."""
    if dataclasses.is_dataclass(cls):
        out = {}
        for f in dataclasses.fields(cls):
            if not f.init:
                continue
            if f.default is not dataclasses.MISSING:
                out[f.name] = _plain(f.default)
            elif f.default_factory is not dataclasses.MISSING:
                out[f.name] = _plain(f.default_factory())
        return out
    try:
        parameters = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):
        return {}
    return {p.name: _plain(p.default) for p in parameters if p.default is not p.empty}


def _plain(value: Any) -> Any:
    """A default as the config would hold it (enums by value, objects by their class)."""
    if isinstance(value, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {"_target_": _dotted(type(value)), **dataclasses.asdict(value)}
    if isinstance(value, str | int | float | bool | type(None)):
        return value
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return _dotted(type(value))


def _dotted(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def code_hash(cls: type) -> str | None:
    """A hash of the source files defining `cls` and its bases outside growlab (None when
    every class in its hierarchy is growlab's or a pinned library's)."""
    files = sorted(
        {
            path
            for klass in cls.__mro__
            if klass.__module__.split(".")[0] not in VERSIONED_PACKAGES
            and (path := _source_file(klass)) is not None
        }
    )
    if not files:
        return None
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:FINGERPRINT_CHARS]


def module_hash(name: str) -> str:
    """A hash of the source file of module `name`, found without running it."""
    try:
        spec = importlib.util.find_spec(name)
    except Exception as exc:  # noqa: BLE001 - a parent package that fails to import included
        raise UnknownTarget(f"data.module={name} cannot be imported ({exc})") from None
    if spec is None or spec.origin is None or not Path(spec.origin).is_file():
        raise UnknownTarget(f"data.module={name} cannot be imported (no module named {name!r})")
    return hashlib.sha256(Path(spec.origin).read_bytes()).hexdigest()[:FINGERPRINT_CHARS]


def _source_file(cls: type) -> Path | None:
    try:
        name = inspect.getsourcefile(cls)
    except TypeError:  # a built-in class
        return None
    return Path(name) if name else None
