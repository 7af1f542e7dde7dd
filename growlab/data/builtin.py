"""The datasets that need no download: scikit-learn digits and blobs, Debian's Fashion-MNIST,
and MNIST-1D generated locally."""

from __future__ import annotations

import gzip
import os
import shutil
import tempfile
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np

from growlab.config import ConfigError, DatasetName
from growlab.data.splits import stratified_split
from growlab.data.tensor_cache import cache_dir, cached
from growlab.engine.files import atomic_writer

FASHION_MNIST_DIR = Path(
    os.environ.get("GROWLAB_FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist")
)


def _sklearn_key(name: str, **options: Any) -> dict[str, Any]:
    # Importing scikit-learn costs about a second; its version in the key keeps the cache honest.
    return {"name": name, "scikit-learn": version("scikit-learn"), "version": 1, **options}


def _digits(cfg: Any) -> tuple[np.ndarray, ...]:
    def build() -> tuple[np.ndarray, ...]:
        from sklearn.datasets import load_digits

        bunch = load_digits()
        x = (bunch.images / 16.0).astype(np.float32)[:, None]  # N x 1 x 8 x 8
        train, test = stratified_split(bunch.target, 0.2, cfg.split_seed)
        return x[train], bunch.target[train], x[test], bunch.target[test]

    return cached(_sklearn_key("digits", split_seed=cfg.split_seed), [], build)


def _blobs(cfg: Any) -> tuple[np.ndarray, ...]:
    def build() -> tuple[np.ndarray, ...]:
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


FASHION_MNIST_FILES = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
]


def require_fashion_mnist() -> None:
    """A clear error when the Debian package's files are absent."""
    missing = [f for f in FASHION_MNIST_FILES if not (FASHION_MNIST_DIR / f"{f}.gz").exists()]
    if missing:
        absent = ", ".join(m + ".gz" for m in missing)
        raise ConfigError(
            f"data=fashion_mnist: {FASHION_MNIST_DIR} lacks {absent}; "
            "install it with `apt-get install dataset-fashion-mnist` "
            "or point GROWLAB_FASHION_MNIST_DIR at a folder holding the gzipped IDX files"
        )


def require_cache_folder() -> None:
    """Fashion-MNIST is decompressed into the cache folder: refuse one that cannot be written
    before the run starts, rather than fail in the middle of loading."""
    root = cache_dir().parent
    raw = root / "FashionMNIST" / "raw"
    if all((raw / f).is_file() for f in FASHION_MNIST_FILES):
        return
    try:
        raw.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=raw):
            pass
    except OSError as exc:
        raise ConfigError(
            f"data=fashion_mnist needs a cache folder it can write, but {raw} cannot be "
            f"created or written ({exc.strerror}); valid: GROWLAB_CACHE_DIR set to a "
            "writable folder (default ~/.cache/growlab)"
        ) from None


def raw_fashion_mnist_root() -> Path:
    """Decompress the Debian package's gzipped IDX files where torchvision expects them."""
    require_fashion_mnist()
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

        root = raw_fashion_mnist_root()
        out: list[np.ndarray] = []
        for train in (True, False):
            ds = FashionMNIST(root=str(root), train=train, download=False)
            out += [ds.data.numpy()[:, None], ds.targets.numpy()]
        return tuple(out)

    require_fashion_mnist()  # the same clear error whether or not the tensors are cached
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

    key = {"name": "mnist1d", "seed": cfg.split_seed, "mnist1d": version("mnist1d")}
    return cached(key, [], build)


LOADERS: dict[DatasetName, Callable[[Any], tuple[np.ndarray, ...]]] = {
    DatasetName.digits: _digits,
    DatasetName.blobs: _blobs,
    DatasetName.fashion_mnist: _fashion_mnist,
    DatasetName.mnist1d: _mnist1d,
}
