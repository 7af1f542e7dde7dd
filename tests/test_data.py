"""The offline datasets load as deterministic, normalised tensors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import compose_cfg

from growlab.data import load_data
from growlab.data.splits import channel_std, unit_scaled


@pytest.mark.parametrize(
    ("name", "shape", "classes"),
    [
        ("digits", (1, 8, 8), 10),
        ("blobs", (2,), 3),
        ("mnist1d", (40,), 10),
        ("fashion_mnist", (1, 28, 28), 10),
    ],
)
def test_dataset_loads_with_expected_shape(name: str, shape: tuple, classes: int) -> None:
    data = load_data(compose_cfg([f"data={name}"]).data)
    assert data.input_shape == shape and data.num_classes == classes
    assert data.x_train.dtype == torch.float32 and data.y_train.dtype == torch.int64
    assert len(data.x_val) > 0 and len(data.x_test) > 0
    # Normalised with training statistics.
    assert data.x_train.mean().abs() < 0.05
    assert 0.9 < data.x_train.std() < 1.1


def test_fashion_mnist_has_the_official_split_sizes() -> None:
    data = load_data(compose_cfg(["data=fashion_mnist", "data.val_fraction=0.1"]).data)
    assert len(data.x_train) + len(data.x_val) == 60000
    assert len(data.x_test) == 10000


def test_blobs_follows_seed_004() -> None:
    data = load_data(compose_cfg(["data=blobs", "data.val_fraction=0"]).data)
    assert len(data.x_train) == 500 and len(data.x_test) == 500


def test_splits_are_deterministic() -> None:
    a = load_data(compose_cfg(["data=digits"]).data)
    b = load_data(compose_cfg(["data=digits"]).data)
    assert torch.equal(a.x_val, b.x_val) and torch.equal(a.y_test, b.y_test)


def test_missing_fashion_mnist_says_how_to_install(monkeypatch, tmp_path) -> None:
    from growlab.config import ConfigError
    from growlab.data.sets import fashion_mnist as data_module

    monkeypatch.setattr(data_module, "FASHION_MNIST_DIR", tmp_path)
    with pytest.raises(ConfigError, match="apt-get install dataset-fashion-mnist"):
        load_data(compose_cfg(["data=fashion_mnist"]).data)


def test_train_fraction_keeps_a_stratified_part_of_training_only() -> None:
    whole = load_data(compose_cfg(["data=digits"]).data)
    part = load_data(compose_cfg(["data=digits", "data.train_fraction=0.25"]).data)
    assert len(part.x_train) == pytest.approx(len(whole.x_train) / 4, abs=10)
    assert torch.bincount(part.y_train).min() >= 0.2 * torch.bincount(whole.y_train).min()
    # validation and test are untouched (compared unnormalised: statistics come from training)
    assert torch.equal(part.y_val, whole.y_val) and torch.equal(part.y_test, whole.y_test)
    again = load_data(compose_cfg(["data=digits", "data.train_fraction=0.25", "seed=3"]).data)
    assert torch.equal(again.y_train, part.y_train)


@pytest.mark.parametrize("shape", [(5000, 3, 8, 8), (3001, 40), (7, 1, 4, 4)])
def test_chunked_channel_std_is_numpys_std(shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(0)
    x = (rng.random(shape, dtype=np.float32) * 3 + 0.5).astype(np.float32)
    axes = tuple(i for i in range(x.ndim) if i != 1) if x.ndim > 2 else (0,)
    mean = x.mean(axis=axes, keepdims=True, dtype=np.float64)
    ours = channel_std(x, mean, axes, rows=512)
    numpys = x.std(axis=axes, keepdims=True, dtype=np.float64)
    np.testing.assert_allclose(ours, numpys, rtol=1e-13)
    assert np.array_equal(ours.astype(np.float32), numpys.astype(np.float32))


def test_unit_scaled_is_the_two_step_scaling() -> None:
    x = np.arange(256, dtype=np.uint8).reshape(16, 16)
    assert np.array_equal(unit_scaled(x), x.astype(np.float32) / 255.0)
