"""Datasets as in-memory tensors: deterministic splits, normalised with training statistics."""

from __future__ import annotations

import functools
import gzip
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

from growlab.config import ConfigError, DatasetName
from growlab.files import atomic_writer
from growlab.tensor_cache import cache_dir, cached

FASHION_MNIST_DIR = Path(
    os.environ.get("GROWLAB_FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist")
)


@dataclass
class DataSplits:
    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    def to(self, device: torch.device) -> DataSplits:
        moved = {k: v.to(device) for k, v in vars(self).items() if isinstance(v, torch.Tensor)}
        return DataSplits(name=self.name, num_classes=self.num_classes, **moved)


def _stratified_split(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (kept, held_out) with `fraction` of each class held out, fixed by `seed`."""
    if fraction <= 0:
        return np.arange(len(y)), np.arange(0)
    rng = np.random.default_rng(seed)
    held: list[np.ndarray] = []
    for label in np.unique(y):
        members = np.flatnonzero(y == label)
        held.append(rng.permutation(members)[: int(round(fraction * len(members)))])
    held_out = np.sort(np.concatenate(held))
    kept = np.setdiff1d(np.arange(len(y)), held_out, assume_unique=True)
    return kept, held_out


def _finish(
    name: str,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    val_fraction: float,
    split_seed: int,
) -> DataSplits:
    kept, held = _stratified_split(y_train, val_fraction, split_seed)
    x_fit = x_train[kept]
    # Per-channel statistics of the training part only, so val/test stay unseen.
    axes = tuple(i for i in range(x_fit.ndim) if i != 1) if x_fit.ndim > 2 else (0,)
    mean = x_fit.mean(axis=axes, keepdims=True, dtype=np.float64).astype(np.float32)
    std = (x_fit.std(axis=axes, keepdims=True, dtype=np.float64) + 1e-8).astype(np.float32)

    def norm(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy((a.astype(np.float32, copy=False) - mean) / std)

    def labels(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.asarray(a, dtype=np.int64))

    return DataSplits(
        name=name,
        x_train=norm(x_fit),
        y_train=labels(y_train[kept]),
        x_val=norm(x_train[held]),
        y_val=labels(y_train[held]),
        x_test=norm(x_test),
        y_test=labels(y_test),
        num_classes=int(max(y_train.max(), y_test.max()) + 1),
    )


def _digits(cfg: Any) -> tuple[np.ndarray, ...]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = (bunch.images / 16.0).astype(np.float32)[:, None]  # N x 1 x 8 x 8
    train, test = _stratified_split(bunch.target, 0.2, cfg.split_seed)
    return x[train], bunch.target[train], x[test], bunch.target[test]


def _blobs(cfg: Any) -> tuple[np.ndarray, ...]:
    from sklearn.datasets import make_blobs

    x, y = make_blobs(
        n_samples=cfg.n_samples,
        centers=cfg.centers,
        cluster_std=cfg.cluster_std,
        n_features=2,
        random_state=cfg.split_seed,
    )
    n_train = int(round(len(y) * (1 - cfg.test_fraction)))
    return x[:n_train].astype(np.float32), y[:n_train], x[n_train:].astype(np.float32), y[n_train:]


FASHION_MNIST_FILES = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
]


def _require_fashion_mnist() -> None:
    """A clear error when the Debian package's files are absent."""
    missing = [f for f in FASHION_MNIST_FILES if not (FASHION_MNIST_DIR / f"{f}.gz").exists()]
    if missing:
        absent = ", ".join(m + ".gz" for m in missing)
        raise ConfigError(
            f"data=fashion_mnist: {FASHION_MNIST_DIR} lacks {absent}; "
            "install it with `apt-get install dataset-fashion-mnist` "
            "or point GROWLAB_FASHION_MNIST_DIR at a folder holding the gzipped IDX files"
        )


def _raw_fashion_mnist_root() -> Path:
    """Decompress the Debian package's gzipped IDX files where torchvision expects them."""
    _require_fashion_mnist()
    root = cache_dir().parent
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for f in FASHION_MNIST_FILES:
        target = raw / f
        if not target.exists():
            with (
                gzip.open(FASHION_MNIST_DIR / f"{f}.gz", "rb") as src,
                atomic_writer(target) as dst,
            ):
                shutil.copyfileobj(src, dst)
    return root


def _fashion_mnist(cfg: Any) -> tuple[np.ndarray, ...]:
    def build() -> tuple[np.ndarray, ...]:
        from torchvision.datasets import FashionMNIST

        root = _raw_fashion_mnist_root()
        out: list[np.ndarray] = []
        for train in (True, False):
            ds = FashionMNIST(root=str(root), train=train, download=False)
            out += [ds.data.numpy()[:, None], ds.targets.numpy()]
        return tuple(out)

    _require_fashion_mnist()  # the same clear error whether or not the tensors are cached
    key = {"name": "fashion_mnist", "root": str(FASHION_MNIST_DIR), "version": 1}
    x_train, y_train, x_test, y_test = cached(key, [FASHION_MNIST_DIR], build)
    # uint8 in the cache (4x smaller), scaled here.
    return x_train.astype(np.float32) / 255.0, y_train, x_test.astype(np.float32) / 255.0, y_test


def _mnist1d(cfg: Any) -> tuple[np.ndarray, ...]:
    def build() -> tuple[np.ndarray, ...]:
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

    from importlib.metadata import version

    key = {"name": "mnist1d", "seed": cfg.split_seed, "mnist1d": version("mnist1d")}
    return cached(key, [], build)


LOADERS: dict[DatasetName, Callable[[Any], tuple[np.ndarray, ...]]] = {
    DatasetName.digits: _digits,
    DatasetName.blobs: _blobs,
    DatasetName.fashion_mnist: _fashion_mnist,
    DatasetName.mnist1d: _mnist1d,
}


def _loader(name: DatasetName) -> Callable[[Any], tuple[np.ndarray, ...]]:
    if name in LOADERS:
        return LOADERS[name]
    # CIFAR-10, MNIST and Flowers102 come through torchvision's dataset classes.
    from growlab import torchvision_data

    return torchvision_data.LOADERS[name]


def load_data(cfg: Any) -> DataSplits:
    """The dataset's splits; runs of one process (a basic-launcher sweep) share one copy.

    Nothing in growlab writes into these tensors, so sharing them between runs is safe.
    """
    from omegaconf import OmegaConf

    key = json.dumps(OmegaConf.to_container(cfg, resolve=True, enum_to_str=True), sort_keys=True)
    return _load_data(key)


@functools.lru_cache(maxsize=2)
def _load_data(key: str) -> DataSplits:
    cfg = SimpleNamespace(**json.loads(key))
    name = DatasetName(cfg.name)
    x_train, y_train, x_test, y_test = _loader(name)(cfg)
    return _finish(name.value, x_train, y_train, x_test, y_test, cfg.val_fraction, cfg.split_seed)


def require_data(cfg: Any) -> None:
    """A ConfigError naming what is missing when the dataset's files are absent (no loading)."""
    name = DatasetName(cfg.name)
    if name is DatasetName.fashion_mnist:
        _require_fashion_mnist()
    elif name not in LOADERS and not cfg.download:
        from growlab import torchvision_data

        torchvision_data.require_files(name, torchvision_data.resolve_root(cfg))
