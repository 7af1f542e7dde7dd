"""CIFAR-10 through torchvision: 50000 / 10000 images, 3 x 32 x 32, 10 classes (the official
split), from the "python version" archive (cifar-10-python.tar.gz) unpacked under the data root
(growlab.data.torchvision_data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from growlab.config import TorchvisionDataConfig
from growlab.data.registry import Arrays, DataKind, register_dataset
from growlab.data.tensor_cache import cached
from growlab.data.torchvision_data import TorchvisionFolder, resolve_root, scaled

FILES = TorchvisionFolder(
    name="cifar10",
    folder=Path("cifar-10-batches-py"),
    files=(*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta"),
    layout=(
        "<root>/cifar-10-batches-py/data_batch_1 ... data_batch_5, test_batch, batches.meta "
        "(cifar-10-python.tar.gz unpacked)"
    ),
    md5_checked=True,
)


@register_dataset(DataKind.image, schema=TorchvisionDataConfig, require=FILES.require)
def cifar10(cfg: TorchvisionDataConfig) -> Arrays:
    from torchvision import datasets  # only here: importing torchvision costs a second

    root, download = resolve_root(cfg), bool(cfg.download)

    def build() -> Arrays:
        return FILES.both_splits(
            root,
            download,
            lambda train: datasets.CIFAR10(str(root), train=train, download=download),
            lambda ds: (
                np.ascontiguousarray(np.asarray(ds.data).transpose(0, 3, 1, 2)),
                np.asarray(ds.targets, dtype=np.int64),
            ),
        )

    return scaled(cached(FILES.key(root), [FILES.path(root)], build))
