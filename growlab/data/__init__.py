"""Datasets as in-memory tensors: one `load_data(cfg.data)` for every data set growlab knows."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import numpy as np
from omegaconf import OmegaConf

from growlab.config import DatasetName
from growlab.data import builtin, torchvision_data
from growlab.data.builtin import FASHION_MNIST_DIR
from growlab.data.splits import DataSplits, finish

__all__ = ["FASHION_MNIST_DIR", "DataSplits", "load_data", "require_data"]


def _loader(name: DatasetName) -> Callable[[Any], tuple[np.ndarray, ...]]:
    if name in builtin.LOADERS:
        return builtin.LOADERS[name]
    # CIFAR-10, MNIST and Flowers102 come through torchvision's dataset classes.
    return torchvision_data.LOADERS[name]


def load_data(cfg: Any) -> DataSplits:
    """The dataset's splits; runs of one process (a basic-launcher sweep) share one copy.

    Nothing in growlab writes into these tensors, so sharing them between runs is safe.
    """
    key = json.dumps(OmegaConf.to_container(cfg, resolve=True, enum_to_str=True), sort_keys=True)
    return _load_data(key)


@functools.lru_cache(maxsize=2)
def _load_data(key: str) -> DataSplits:
    cfg = SimpleNamespace(**json.loads(key))
    name = DatasetName(cfg.name)
    x_train, y_train, x_test, y_test = _loader(name)(cfg)
    return finish(
        name.value,
        x_train,
        y_train,
        x_test,
        y_test,
        cfg.val_fraction,
        cfg.split_seed,
        getattr(cfg, "train_fraction", 1.0),
    )


def require_data(cfg: Any) -> None:
    """A ConfigError naming what is missing when the dataset's files are absent (no loading)."""
    name = DatasetName(cfg.name)
    if name is DatasetName.fashion_mnist:
        builtin.require_fashion_mnist()
        builtin.require_cache_folder()
    elif name not in builtin.LOADERS and not cfg.download:
        torchvision_data.require_files(name, torchvision_data.resolve_root(cfg))
