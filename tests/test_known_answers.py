"""The test bed where the right answer is known: `data=teacher` (labels of a random teacher
network of a given depth and width) and `data.shuffle_labels=true` on any data set, through the
real entry point with a growth trigger."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import FAST, compose_cfg, run_cli
from omegaconf import OmegaConf

from growlab.config import ConfigError
from growlab.data import load_arrays, load_data
from growlab.engine.run_directory.result_identity import fingerprint, result_config
from growlab.validation import validate


def teacher(**keys) -> object:
    return load_data(OmegaConf.create({"name": "teacher", "n_train": 400, "n_test": 100, **keys}))


def test_the_teacher_is_seeded_and_its_shape_decides_the_labels() -> None:
    a, b = teacher(), teacher()
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_train, b.y_train)
    assert a.x_train.shape[1] == 16 and a.num_classes == 4
    counts = torch.bincount(torch.cat([a.y_train, a.y_val, a.y_test]), minlength=4)
    assert counts.min() > 0.1 * counts.sum()  # roughly balanced classes
    wider, deeper = teacher(teacher_width=32), teacher(teacher_depth=3)
    raw = [load_arrays(OmegaConf.create({"name": "teacher", "teacher_width": w})) for w in (16, 32)]
    assert (raw[0][0] == raw[1][0]).all()  # the same inputs, other labels
    assert not torch.equal(wider.y_train, a.y_train)
    assert not torch.equal(deeper.y_train, a.y_train)
    noisy = teacher(noise=1.0)
    assert 0 < float((noisy.y_test != a.y_test).float().mean()) < 0.7


def test_a_bad_teacher_is_refused_naming_the_key() -> None:
    cfg = compose_cfg(["data=teacher", "data.teacher_width=0"])
    with pytest.raises(ConfigError, match="data.teacher_width=0"):
        validate(cfg)


def test_shuffled_labels_keep_the_examples_and_the_test_labels() -> None:
    plain = load_data(OmegaConf.create({"name": "digits"}))
    shuffled = load_data(OmegaConf.create({"name": "digits", "shuffle_labels": True}))
    assert torch.equal(plain.x_train, shuffled.x_train) and torch.equal(plain.x_val, shuffled.x_val)
    assert torch.equal(plain.y_test, shuffled.y_test)
    both = torch.cat([plain.y_train, plain.y_val])
    mixed = torch.cat([shuffled.y_train, shuffled.y_val])
    assert torch.equal(torch.bincount(both), torch.bincount(mixed))  # each class keeps its count
    assert float((both == mixed).float().mean()) < 0.2
    other = load_data(OmegaConf.create({"name": "digits", "shuffle_labels": True, "split_seed": 1}))
    assert not torch.equal(other.y_train[: len(mixed)], shuffled.y_train)
    # Off, it leaves the fingerprints of earlier runs as they were; on, it is another run.
    assert "data.shuffle_labels" not in result_config(compose_cfg([]))
    on = result_config(compose_cfg(["data.shuffle_labels=true"]))
    assert fingerprint(on) != fingerprint(result_config(compose_cfg([])))


def test_shuffled_labels_through_the_entry_point_learn_nothing_that_shows(tmp_path) -> None:
    args = [*FAST, "data.shuffle_labels=true", "trigger=plateau", "depth=3", "logger=none"]
    done = run_cli(
        [*args, "train.epochs_per_stage=4", f"hydra.run.dir={tmp_path / 'run'}"], tmp_path
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "completed"
    assert summary["config"]["data.shuffle_labels"] is True
    assert summary["config"]["trigger.name"] == "plateau"
    assert summary["test_acc"] < 0.25  # ten classes: chance is 0.1; digits learnt is > 0.8
