"""MNIST-1D (Greydanus, 2020): 40-sample 1-D signals of ten digit templates, generated locally."""

from __future__ import annotations

from importlib.metadata import version

import numpy as np

from growlab.config import DataConfig
from growlab.data.registry import Arrays, DataKind, register_dataset
from growlab.data.tensor_cache import cached


@register_dataset(DataKind.signal)
def mnist1d(cfg: DataConfig) -> Arrays:
    def build() -> Arrays:
        # make_dataset generates the data locally; get_dataset would try to download it.
        from mnist1d.data import get_dataset_args, make_dataset

        args = get_dataset_args()
        args.seed = cfg.split_seed
        data = make_dataset(args)
        return (
            np.asarray(data["x"], dtype=np.float32),
            np.asarray(data["y"]),
            np.asarray(data["x_test"], dtype=np.float32),
            np.asarray(data["y_test"]),
        )

    key = {"name": "mnist1d", "seed": cfg.split_seed, "mnist1d": version("mnist1d")}
    return cached(key, [], build)
