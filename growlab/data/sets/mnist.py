"""MNIST through torchvision: 60000 / 10000 images, 1 x 28 x 28, 10 classes (the official
split), from the uncompressed IDX files under the data root (growlab.data.torchvision_data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from growlab.config import TorchvisionDataConfig
from growlab.data.registry import Arrays, DataKind, register_dataset
from growlab.data.tensor_cache import cached
from growlab.data.torchvision_data import TorchvisionFolder, resolve_root, scaled

FILES = TorchvisionFolder(
    name="mnist",
    folder=Path("MNIST") / "raw",
    files=(
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ),
    layout=(
        "<root>/MNIST/raw/train-images-idx3-ubyte, train-labels-idx1-ubyte, "
        "t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (uncompressed: gunzip the .gz files)"
    ),
    md5_checked=False,  # torchvision checks only that the files are there
)


@register_dataset(DataKind.image, schema=TorchvisionDataConfig, require=FILES.require)
def mnist(cfg: TorchvisionDataConfig) -> Arrays:
    from torchvision import datasets  # only here: importing torchvision costs a second

    root, download = resolve_root(cfg), bool(cfg.download)

    def build() -> Arrays:
        return FILES.both_splits(
            root,
            download,
            lambda train: datasets.MNIST(str(root), train=train, download=download),
            lambda ds: (ds.data.numpy()[:, None].copy(), ds.targets.numpy().astype(np.int64)),
        )

    # The whole MNIST/ folder: torchvision prefers MNIST/processed/*.pt where they exist.
    return scaled(cached(FILES.key(root), [root / "MNIST"], build))
