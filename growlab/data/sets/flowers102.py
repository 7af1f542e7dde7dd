"""Oxford Flowers102 through torchvision, as 3 x S x S images (S = `data.image_size`, 128 in
seed 003), 102 classes, from 102flowers.tgz and the two .mat files under the data root
(growlab.data.torchvision_data).

Train is the official train + val splits (2040 images, 20 per class), test the official test
split (6149 images). The official val split goes into train because growlab holds out its own
stratified validation split (`data.val_fraction`) from train; keeping both would leave 10 images
per class to fit. Each image is converted to RGB, its shorter side resized to S (bilinear,
antialiased: torchvision's `Resize(S)`), then centre-cropped to S x S, so the aspect ratio is
kept and the borders of the longer side are cut.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from growlab.config import ConfigError, Flowers102Config
from growlab.data.registry import Arrays, DataKind, register_dataset
from growlab.data.tensor_cache import cached
from growlab.data.torchvision_data import TorchvisionFolder, resolve_root, scaled

FILES = TorchvisionFolder(
    name="flowers102",
    folder=Path("flowers-102"),
    files=("jpg", "imagelabels.mat", "setid.mat"),
    layout=(
        "<root>/flowers-102/jpg/image_00001.jpg ... image_08189.jpg, "
        "<root>/flowers-102/imagelabels.mat, <root>/flowers-102/setid.mat "
        "(102flowers.tgz unpacked into flowers-102/)"
    ),
    md5_checked=True,
)


def _square(size: int) -> Callable[[str | Path], np.ndarray]:
    """A Flowers102 `loader`: the image as uint8 3 x size x size (shorter side, centre crop)."""
    from PIL import Image  # only here, with torchvision: both cost a second to import
    from torchvision.transforms import functional as F

    def load(path: str | Path) -> np.ndarray:
        with Image.open(path) as img:
            rgb = img.convert("RGB")
        square = F.center_crop(F.resize(rgb, size), [size, size])
        return np.asarray(square, dtype=np.uint8).transpose(2, 0, 1)

    return load


@register_dataset(DataKind.image, schema=Flowers102Config, require=FILES.require)
def flowers102(cfg: Flowers102Config) -> Arrays:
    from torchvision import datasets

    root, download = resolve_root(cfg), bool(cfg.download)
    size = int(cfg.image_size)
    if size < 1:
        raise ConfigError(f"data.image_size={size} must be >= 1")
    loader = _square(size)

    def split(which: str) -> tuple[np.ndarray, np.ndarray]:
        ds = FILES.open(
            root,
            download,
            lambda: datasets.Flowers102(str(root), split=which, download=download, loader=loader),
        )
        workers = min(16, os.cpu_count() or 1)
        try:
            with ThreadPoolExecutor(workers) as pool:  # PIL decodes and resizes without the GIL
                items = list(pool.map(ds.__getitem__, range(len(ds))))
        except FileNotFoundError as exc:
            raise ConfigError(
                f"data=flowers102: setid.mat lists {exc.filename}, which is absent; "
                f"{FILES.hint(root)}"
            ) from None
        except OSError as exc:  # PIL's UnidentifiedImageError included
            raise ConfigError(f"data=flowers102: cannot read an image: {exc}") from None
        empty = np.zeros((0, 3, size, size), dtype=np.uint8)
        x = np.stack([img for img, _ in items]) if items else empty
        return x, np.asarray([label for _, label in items], dtype=np.int64)

    def build() -> Arrays:
        splits = [split(s) for s in ("train", "val", "test")]
        (x_tr, y_tr), (x_val, y_val), (x_te, y_te) = splits
        return np.concatenate([x_tr, x_val]), np.concatenate([y_tr, y_val]), x_te, y_te

    key = FILES.key(root, image_size=size)
    return scaled(cached(key, [FILES.path(root)], build))
