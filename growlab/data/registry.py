"""Data sets by name: each registers itself where it is defined, as timm's `register_model` does.

    @register_dataset(DataKind.vector, schema=MoonsConfig)
    def moons(cfg: MoonsConfig) -> Arrays: ...

registers the data set `moons` (the function's name, or `name=`): its loader, the kind of input
it gives (which decides the models that can take it), its config schema, and an optional
`require(cfg)` that raises a ConfigError naming what is missing before any work. There is no
list of names to keep in step: a data YAML names its set by `name`, and a set defined outside
growlab by the `module` that registers it (`data.module`), which growlab imports first.

A data YAML composed with a ConfigStore schema (`/schema_data_blobs@_here_`) is type-checked by
Hydra; one that is not (a user's, whose schema Hydra cannot know before the module is imported)
is checked against the registered schema by `data_config` before the run starts.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, TypeVar

import numpy as np
from omegaconf import OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException

from growlab.config import ConfigError, DataConfig
from growlab.data.splits import DataSplits

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
Loader = TypeVar("Loader", bound=Callable[..., Arrays | DataSplits])


class DataKind(str, Enum):
    """The input a data set gives, as `x` arrays of these shapes (N examples)."""

    vector = "vector"  # N x F features
    image = "image"  # N x C x H x W
    signal = "signal"  # N x L or N x C x L, a 1-D signal
    # N x T integer ids (windows of a text): the loader gives its own splits (a TokenSplits,
    # growlab.data.tokens), whose training windows are sampled (train.steps_per_epoch).
    tokens = "tokens"

    @property
    def words(self) -> str:
        return {"signal": "1-D signal", "tokens": "token-id"}.get(self.value, self.value)

    @property
    def sampled(self) -> bool:
        """Whether an epoch draws its batches at random rather than passing over the data."""
        return self is DataKind.tokens

    def fits(self, x: Any) -> bool:
        if self is DataKind.tokens:
            return x.ndim == 2 and not x.dtype.is_floating_point
        return x.ndim in {"vector": (2,), "image": (4,), "signal": (2, 3)}[self.value]


@dataclass(frozen=True)
class DataSet:
    """A registered data set. `load(cfg)` returns (x_train, y_train, x_test, y_test) arrays,
    images scaled but not normalised (growlab holds out validation and normalises with training
    statistics), or finished splits (a DataSplits, e.g. token streams split by play); `cfg` is
    an instance of `schema`."""

    name: str
    kind: DataKind
    load: Callable[[Any], Arrays | DataSplits]
    schema: type[DataConfig] = DataConfig
    require: Callable[[Any], None] | None = None

    @property
    def origin(self) -> str:
        return f"{self.load.__module__}.{self.load.__qualname__}"


_REGISTRY: dict[str, DataSet] = {}


def register_dataset(
    kind: DataKind | str,
    *,
    name: str | None = None,
    schema: type[DataConfig] = DataConfig,
    require: Callable[[Any], None] | None = None,
) -> Callable[[Loader], Loader]:
    """Register the decorated loader as a data set named after it (or `name`)."""
    if not (isinstance(schema, type) and issubclass(schema, DataConfig)):
        raise TypeError(f"schema={schema!r} is not a dataclass derived from DataConfig")

    def register(load: Loader) -> Loader:
        dataset = DataSet(name or load.__name__, DataKind(kind), load, schema, require)
        old = _REGISTRY.get(dataset.name)
        if old is not None and old.origin != dataset.origin:
            raise ValueError(
                f"data set {dataset.name} is registered twice: by {old.origin} "
                f"and by {dataset.origin}"
            )
        _REGISTRY[dataset.name] = dataset
        return load

    return register


def registered(kinds: tuple[DataKind, ...] = tuple(DataKind)) -> list[str]:
    """The names of the registered data sets of these kinds, sorted."""
    return sorted(name for name, ds in _REGISTRY.items() if ds.kind in kinds)


def find_dataset(name: Any, module: Any = None) -> DataSet:
    """The data set registered as `name`, after importing `module` (which registers it)."""
    if module is not None:
        try:
            importlib.import_module(str(module))
        except Exception as exc:  # noqa: BLE001 - any import failure is the same refusal
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            hint = ""
            if isinstance(exc, ModuleNotFoundError):
                hint = "; is its package importable here? e.g. PYTHONPATH=<folder holding it>"
            raise ConfigError(
                f"data.module={module} cannot be imported ({type(exc).__name__}: {reason}){hint}"
            ) from None
    dataset = _REGISTRY.get(str(name))
    if dataset is None:
        where = f"data.module={module} does not register it; " if module is not None else ""
        raise ConfigError(
            f"data.name={name} is not a registered data set; {where}registered: "
            f"{', '.join(registered())} (one of your own: set data.module to the module "
            "that registers it with growlab.data.register_dataset)"
        )
    return dataset


def data_config(node: Any) -> tuple[DataSet, DataConfig]:
    """The data set a composed `data` node names and the node as its schema's instance
    (defaults filled in); an unknown key or a wrong type is a ConfigError."""
    raw = OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node
    assert isinstance(raw, Mapping)
    fields = {str(k): v for k, v in raw.items() if k != "module"}
    dataset = find_dataset(fields.get("name"), raw.get("module"))
    try:
        typed = OmegaConf.merge(OmegaConf.structured(dataset.schema), fields)
        instance = OmegaConf.to_object(typed)
    except ConfigKeyError as exc:
        valid = [f.name for f in dataclasses.fields(dataset.schema)]
        near = difflib.get_close_matches(str(exc.key), valid, n=1)
        nearest = f"; nearest valid key: data.{near[0]}" if near else ""
        raise ConfigError(
            f"data.{exc.key} is not a key of data={dataset.name} "
            f"({dataset.schema.__name__}){nearest}"
        ) from None
    except OmegaConfBaseException as exc:
        reason = str(exc).strip().splitlines()[0]
        raise ConfigError(f"data.{exc.full_key}: {reason} (data={dataset.name})") from None
    assert isinstance(instance, DataConfig)
    return dataset, instance
