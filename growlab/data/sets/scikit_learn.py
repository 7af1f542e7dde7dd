"""scikit-learn's digits (8 x 8 images) and blobs (seed 004's 2-D points): offline, cached."""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

import numpy as np

from growlab.config import BlobsConfig, DataConfig
from growlab.data.registry import Arrays, DataKind, register_dataset
from growlab.data.splits import stratified_split
from growlab.data.tensor_cache import cached


def _sklearn_key(name: str, **options: Any) -> dict[str, Any]:
    # Importing scikit-learn costs about a second; its version in the key keeps the cache honest.
    return {"name": name, "scikit-learn": version("scikit-learn"), "version": 1, **options}


@register_dataset(DataKind.image)
def digits(cfg: DataConfig) -> Arrays:
    def build() -> Arrays:
        from sklearn.datasets import load_digits  # only on a cache miss: it costs a second

        bunch = load_digits()
        x = (bunch.images / 16.0).astype(np.float32)[:, None]  # N x 1 x 8 x 8
        train, test = stratified_split(bunch.target, 0.2, cfg.split_seed)
        return x[train], bunch.target[train], x[test], bunch.target[test]

    return cached(_sklearn_key("digits", split_seed=cfg.split_seed), [], build)


@register_dataset(DataKind.vector, schema=BlobsConfig)
def blobs(cfg: BlobsConfig) -> Arrays:
    def build() -> Arrays:
        from sklearn.datasets import make_blobs

        x, y = make_blobs(
            n_samples=cfg.n_samples,
            centers=cfg.centers,
            cluster_std=cfg.cluster_std,
            n_features=2,
            random_state=cfg.split_seed,
        )
        x = x.astype(np.float32)
        n_train = int(round(len(y) * (1 - cfg.test_fraction)))
        return x[:n_train], y[:n_train], x[n_train:], y[n_train:]

    options = {k: getattr(cfg, k) for k in ("n_samples", "centers", "cluster_std", "test_fraction")}
    return cached(_sklearn_key("blobs", split_seed=cfg.split_seed, **options), [], build)
