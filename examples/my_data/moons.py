"""Two interleaving half-moons (scikit-learn's make_moons): a 2-D vector data set of your own.

Registered by name when growlab imports this module, which examples/conf/data/moons.yaml asks
for with `module: my_data.moons`; run with examples/ on PYTHONPATH:
    PYTHONPATH=examples python -m growlab hydra.searchpath=[file://examples/conf] data=moons
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.datasets import make_moons

from growlab.config import DataConfig
from growlab.data import Arrays, DataKind, register_dataset


@dataclass
class MoonsConfig(DataConfig):
    """The keys data=moons takes: growlab checks the YAML and the command line against them."""

    n_samples: int = 1000
    noise: float = 0.2
    test_fraction: float = 0.3


@register_dataset(DataKind.vector, schema=MoonsConfig)
def moons(cfg: MoonsConfig) -> Arrays:
    """(x_train, y_train, x_test, y_test): N x 2 float32 points and their 0/1 labels."""
    x, y = make_moons(n_samples=cfg.n_samples, noise=cfg.noise, random_state=cfg.split_seed)
    n_train = int(round(len(y) * (1 - cfg.test_fraction)))
    x = x.astype(np.float32)
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:]
