"""CIFAR-10, MNIST and Flowers102 load from their real on-disk formats, through the cache.

Each fixture writes a few images in the format the official archives unpack to, under a
temporary root, and loads them through `growlab.data.load_data` (the torchvision dataset
classes included). torchvision checks CIFAR-10's and Flowers102's files against the official
MD5 checksums; the fixtures register their own files' checksums in place of the official ones
(`monkeypatch` on the torchvision class attributes, undone after each test), so the check itself
still runs, and a file whose checksum was not registered is rejected.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import io
import os
import pickle
import re
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from conftest import compose_cfg
from omegaconf import DictConfig
from PIL import Image
from torchvision import datasets

from growlab.config import ConfigError
from growlab.data import load_arrays, load_data, tensor_cache
from growlab.data.torchvision_data import resolve_root


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GROWLAB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("GROWLAB_DATA_ROOT", raising=False)


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _cache_files(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "cache" / "tensors").glob("*.pt"))


@functools.cache
def _composed(name: str) -> DictConfig:
    return compose_cfg([f"data={name}"]).data


def data_cfg(name: str, *overrides: str) -> DictConfig:
    """`compose_cfg([f"data={name}", *overrides]).data`, composing each group only once.

    Overrides are `data.key=value` items, merged with the schema's type checks.
    """
    cfg = copy.deepcopy(_composed(name))
    cfg.merge_with_dotlist([o.removeprefix("data.") for o in overrides])
    return cfg


def _raw(name: str, root: Path, *overrides: str) -> tuple[np.ndarray, ...]:
    """The loader's output before growlab.data normalises it: pixels in [0, 1]."""
    cfg = data_cfg(name, f"data.root={root}", *overrides)
    return load_arrays(cfg)


# --- CIFAR-10: Python 2 pickles, as in cifar-10-python.tar.gz --------------------------------


class _Py2Pickler(pickle._Pickler):  # type: ignore[misc]
    """Writes str and bytes as Python 2 byte strings, as the official batches were written.

    torchvision reads them with encoding="latin1" (keys come back as str); read with
    encoding="bytes" they come back as b"data", b"labels", like the official files.
    """

    dispatch = pickle._Pickler.dispatch.copy()  # type: ignore[attr-defined]

    def save_py2_string(self, obj: str | bytes) -> None:
        data = obj if isinstance(obj, bytes) else obj.encode("latin1")
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[str] = save_py2_string
    dispatch[bytes] = save_py2_string


def _py2_pickle(obj: Any, path: Path) -> None:
    buf = io.BytesIO()
    _Py2Pickler(buf, protocol=2).dump(obj)
    path.write_bytes(buf.getvalue())


def _cifar_images(n: int, offset: int) -> np.ndarray:
    """n x 3 x 32 x 32 uint8, every pixel a known function of (image, channel, row, column)."""
    i, c, h, w = np.meshgrid(
        np.arange(n) + offset, np.arange(3), np.arange(32), np.arange(32), indexing="ij"
    )
    return ((i * 7 + c * 50 + h * 3 + w) % 256).astype(np.uint8)


def write_cifar10(root: Path, per_batch: int = 4, n_test: int = 6) -> dict[str, np.ndarray]:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    x_train = _cifar_images(5 * per_batch, 0)
    y_train = np.arange(5 * per_batch) % 10
    for b in range(5):
        part = slice(b * per_batch, (b + 1) * per_batch)
        batch = {
            "batch_label": f"training batch {b + 1} of 5",
            "labels": [int(v) for v in y_train[part]],
            "data": x_train[part].reshape(per_batch, 3072),  # row-major: R, then G, then B
            "filenames": [f"img_{k}.png" for k in range(per_batch)],
        }
        _py2_pickle(batch, folder / f"data_batch_{b + 1}")
    x_test = _cifar_images(n_test, 100)
    y_test = (np.arange(n_test) * 3) % 10
    _py2_pickle(
        {
            "batch_label": "testing batch 1 of 1",
            "labels": [int(v) for v in y_test],
            "data": x_test.reshape(n_test, 3072),
            "filenames": [f"test_{k}.png" for k in range(n_test)],
        },
        folder / "test_batch",
    )
    names = ["airplane", "automobile", "bird", "cat", "deer"]
    names += ["dog", "frog", "horse", "ship", "truck"]
    _py2_pickle(
        {"num_cases_per_batch": per_batch, "label_names": names, "num_vis": 3072},
        folder / "batches.meta",
    )
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


def register_cifar10(monkeypatch: pytest.MonkeyPatch, root: Path) -> None:
    """Let torchvision's MD5 check accept the fixture's files (and only those)."""
    folder = root / "cifar-10-batches-py"
    cls = datasets.CIFAR10
    train = [[f"data_batch_{b}", _md5(folder / f"data_batch_{b}")] for b in range(1, 6)]
    monkeypatch.setattr(cls, "train_list", train)
    monkeypatch.setattr(cls, "test_list", [["test_batch", _md5(folder / "test_batch")]])
    meta = {**cls.meta, "md5": _md5(folder / "batches.meta")}
    monkeypatch.setattr(cls, "meta", meta)


@pytest.fixture
def cifar10(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    root = tmp_path / "data"
    arrays = write_cifar10(root)
    register_cifar10(monkeypatch, root)
    return root, arrays


def test_cifar10_loads_the_python_batches(cifar10: tuple[Path, dict[str, Any]]) -> None:
    root, want = cifar10
    data = load_data(data_cfg("cifar10", f"data.root={root}", "data.val_fraction=0"))
    assert data.input_shape == (3, 32, 32) and data.num_classes == 10
    assert data.x_train.shape == (20, 3, 32, 32) and data.x_test.shape == (6, 3, 32, 32)
    assert data.x_train.dtype == torch.float32 and data.y_train.dtype == torch.int64
    assert data.y_train.tolist() == want["y_train"].tolist()
    assert data.y_test.tolist() == want["y_test"].tolist()

    x_train, y_train, x_test, y_test = _raw("cifar10", root)
    assert x_train.dtype == np.float32 and x_train.min() >= 0.0 and x_train.max() <= 1.0
    # Channel, row and column land where the batches put them, exactly.
    np.testing.assert_array_equal(np.rint(x_train * 255).astype(np.uint8), want["x_train"])
    np.testing.assert_array_equal(np.rint(x_test * 255).astype(np.uint8), want["x_test"])
    assert x_train[3, 2, 5, 7] == np.float32(((3 * 7 + 100 + 15 + 7) % 256) / 255)


def test_cifar10_files_that_fail_the_md5_check_are_rejected(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    root = tmp_path / "data"
    write_cifar10(root)
    register_cifar10(monkeypatch, root)
    # A changed batch no longer matches the registered (here: "official") checksum.
    with open(root / "cifar-10-batches-py" / "data_batch_3", "ab") as f:
        f.write(b"\0")
    md5 = r"(?s)data=cifar10: torchvision rejects .*official release's MD5 checksums.*data_batch_1"
    with pytest.raises(ConfigError, match=md5):
        load_data(data_cfg("cifar10", f"data.root={root}"))


# --- MNIST: uncompressed IDX files under MNIST/raw --------------------------------------------


def _idx(path: Path, array: np.ndarray) -> None:
    magic = 0x0800 | array.ndim  # 0x08: unsigned byte
    header = struct.pack(">i", magic) + struct.pack(f">{array.ndim}i", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def write_mnist(root: Path, n_train: int = 100, n_test: int = 10) -> dict[str, np.ndarray]:
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "y_train": np.arange(n_train) % 10,
        "x_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "y_test": (np.arange(n_test) + 5) % 10,
    }
    _idx(raw / "train-images-idx3-ubyte", arrays["x_train"])
    _idx(raw / "train-labels-idx1-ubyte", arrays["y_train"])
    _idx(raw / "t10k-images-idx3-ubyte", arrays["x_test"])
    _idx(raw / "t10k-labels-idx1-ubyte", arrays["y_test"])
    return arrays


def test_mnist_loads_the_idx_files(tmp_path: Path) -> None:
    root = tmp_path / "data"
    want = write_mnist(root)
    data = load_data(data_cfg("mnist", f"data.root={root}"))
    assert data.input_shape == (1, 28, 28) and data.num_classes == 10
    assert len(data.x_train) + len(data.x_val) == 100 and len(data.x_test) == 10
    assert sorted(data.y_train.tolist() + data.y_val.tolist()) == sorted(want["y_train"].tolist())

    x_train, y_train, x_test, y_test = _raw("mnist", root)
    assert x_train.shape == (100, 1, 28, 28) and x_train.dtype == np.float32
    np.testing.assert_array_equal(np.rint(x_train[:, 0] * 255).astype(np.uint8), want["x_train"])
    np.testing.assert_array_equal(np.rint(x_test[:, 0] * 255).astype(np.uint8), want["x_test"])
    assert y_train.tolist() == want["y_train"].tolist()
    assert y_test.tolist() == want["y_test"].tolist()


# --- Flowers102: jpg/, imagelabels.mat, setid.mat ---------------------------------------------

# image id -> (label as in imagelabels.mat, 1-based; centre colour)
FLOWERS = {
    1: (1, (200, 40, 40)),
    2: (2, (40, 200, 40)),
    3: (102, (40, 40, 200)),
    4: (1, (220, 220, 30)),
    5: (2, (30, 220, 220)),
    6: (102, (220, 30, 220)),
    7: (1, (120, 120, 120)),
    8: (2, (250, 250, 250)),
}
SETID = {"trnid": [1, 2], "valid": [3, 4], "tstid": [5, 6, 7, 8]}
BORDER = (0, 0, 0)


def write_flowers102(root: Path) -> None:
    """Landscape and portrait JPEGs: a uniform colour with black ends along the longer side."""
    from scipy.io import savemat

    folder = root / "flowers-102"
    (folder / "jpg").mkdir(parents=True)
    for image_id, (_, colour) in FLOWERS.items():
        pixels = np.empty((20, 40, 3), dtype=np.uint8)  # H x W x C: landscape
        pixels[:] = colour
        pixels[:, :4] = BORDER
        pixels[:, -4:] = BORDER
        if image_id % 2 == 0:
            pixels = pixels.transpose(1, 0, 2).copy()  # portrait
        Image.fromarray(pixels).save(
            folder / "jpg" / f"image_{image_id:05d}.jpg", quality=95, subsampling=0
        )
    labels = np.array([[FLOWERS[k][0] for k in sorted(FLOWERS)]], dtype=np.uint8)
    savemat(folder / "imagelabels.mat", {"labels": labels})
    savemat(folder / "setid.mat", {k: np.array([v], dtype=np.uint16) for k, v in SETID.items()})


def register_flowers102(monkeypatch: pytest.MonkeyPatch, root: Path) -> None:
    folder = root / "flowers-102"
    files = dict(datasets.Flowers102._file_dict)
    for key, name in (("label", "imagelabels.mat"), ("setid", "setid.mat")):
        files[key] = (name, _md5(folder / name))
    monkeypatch.setattr(datasets.Flowers102, "_file_dict", files)


@pytest.fixture
def flowers102(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    root = tmp_path / "data"
    write_flowers102(root)
    register_flowers102(monkeypatch, root)
    return root


def test_flowers102_loads_train_and_val_as_train_resized_square(flowers102: Path) -> None:
    cfg = compose_cfg(
        ["data=flowers102", f"data.root={flowers102}", "data.image_size=16", "data.val_fraction=0"]
    )
    assert cfg.data == data_cfg(
        "flowers102", f"data.root={flowers102}", "data.image_size=16", "data.val_fraction=0"
    )
    data = load_data(cfg.data)
    assert data.input_shape == (3, 16, 16) and data.num_classes == 102
    assert len(data.x_train) == 4 and len(data.x_test) == 4

    x_train, y_train, x_test, y_test = _raw("flowers102", flowers102, "data.image_size=16")
    assert x_train.shape == (4, 3, 16, 16) and x_test.shape == (4, 3, 16, 16)
    assert x_train.dtype == np.float32
    train_ids, test_ids = SETID["trnid"] + SETID["valid"], SETID["tstid"]
    assert y_train.tolist() == [FLOWERS[i][0] - 1 for i in train_ids]  # 0-based: 0, 1, 101, 0
    assert y_test.tolist() == [FLOWERS[i][0] - 1 for i in test_ids]
    # Centre-cropped after resizing the shorter side: the black ends are cut, colours survive
    # (up to JPEG's rounding).
    for x, ids in ((x_train, train_ids), (x_test, test_ids)):
        for image, image_id in zip(x, ids, strict=True):
            colour = np.array(FLOWERS[image_id][1], dtype=np.float32)[:, None, None] / 255
            assert np.abs(image - colour).max() < 8 / 255, image_id


def test_flowers102_cache_follows_image_size(flowers102: Path, tmp_path: Path) -> None:
    small = _raw("flowers102", flowers102, "data.image_size=8")
    large = _raw("flowers102", flowers102, "data.image_size=12")
    assert small[0].shape == (4, 3, 8, 8) and large[0].shape == (4, 3, 12, 12)
    assert len(_cache_files(tmp_path)) == 2  # one entry per image size
    again = _raw("flowers102", flowers102, "data.image_size=8")
    np.testing.assert_array_equal(again[0], small[0])


def test_flowers102_missing_image_is_a_config_error(flowers102: Path) -> None:
    (flowers102 / "flowers-102" / "jpg" / "image_00006.jpg").unlink()
    with pytest.raises(ConfigError, match=r"image_00006\.jpg, which is absent"):
        _raw("flowers102", flowers102, "data.image_size=8")


# --- The cache ---------------------------------------------------------------------------------


class _Counting(datasets.CIFAR10):
    made = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        type(self).made += 1
        super().__init__(*args, **kwargs)


def test_second_load_comes_from_the_cache(
    cifar10: tuple[Path, dict[str, Any]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    root, _ = cifar10
    monkeypatch.setattr(_Counting, "made", 0)
    monkeypatch.setattr(datasets, "CIFAR10", _Counting)
    first = _raw("cifar10", root)
    assert _Counting.made == 2  # train and test
    assert len(_cache_files(tmp_path)) == 1
    second = _raw("cifar10", root)
    assert _Counting.made == 2  # torchvision never consulted
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == b.dtype


def test_changed_source_file_invalidates_the_cache(tmp_path: Path) -> None:
    root = tmp_path / "data"
    write_mnist(root)
    _, y_before, _, _ = _raw("mnist", root)
    labels = root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"
    _idx(labels, np.full(10, 7))  # same size
    stat = labels.stat()
    os.utime(labels, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    _, _, _, y_test = _raw("mnist", root)
    assert y_test.tolist() == [7] * 10
    assert len(_cache_files(tmp_path)) == 1  # the stale entry is gone


def test_cache_key_includes_the_root(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    write_mnist(a, n_train=20)
    write_mnist(b, n_train=30)
    assert len(_raw("mnist", a)[0]) == 20 and len(_raw("mnist", b)[0]) == 30
    assert len(_cache_files(tmp_path)) == 2


def test_cached_helper_builds_once_and_round_trips(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "f").write_text("1")
    calls: list[int] = []

    def build() -> dict[str, Any]:
        calls.append(1)
        return {"x": np.arange(6, dtype=np.uint8).reshape(2, 3), "t": torch.ones(2), "n": 3}

    first = tensor_cache.cached({"name": "toy", "opt": 1}, [source], build)
    second = tensor_cache.cached({"name": "toy", "opt": 1}, [source], build)
    assert len(calls) == 1
    assert isinstance(second["x"], np.ndarray) and second["x"].dtype == np.uint8
    np.testing.assert_array_equal(first["x"], second["x"])
    assert isinstance(second["t"], torch.Tensor) and second["n"] == 3
    tensor_cache.cached({"name": "toy", "opt": 2}, [source], build)  # other options: a miss
    assert len(calls) == 2
    folder = tmp_path / "cache" / "tensors"
    assert not list(folder.glob(".*.tmp"))  # written via a temporary file and a rename
    # A damaged entry is a miss, not an error.
    for path in folder.glob("toy-*.pt"):
        path.write_bytes(b"not a tensor file")
    tensor_cache.cached({"name": "toy", "opt": 1}, [source], build)
    assert len(calls) == 3
    tensor_cache.cached({"name": "toy", "opt": 1}, [source], build)
    assert len(calls) == 3


# --- Where the data is, and what happens when it is not there ----------------------------------


@pytest.mark.parametrize(
    ("name", "layout"),
    [
        ("cifar10", r"cifar-10-batches-py/data_batch_1 \.\.\. data_batch_5, test_batch"),
        ("mnist", r"MNIST/raw/train-images-idx3-ubyte, train-labels-idx1-ubyte"),
        ("flowers102", r"flowers-102/jpg/image_00001\.jpg .*imagelabels\.mat.*setid\.mat"),
    ],
)
def test_empty_root_names_the_path_and_the_layout(name: str, layout: str, tmp_path: Path) -> None:
    root = tmp_path / "empty"
    root.mkdir()
    with pytest.raises(ConfigError) as info:
        load_data(data_cfg(name, f"data.root={root}"))
    message = str(info.value)
    top = {"cifar10": "cifar-10-batches-py/", "mnist": "MNIST/raw/", "flowers102": "flowers-102/"}
    assert message.startswith(f"data={name}: {root} lacks {top[name]}; expected layout: ")
    assert re.search(f"{root}/{layout}", message), message
    assert "data.download=true" in message and info.value.__cause__ is None
    assert not _cache_files(tmp_path)


def test_missing_files_are_named_one_by_one(tmp_path: Path) -> None:
    root = tmp_path / "data"
    write_cifar10(root)
    (root / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(ConfigError, match=rf"{root} lacks cifar-10-batches-py/data_batch_3; "):
        load_data(data_cfg("cifar10", f"data.root={root}"))
    # data.root pointing at the dataset folder itself: the message says where it should point.
    inner = root / "cifar-10-batches-py"
    with pytest.raises(ConfigError, match=rf"here probably {root}, not cifar-10-batches-py/"):
        load_data(data_cfg("cifar10", f"data.root={inner}"))


def test_failed_download_is_one_config_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from urllib.error import URLError

    def offline(self: Any) -> None:
        raise URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(datasets.MNIST, "download", offline)
    root = tmp_path / "empty"
    with pytest.raises(ConfigError, match=rf"downloading into {root} failed \(URLError"):
        _raw("mnist", root, "data.download=true")


def test_root_defaults_to_env_then_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cfg = data_cfg("mnist")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert resolve_root(cfg) == (tmp_path / "home" / "data").resolve()
    monkeypatch.setenv("GROWLAB_DATA_ROOT", str(tmp_path / "env"))
    assert resolve_root(cfg) == (tmp_path / "env").resolve()
    explicit = data_cfg("mnist", f"data.root={tmp_path / 'cfg'}")
    assert resolve_root(explicit) == (tmp_path / "cfg").resolve()

    write_mnist(tmp_path / "env")
    assert load_data(cfg).x_test.shape == (10, 1, 28, 28)
