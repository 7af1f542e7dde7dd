"""Fashion-MNIST from Debian's `dataset-fashion-mnist` package (gzipped IDX files), read with
torchvision's FashionMNIST class once and cached as uint8 tensors."""

from __future__ import annotations

import gzip
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from growlab.config import ConfigError, DataConfig
from growlab.data.registry import Arrays, DataKind, register_dataset
from growlab.data.splits import unit_scaled
from growlab.data.tensor_cache import cache_dir, cached
from growlab.engine.files import atomic_writer

FASHION_MNIST_DIR = Path(
    os.environ.get("GROWLAB_FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist")
)
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


def _require(cfg: DataConfig) -> None:
    require_fashion_mnist()
    require_cache_folder()


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


@register_dataset(DataKind.image, require=_require)
def fashion_mnist(cfg: DataConfig) -> Arrays:
    def build() -> Arrays:
        from torchvision.datasets import FashionMNIST  # only on a cache miss: it costs a second

        root = raw_fashion_mnist_root()
        out: list[np.ndarray] = []
        for train in (True, False):
            ds = FashionMNIST(root=str(root), train=train, download=False)
            out += [ds.data.numpy()[:, None], ds.targets.numpy()]
        return out[0], out[1], out[2], out[3]

    require_fashion_mnist()  # the same clear error whether or not the tensors are cached
    key = {"name": "fashion_mnist", "root": str(FASHION_MNIST_DIR), "version": 1}
    x_train, y_train, x_test, y_test = cached(key, [FASHION_MNIST_DIR], build)
    # uint8 in the cache (4x smaller), scaled here.
    return unit_scaled(x_train), y_train, unit_scaled(x_test), y_test
