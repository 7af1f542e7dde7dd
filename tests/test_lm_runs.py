"""Runs of the language model (model=gpt data=shakespeare_char objective=lm), tiny: the
strategies that apply, resume, evaluation, stacked seeds, sampling."""

from __future__ import annotations

import logging
import math

import pytest
import torch
from conftest import compose_cfg, read_summary, run_cli, run_in_process, without_timing

from growlab.cli.evaluate import main as evaluate_main
from growlab.cli.sample import main as sample_main
from growlab.engine import runners as solo_runner
from growlab.engine.run_directory.records import read_metrics
from growlab.engine.stacking.session import StackSession

TINY = [
    "model=gpt",
    "data=shakespeare_char",
    "objective=lm",
    "logger=none",
    "depth=2",
    "model.n_embd=16",
    "model.n_head=2",
    "model.block_size=16",
    "data.eval_windows=256",
    "train.batch_size=8",
    "train.steps_per_epoch=5",
    "train.epochs_per_stage=2",
    "train.num_threads=1",
]


def first_epoch_loss(run_dir) -> float:
    rows = read_metrics(run_dir / "metrics.jsonl")
    return next(r["train_loss"] for r in rows if r["event"] == "epoch")


@pytest.mark.parametrize("strategy", ["from-scratch", "freeze-all-but-new", "finetune-all-after"])
def test_a_strategy_trains_records_lm_metrics_and_evaluate_reproduces_it(
    strategy, tmp_path, capsys
) -> None:
    done = run_cli([*TINY, f"strategy={strategy}", f"hydra.run.dir={tmp_path}"], tmp_path)
    assert done.returncode == 0, done.stderr
    summary = read_summary(tmp_path)
    assert summary["status"] == "completed" and summary["primary_metric"] == "test_loss"
    last = summary["stages"][-1]
    assert last["depth"] == 2 and summary["test_loss"] == last["test_loss"]
    assert last["test_bpc"] == pytest.approx(last["test_loss"] / math.log(2))
    assert last["val_bpc"] == pytest.approx(last["val_loss"] / math.log(2))
    assert 0 < last["test_acc"] < 1 and last["test_loss"] < math.log(91)  # it learned a little
    steps = [r for r in read_metrics(tmp_path / "metrics.jsonl") if r["event"] == "epoch"]
    # FLOPs count the sampled windows: 5 steps x 8 windows an epoch.
    per_window = (steps[1]["cum_train_flops"] - steps[0]["cum_train_flops"]) / 40
    assert per_window > 3 * last["flops_per_sample"] * 0.5
    if strategy == "freeze-all-but-new":
        grown = summary["stages"][1]
        assert grown["phase"] == "grow" and grown["params_trainable"] < grown["params_total"]
    assert (tmp_path / "data_split.json").is_file()
    assert evaluate_main([str(tmp_path)]) == 0
    assert evaluate_main([str(tmp_path), "--whole-model"]) == 0
    out = capsys.readouterr().out
    assert out.count("-> reproduced") == 2 and "test_loss" in out
    if strategy == "from-scratch":  # growlab.sample writes from the trained run, seeded
        texts = []
        for seed in (0, 0, 1):
            assert sample_main([str(tmp_path), "--chars", "40", "--seed", str(seed)]) == 0
            texts.append(capsys.readouterr().out)
        assert len(texts[0]) == 1 + 40 + 1  # the prompt (a newline), 40 characters, print's
        assert texts[0] == texts[1] != texts[2]
        assert sample_main([str(tmp_path), "--prompt", "\u20ac"]) == 2  # not in the vocabulary


def test_resume_equals_the_uninterrupted_run(tmp_path, monkeypatch) -> None:
    overrides = [*TINY, "strategy=freeze-all-but-new"]
    reference = run_in_process(overrides, tmp_path / "ref")
    calls = {"n": 0}
    original = solo_runner.train_epoch

    def dies_at_epoch_3(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("killed")
        return original(*args, **kwargs)

    monkeypatch.setattr(solo_runner, "train_epoch", dies_at_epoch_3)
    with pytest.raises(RuntimeError):
        run_in_process(overrides, tmp_path / "run")
    monkeypatch.setattr(solo_runner, "train_epoch", original)
    resumed = run_in_process(overrides, tmp_path / "run")
    assert resumed["resumes"] == 1
    assert without_timing(resumed)["stages"] == without_timing(reference)["stages"]


@pytest.mark.parametrize("strategy", ["freeze-all-but-new", "from-scratch"])
def test_stacked_seeds_equal_their_solo_runs(strategy, tmp_path, caplog) -> None:
    overrides = [*TINY, f"strategy={strategy}"]
    seeds = [0, 1]
    session = StackSession(len(seeds))
    with caplog.at_level(logging.INFO, logger="growlab"):
        for seed in seeds:
            cfg = compose_cfg([*overrides, f"seed={seed}"])
            session.join(cfg, tmp_path / f"stack{seed}", "val_loss")
    assert "training 2 runs as one stack" in caplog.text
    assert "one by one" not in caplog.text
    for seed in seeds:
        stacked = read_summary(tmp_path / f"stack{seed}")
        solo = run_in_process([*overrides, f"seed={seed}"], tmp_path / f"solo{seed}")
        assert stacked["status"] == solo["status"] == "completed"
        assert stacked["stack_size"] == 2 and set(stacked) == set(solo)
        ours, theirs = (
            first_epoch_loss(tmp_path / f"stack{seed}"),
            first_epoch_loss(tmp_path / f"solo{seed}"),
        )
        assert abs(ours - theirs) <= 1e-4
        for a, b in zip(stacked["stages"], solo["stages"], strict=True):
            assert a["val_loss"] == pytest.approx(b["val_loss"], abs=1e-3)
        assert stacked["train_flops"] == solo["train_flops"]


def test_a_run_with_dropout_is_not_stacked_and_says_why(tmp_path, caplog) -> None:
    overrides = [*TINY, "model.dropout=0.1", "train.epochs_per_stage=1"]
    session = StackSession(2)
    with caplog.at_level(logging.INFO, logger="growlab"):
        for seed in (0, 1):
            session.join(
                compose_cfg([*overrides, f"seed={seed}"]), tmp_path / f"s{seed}", "val_loss"
            )
    assert "model.dropout=0.1" in caplog.text
    assert all(read_summary(tmp_path / f"s{s}")["status"] == "completed" for s in (0, 1))
    assert torch.get_num_threads() >= 1
