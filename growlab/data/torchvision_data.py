"""CIFAR-10, MNIST and Flowers102 through torchvision's dataset classes, cached as tensors.

Where the files are: `data.root`; when it is null, `$GROWLAB_DATA_ROOT`; else `~/data`
(a relative path is taken from the directory the run was launched in). Under that root:

    cifar10     <root>/cifar-10-batches-py/data_batch_1 ... data_batch_5, test_batch,
                batches.meta  (the "python version" archive, cifar-10-python.tar.gz, unpacked)
    mnist       <root>/MNIST/raw/train-images-idx3-ubyte, train-labels-idx1-ubyte,
                t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte  (uncompressed IDX files)
    flowers102  <root>/flowers-102/jpg/image_00001.jpg ... image_08189.jpg, imagelabels.mat,
                setid.mat  (102flowers.tgz unpacked, the two .mat files beside jpg/)

`data.download=true` lets torchvision fetch what is missing (only where the machine is
online); by default nothing is downloaded, and absent files are one `ConfigError` naming the
folder and the layout above. torchvision verifies CIFAR-10's batches and Flowers102's .mat
files against the official MD5 checksums; a mismatch is a `ConfigError` too (we do not bypass
the check: files that differ from the official release are not CIFAR-10).

Each loader returns (x_train, y_train, x_test, y_test): float32 images N x C x H x W scaled to
[0, 1] and int64 labels; `growlab.data` then holds out the validation split and normalises with
training statistics.

    cifar10     50000 / 10000 images, 3 x 32 x 32, 10 classes (the official split).
    mnist       60000 / 10000 images, 1 x 28 x 28, 10 classes (the official split).
    flowers102  train = the official train + val splits (2040 images, 20 per class), test = the
                official test split (6149 images), 102 classes, 3 x S x S with S =
                `data.image_size` (128 in seed 003). The official val split goes into train
                because growlab holds out its own stratified validation split
                (`data.val_fraction`) from train; keeping both would leave 10 images per class
                to fit. Each image is converted to RGB, its shorter side resized to S (bilinear,
                antialiased: torchvision's `Resize(S)`), then centre-cropped to S x S, so the
                aspect ratio is kept and the borders of the longer side are cut.

The uint8 pixels are cached with `growlab.data.tensor_cache` (key: dataset, resolved root,
image_size for flowers102, and the sizes and mtimes of the files in the dataset's folder), so
only the first run reads the source files; scaling to [0, 1] happens after the cache.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from growlab.config import ConfigError, DatasetName
from growlab.data.tensor_cache import cached

DEFAULT_ROOT = Path("~/data")
# Bump when a loader's output for the same files changes, so old cache entries are not used.
LOADER_VERSION = 1

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]

CIFAR10_FILES = [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta"]
MNIST_FILES = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
]
FLOWERS_FILES = ["jpg", "imagelabels.mat", "setid.mat"]
# torchvision verifies these against the official MD5s (MNIST: presence only).
MD5_CHECKED = {DatasetName.cifar10, DatasetName.flowers102}

LAYOUT = {
    DatasetName.cifar10: (
        "<root>/cifar-10-batches-py/data_batch_1 ... data_batch_5, test_batch, batches.meta "
        "(cifar-10-python.tar.gz unpacked)"
    ),
    DatasetName.mnist: (
        "<root>/MNIST/raw/train-images-idx3-ubyte, train-labels-idx1-ubyte, "
        "t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (uncompressed: gunzip the .gz files)"
    ),
    DatasetName.flowers102: (
        "<root>/flowers-102/jpg/image_00001.jpg ... image_08189.jpg, "
        "<root>/flowers-102/imagelabels.mat, <root>/flowers-102/setid.mat "
        "(102flowers.tgz unpacked into flowers-102/)"
    ),
}


def resolve_root(cfg: Any) -> Path:
    """`data.root`, else `$GROWLAB_DATA_ROOT`, else `~/data`, as an absolute path."""
    root = getattr(cfg, "root", None)
    if not root:
        root = os.environ.get("GROWLAB_DATA_ROOT") or DEFAULT_ROOT
    path = Path(str(root)).expanduser()
    if not path.is_absolute():
        from hydra.utils import to_absolute_path

        path = Path(to_absolute_path(str(path)))
    return path.resolve()


def _folder(name: DatasetName, root: Path) -> Path:
    sub = {
        DatasetName.cifar10: Path("cifar-10-batches-py"),
        DatasetName.mnist: Path("MNIST") / "raw",
        DatasetName.flowers102: Path("flowers-102"),
    }[name]
    return root / sub


def _expected(name: DatasetName, root: Path) -> list[Path]:
    files = {
        DatasetName.cifar10: CIFAR10_FILES,
        DatasetName.mnist: MNIST_FILES,
        DatasetName.flowers102: FLOWERS_FILES,
    }[name]
    return [_folder(name, root) / f for f in files]


def _hint(name: DatasetName, root: Path) -> str:
    top = _folder(name, root).relative_to(root).parts[0]
    hint = (
        f"expected layout: {LAYOUT[name].replace('<root>', str(root))}. Set data.root (or "
        f"GROWLAB_DATA_ROOT) to the folder that holds {top}/"
    )
    if root.name == top:
        hint += f" (here probably {root.parent}, not {top}/ itself)"
    return hint + ", or data.download=true on a machine that is online"


def require_files(name: DatasetName, root: Path) -> None:
    folder = _folder(name, root)
    if folder.is_dir():
        missing = [str(p.relative_to(root)) for p in _expected(name, root) if not p.exists()]
    else:
        missing = [f"{folder.relative_to(root)}/"]
    if missing:
        raise ConfigError(
            f"data={name.value}: {root} lacks {', '.join(missing)}; {_hint(name, root)}"
        )


def _open(name: DatasetName, root: Path, download: bool, make: Callable[[], Any]) -> Any:
    """`make()` (a torchvision dataset), with its failures as one ConfigError."""
    if not download:
        require_files(name, root)
    try:
        return make()
    except (RuntimeError, OSError) as exc:
        if download:
            why = f"downloading into {root} failed ({type(exc).__name__}: {exc})"
        else:
            why = f"torchvision rejects the files under {_folder(name, root)} ({exc})"
            if name in MD5_CHECKED:
                why += (
                    "; it checks them against the official release's MD5 checksums, so they are "
                    "corrupt, partial or not the official files: unpack the official archive again"
                )
        raise ConfigError(f"data={name.value}: {why}; {_hint(name, root)}") from None


def _scaled(x: np.ndarray) -> np.ndarray:
    return np.divide(x, np.float32(255.0), dtype=np.float32)


def _finish(raw: Arrays) -> Arrays:
    x_train, y_train, x_test, y_test = raw
    return (
        _scaled(x_train),
        np.asarray(y_train, dtype=np.int64),
        _scaled(x_test),
        np.asarray(y_test, dtype=np.int64),
    )


def _key(name: DatasetName, root: Path, **options: Any) -> dict[str, Any]:
    return {"name": name.value, "root": str(root), "version": LOADER_VERSION, **options}


def _both_splits(
    name: DatasetName,
    root: Path,
    download: bool,
    make: Callable[[bool], Any],
    arrays: Callable[[Any], tuple[np.ndarray, np.ndarray]],
) -> Arrays:
    """(x_train, y_train, x_test, y_test) from `make(train)` datasets, via `arrays(dataset)`."""
    out: list[np.ndarray] = []
    for train in (True, False):
        out += arrays(_open(name, root, download, lambda t=train: make(t)))
    return out[0], out[1], out[2], out[3]


def _cifar10(cfg: Any) -> Arrays:
    from torchvision import datasets

    name, root, download = DatasetName.cifar10, resolve_root(cfg), bool(cfg.download)

    def build() -> Arrays:
        return _both_splits(
            name,
            root,
            download,
            lambda train: datasets.CIFAR10(str(root), train=train, download=download),
            lambda ds: (
                np.ascontiguousarray(np.asarray(ds.data).transpose(0, 3, 1, 2)),
                np.asarray(ds.targets, dtype=np.int64),
            ),
        )

    raw = cached(_key(name, root), [_folder(name, root)], build)
    return _finish(raw)


def _mnist(cfg: Any) -> Arrays:
    from torchvision import datasets

    name, root, download = DatasetName.mnist, resolve_root(cfg), bool(cfg.download)

    def build() -> Arrays:
        return _both_splits(
            name,
            root,
            download,
            lambda train: datasets.MNIST(str(root), train=train, download=download),
            lambda ds: (ds.data.numpy()[:, None].copy(), ds.targets.numpy().astype(np.int64)),
        )

    # The whole MNIST/ folder: torchvision prefers MNIST/processed/*.pt where they exist.
    raw = cached(_key(name, root), [root / "MNIST"], build)
    return _finish(raw)


def _square(size: int) -> Callable[[str | Path], np.ndarray]:
    """A Flowers102 `loader`: the image as uint8 3 x size x size (shorter side, centre crop)."""
    from PIL import Image
    from torchvision.transforms import functional as F

    def load(path: str | Path) -> np.ndarray:
        with Image.open(path) as img:
            rgb = img.convert("RGB")
        square = F.center_crop(F.resize(rgb, size), [size, size])
        return np.asarray(square, dtype=np.uint8).transpose(2, 0, 1)

    return load


def _flowers102(cfg: Any) -> Arrays:
    from torchvision import datasets

    name, root, download = DatasetName.flowers102, resolve_root(cfg), bool(cfg.download)
    size = int(cfg.image_size)
    if size < 1:
        raise ConfigError(f"data.image_size={size} must be >= 1")
    loader = _square(size)

    def split(which: str) -> tuple[np.ndarray, np.ndarray]:
        ds = _open(
            name,
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
                f"{_hint(name, root)}"
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

    raw = cached(_key(name, root, image_size=size), [_folder(name, root)], build)
    return _finish(raw)


LOADERS: dict[DatasetName, Callable[[Any], Arrays]] = {
    DatasetName.cifar10: _cifar10,
    DatasetName.mnist: _mnist,
    DatasetName.flowers102: _flowers102,
}
