"""Runs of the transformer growth strategies (issue 26), tiny: the preservation error recorded,
growlab.evaluate rebuilding each grown model from its checkpoint, resume after a growth equal to
the uninterrupted run, stacked seeds equal to their solo runs."""

from __future__ import annotations

import logging

import pytest
from conftest import read_summary, run_cli, run_in_process, without_timing
from test_stacked import stacked

from growlab.cli.evaluate import main as evaluate_main
from growlab.engine import runners as solo_runner

# Whole runs of every transformer operator (evaluate, resume, stacked): in `--all` (CI).
pytestmark = pytest.mark.slow

TINY = [
    "model=gpt",
    "data=shakespeare_char",
    "objective=lm",
    "logger=none",
    "depth=2",
    "train.start_depth=1",
    "model.n_embd=16",
    "model.n_head=2",
    "model.block_size=16",
    "data.eval_windows=128",
    "train.batch_size=8",
    "train.steps_per_epoch=4",
    "train.epochs_per_stage=2",
    "train.num_threads=1",
    "strategy.ramp_steps=6",  # msg-depth's mask is still ramping when the run is killed
]
STRATEGIES = ["zero-insert", "msg-depth", "gstack", "interpolate-depth"]


def lm_strategy(name: str) -> list[str]:
    return [*TINY, f"strategy={name}"]


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_grown_run_records_its_error_and_evaluate_rebuilds_it(strategy, tmp_path, capsys):
    done = run_cli([*lm_strategy(strategy), f"hydra.run.dir={tmp_path}"], tmp_path)
    assert done.returncode == 0, done.stderr
    summary = read_summary(tmp_path)
    assert summary["status"] == "completed"
    grown = summary["stages"][1]
    assert grown["phase"] == "grow" and grown["depth"] == 2
    if strategy in ("zero-insert", "msg-depth"):
        assert grown["preservation_error"] <= 1e-5
    else:  # a copy changes the function, and that is measured
        assert grown["preservation_error"] > 1e-4
    assert evaluate_main([str(tmp_path)]) == 0
    assert "-> reproduced" in capsys.readouterr().out


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_resume_after_a_growth_equals_the_uninterrupted_run(strategy, tmp_path, monkeypatch):
    overrides = lm_strategy(strategy)
    reference = run_in_process(overrides, tmp_path / "ref")
    calls = {"n": 0}
    original = solo_runner.train_epoch

    def dies_in_the_grown_stage(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:  # epoch 1 of the grown stage done, epoch 2 killed
            raise RuntimeError("killed")
        return original(*args, **kwargs)

    monkeypatch.setattr(solo_runner, "train_epoch", dies_in_the_grown_stage)
    with pytest.raises(RuntimeError):
        run_in_process(overrides, tmp_path / "run")
    monkeypatch.setattr(solo_runner, "train_epoch", original)
    resumed = run_in_process(overrides, tmp_path / "run")
    assert resumed["resumes"] == 1
    assert without_timing(resumed)["stages"] == without_timing(reference)["stages"]


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_stacked_seeds_equal_their_solo_runs(strategy, tmp_path, caplog) -> None:
    overrides = lm_strategy(strategy)
    seeds = [0, 1]
    with caplog.at_level(logging.INFO, logger="growlab"):
        summaries = stacked(overrides, seeds, tmp_path / "stack", "val_loss")
    assert "training 2 runs as one stack" in caplog.text and "one by one" not in caplog.text
    for seed, stacked_run in zip(seeds, summaries, strict=True):
        solo = run_in_process([*overrides, f"seed={seed}"], tmp_path / f"solo{seed}")
        assert stacked_run["status"] == solo["status"] == "completed"
        for a, b in zip(stacked_run["stages"], solo["stages"], strict=True):
            assert a["val_loss"] == pytest.approx(b["val_loss"], abs=1e-4)
        assert stacked_run["train_flops"] == solo["train_flops"]
