"""`data=teacher data.task=regression` with `objective=regression`: float targets (the teacher's
standardised outputs plus noise) through splits, validation, the fingerprint, a real run,
stacked seeds and the width strategy."""

from __future__ import annotations

import logging
import math

import pytest
import torch
from conftest import compose_cfg, read_summary, run_in_process
from omegaconf import OmegaConf
from test_stacked import stacked

from growlab.cli.evaluate import main as evaluate_main
from growlab.config import ConfigError
from growlab.data import load_data
from growlab.engine.run_directory.result_identity import fingerprint, result_config
from growlab.growth.objectives import Regression
from growlab.validation import validate

REGRESSION = ["data=teacher", "data.task=regression", "objective=regression", "logger=none"]
# One hidden layer of 16 units; 1,000 examples: a run of a few seconds on a CPU.
SMALL = [
    *REGRESSION,
    "data.teacher_depth=1",
    "data.n_train=1000",
    "data.n_test=500",
    "data.noise=0.1",
    "depth=1",
]


def teacher(**keys) -> object:
    return load_data(OmegaConf.create({"name": "teacher", "n_train": 400, "n_test": 100, **keys}))


def test_regression_targets_are_the_teachers_standardised_outputs_plus_noise() -> None:
    clean = teacher(task="regression")
    assert clean.y_train.dtype == torch.float32 and clean.y_train.shape == (360, 4)
    assert clean.num_classes == 4 and len(clean.y_val) == 40 and clean.y_test.shape == (100, 4)
    everything = torch.cat([clean.y_train, clean.y_val, clean.y_test])
    assert torch.allclose(everything.std(0), torch.ones(4), atol=1e-3)
    # The same teacher as the classification task's: its labels are these outputs' argmax.
    labels = teacher()
    assert labels.y_train.dtype == torch.int64
    assert torch.equal(clean.y_test.argmax(1), labels.y_test)
    noisy = teacher(task="regression", noise=0.3)
    residual = noisy.y_test - clean.y_test
    assert float(residual.std()) == pytest.approx(0.3, rel=0.15)
    assert teacher(task="regression", outputs=2).y_train.shape == (360, 2)


def test_shuffled_regression_targets_move_whole_rows_and_leave_the_test_split() -> None:
    plain = teacher(task="regression")
    mixed = teacher(task="regression", shuffle_labels=True)
    assert torch.equal(plain.x_train, mixed.x_train) and torch.equal(plain.y_test, mixed.y_test)
    rows = torch.cat([plain.y_train, plain.y_val])
    shuffled = torch.cat([mixed.y_train, mixed.y_val])
    assert {tuple(r) for r in rows.tolist()} == {tuple(r) for r in shuffled.tolist()}
    assert float((rows == shuffled).all(1).float().mean()) < 0.05


def test_the_chance_loss_is_the_targets_variance() -> None:
    y = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
    assert Regression().chance_loss(torch.zeros(2, 1), y) == pytest.approx(1.0)
    assert math.isnan(Regression().chance_loss(torch.zeros(2, 1), torch.tensor([0, 1])))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["data=teacher", "data.task=regression"], "data.task=regression .* valid: objective=regr"),
        (["objective=regression"], "gives class labels .* valid: data=teacher data.task=regr"),
        (["data=teacher", "data.task=regress"], "data.task=regress is not allowed; valid: class"),
        ([*REGRESSION, "data.outputs=0"], "data.outputs=0 is not allowed"),
        (["data=teacher", "data.task=regression", "strategy=greedy-autoencoder"], "Reconstruction"),
    ],
)
def test_bad_combinations_are_refused_before_any_work(overrides, message) -> None:
    with pytest.raises(ConfigError, match=message):
        validate(compose_cfg(overrides))


def test_the_default_task_keeps_the_fingerprints_of_earlier_teacher_runs() -> None:
    plain = result_config(compose_cfg(["data=teacher"]))
    assert "data.task" not in plain and "data.outputs" not in plain
    said = result_config(compose_cfg(["data=teacher", "data.task=classification"]))
    assert fingerprint(said) == fingerprint(plain)
    regression = result_config(compose_cfg(REGRESSION))
    assert regression["data.task"] == "regression" and regression["data.outputs"] == 4
    wider = result_config(compose_cfg([*REGRESSION, "data.outputs=5"]))
    assert len({fingerprint(plain), fingerprint(regression), fingerprint(wider)}) == 3


def test_a_regression_run_is_judged_by_its_test_loss_and_learns(tmp_path, capsys) -> None:
    fit = [*SMALL, "train.epochs_per_stage=30", "optimizer.lr=0.005"]
    wide = run_in_process([*fit, "model.width=32"], tmp_path / "w")
    narrow = run_in_process([*fit, "model.width=2"], tmp_path / "n")
    for summary, name in ((wide, "w"), (narrow, "n")):
        assert summary["status"] == "completed"
        assert summary["primary_metric"] == "test_loss"
        assert math.isnan(summary["test_acc"]) and math.isfinite(summary["test_loss"])
        assert read_summary(tmp_path / name)["test_acc"] is None  # no accuracy: null
        assert summary["config"]["strategy.objective._target_"].endswith("Regression")
    # The targets have variance 1 and noise 0.01: a student as wide as the teacher's 16 units
    # gets near the noise (0.04 measured), one of 2 units cannot (0.41).
    assert wide["test_loss"] < 0.1 and narrow["test_loss"] > 4 * wide["test_loss"]
    # `python -m growlab.evaluate` rebuilds the network and reproduces its test loss (given
    # the config file Hydra would write beside a run).
    (tmp_path / "w" / ".hydra").mkdir()
    OmegaConf.save(compose_cfg([*fit, "model.width=32"]), tmp_path / "w" / ".hydra/config.yaml")
    assert evaluate_main([str(tmp_path / "w")]) == 0
    assert "test_acc none; test_loss" in capsys.readouterr().out


def test_stacked_width_growth_equals_the_solo_runs(tmp_path, caplog) -> None:
    overrides = [
        *SMALL,
        "model.width=4",
        "strategy=gradmax-widen",
        "strategy.final_width=12",
        "strategy.widen_by=4",
        "trigger=plateau",
        "trigger.patience=2",
        "train.epochs_per_stage=4",
    ]
    seeds = [0, 1]
    with caplog.at_level(logging.INFO, logger="growlab"):
        summaries = stacked(overrides, seeds, tmp_path / "stack", "val_loss")
    assert "training 2 runs as one stack" in caplog.text
    assert "width 8: test_loss " in caplog.text and "test_acc nan" not in caplog.text
    for seed, stacked_run in zip(seeds, summaries, strict=True):
        solo = run_in_process([*overrides, f"seed={seed}"], tmp_path / f"solo{seed}")
        assert stacked_run["status"] == solo["status"] == "completed"
        widths = [s["width"] for s in stacked_run["stages"]]
        assert widths == [s["width"] for s in solo["stages"]]
        assert stacked_run["stages"][-1]["width"] > 4
        for a, b in zip(stacked_run["stages"], solo["stages"], strict=True):
            assert a["epochs"] == b["epochs"]
            assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-3, abs=1e-5)
