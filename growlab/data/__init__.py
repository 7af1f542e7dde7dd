"""Data sets as in-memory tensors: one `load_data(cfg.data)` for every registered data set.

Each data set registers itself by name where it is defined (growlab.data.registry); the
built-in ones are the modules of growlab.data.sets, a user's own are found through
`data.module`.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from omegaconf import OmegaConf

from growlab.config import ConfigError
from growlab.data import sets as _builtin_sets  # noqa: F401 - registers the built-in data sets
from growlab.data.registry import (
    Arrays,
    DataKind,
    DataSet,
    data_config,
    find_dataset,
    register_dataset,
    registered,
)
from growlab.data.splits import DataSplits, finish, shuffled

__all__ = [
    "Arrays",
    "DataKind",
    "DataSet",
    "DataSplits",
    "data_config",
    "find_dataset",
    "load_arrays",
    "load_data",
    "register_dataset",
    "registered",
    "require_data",
]


def load_arrays(cfg: Any) -> Arrays:
    """The data set's (x_train, y_train, x_test, y_test) as its loader gives them, checked
    against the kind of input it declares."""
    arrays = _checked_arrays(*data_config(cfg))
    if isinstance(arrays, DataSplits):
        raise ConfigError(f"data={arrays.name} gives its own splits, not arrays: use load_data")
    return arrays


def _checked_arrays(dataset: DataSet, typed: Any) -> Arrays | DataSplits:
    arrays = dataset.load(typed)
    parts = (arrays.x_train, arrays.x_test) if isinstance(arrays, DataSplits) else arrays[::2]
    for part, x in zip(("x_train", "x_test"), parts, strict=True):
        if not dataset.kind.fits(x):
            raise ConfigError(
                f"data={dataset.name} is registered as {dataset.kind.words} data, but its "
                f"loader ({dataset.origin}) gives {part} of shape {tuple(x.shape)}"
            )
    return arrays


def load_data(cfg: Any) -> DataSplits:
    """The dataset's splits; runs of one process (a basic-launcher sweep) share one copy.

    Nothing in growlab writes into these tensors, so sharing them between runs is safe.
    """
    key = json.dumps(OmegaConf.to_container(cfg, resolve=True, enum_to_str=True), sort_keys=True)
    return _load_data(key)


@functools.lru_cache(maxsize=2)
def _load_data(key: str) -> DataSplits:
    dataset, typed = data_config(json.loads(key))
    arrays = _checked_arrays(dataset, typed)
    if isinstance(arrays, DataSplits):  # split by the data set itself (token streams)
        return arrays
    x_train, y_train, x_test, y_test = arrays
    splits = finish(
        dataset.name,
        x_train,
        y_train,
        x_test,
        y_test,
        typed.val_fraction,
        typed.split_seed,
        typed.train_fraction,
    )
    return shuffled(splits, typed.split_seed) if typed.shuffle_labels else splits


def require_data(cfg: Any) -> None:
    """A ConfigError naming what is missing when the dataset's files are absent (no loading)."""
    dataset, typed = data_config(cfg)
    if dataset.require is not None:
        dataset.require(typed)
