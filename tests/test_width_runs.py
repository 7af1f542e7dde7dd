"""Width growth through the real stage loop: what summary.json records, Adam state carried
through a widening, evaluate rebuilding a widened checkpoint, resume of an interrupted
widening run, and a sweep over the width strategies with its report."""

from __future__ import annotations

import csv
import subprocess
import sys

import pytest
import torch
from conftest import (
    compose_cfg,
    read_summary,
    run_cli,
    run_in_process,
    sweep_folder,
    sweep_runs,
    without_timing,
)
from omegaconf import OmegaConf

from growlab.cli.evaluate import main as evaluate_main
from growlab.engine import run_base
from growlab.engine import runners as solo_runner
from growlab.engine.run_directory.checkpoint import load_network, stage_path
from growlab.engine.run_directory.records import read_metrics

WIDE = [
    "logger=none",
    "depth=2",
    "train.epochs_per_stage=1",
    "model.width=8",
    "strategy.final_width=24",
    "strategy.widen_by=8",
]


@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_widening_run_records_width_params_flops_and_preservation(tmp_path, model) -> None:
    overrides = [*WIDE, "strategy=gradmax-widen", f"model={model}", "model.norm=batch"]
    summary = run_in_process(overrides, tmp_path / "run")
    stages = summary["stages"]
    assert summary["status"] == "completed" and summary["width"] == 24
    assert [s["phase"] for s in stages] == ["train", "grow", "grow"]
    assert [s["widths"] for s in stages] == [[8, 8], [16, 16], [24, 24]]
    assert [s["depth"] for s in stages] == [2, 2, 2]
    for before, after in zip(stages, stages[1:], strict=False):
        assert after["params_total"] > before["params_total"]
        assert after["flops_per_sample"] > before["flops_per_sample"]
        assert 0 <= after["preservation_error"] <= 1e-5
        assert after["shock"]["acc_before"] == after["shock"]["acc_after"]
        assert after["params_trainable"] == after["params_total"]
    growths = [
        r for r in read_metrics(tmp_path / "run" / "metrics.jsonl") if r["event"] == "growth"
    ]
    assert [r["width"] for r in growths] == [16, 24]
    assert summary["config"]["strategy.gradmax_batches"] == 1
    # Each stage checkpoint reloads into its own (narrower or wider) architecture.
    for record in stages:
        net = load_network(stage_path(tmp_path / "run", record["stage"]))
        head = net.head[-1] if model == "cnn" else net.head
        assert head.in_features == record["width"]


def test_from_scratch_wide_trains_the_final_width_for_the_whole_schedule(tmp_path) -> None:
    summary = run_in_process([*WIDE, "strategy=from-scratch-wide"], tmp_path / "run")
    assert [s["widths"] for s in summary["stages"]] == [[24, 24]] * 3
    assert all(s["preservation_error"] is None for s in summary["stages"])
    grown = run_in_process([*WIDE, "strategy=random-widen"], tmp_path / "grown")
    assert summary["stages"][-1]["params_total"] == grown["stages"][-1]["params_total"]


def test_only_listed_layers_widen_in_a_run(tmp_path) -> None:
    summary = run_in_process([*WIDE, "strategy=net2wider", "strategy.layers=[1]"], tmp_path / "r")
    assert [s["widths"] for s in summary["stages"]] == [[8, 8], [8, 16], [8, 24]]


def test_adam_moments_are_carried_through_a_widening_in_the_loop(tmp_path, monkeypatch) -> None:
    checked: list[int] = []
    original = run_base.carry_state

    def spy(old, new, moved=None):
        carried = original(old, new, moved)
        assert moved, "a widening replaces parameters"
        for old_p, new_p in moved.items():
            corner = tuple(slice(0, n) for n in old_p.shape)
            state, before = new.state[new_p], old.state[old_p]
            assert torch.equal(state["exp_avg"][corner], before["exp_avg"])
            assert torch.equal(state["exp_avg_sq"][corner], before["exp_avg_sq"])
            new_coordinates = torch.ones(new_p.shape, dtype=torch.bool)
            new_coordinates[corner] = False
            assert new_coordinates.any() and not state["exp_avg"][new_coordinates].any()
        checked.append(carried)
        return carried

    monkeypatch.setattr(run_base, "carry_state", spy)
    overrides = [*WIDE, "strategy=net2wider", "model.norm=batch"]
    run_in_process([*overrides, "train.carry_optimizer_state=true"], tmp_path / "on")
    # Every parameter keeps (or gets a widened copy of) its state: 2 blocks x (op, norm) x 2
    # tensors + the head's 2, at both widenings.
    assert checked == [10, 10]


def test_evaluate_rebuilds_a_widened_checkpoint_by_replaying_the_growth(tmp_path, capsys) -> None:
    run_dir = tmp_path / "run"
    overrides = [*WIDE, "strategy=gradmax-widen", "model=cnn", "model.norm=batch"]
    run_in_process(overrides, run_dir)
    (run_dir / ".hydra").mkdir()
    OmegaConf.save(compose_cfg(overrides), run_dir / ".hydra" / "config.yaml")
    assert evaluate_main([str(run_dir)]) == 0
    assert evaluate_main([str(run_dir), "--stage", "1"]) == 0
    assert evaluate_main([str(run_dir), "--whole-model"]) == 0
    assert capsys.readouterr().out.count("reproduced") == 3


class Interrupt(Exception):
    pass


def test_interrupted_widening_run_resumes_to_the_same_result(tmp_path, monkeypatch) -> None:
    overrides = [
        *WIDE,
        "train.epochs_per_stage=2",
        "strategy=gradmax-widen",
        "model.norm=batch",
        "train.carry_optimizer_state=true",
    ]
    reference = run_in_process(overrides, tmp_path / "ref")
    calls = {"n": 0}
    original = solo_runner.train_epoch

    def dies_in_the_first_widened_stage(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:  # stage 1 (widened to 16), second epoch
            raise Interrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(solo_runner, "train_epoch", dies_in_the_first_widened_stage)
    with pytest.raises(Interrupt):
        run_in_process(overrides, tmp_path / "run")
    last = torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=False)
    assert [b["out"] for b in last["arch"]["blocks"]] == [16, 16]
    monkeypatch.setattr(solo_runner, "train_epoch", original)
    resumed = run_in_process(overrides, tmp_path / "run")
    assert resumed["resumes"] == 1
    assert without_timing(resumed)["stages"] == without_timing(reference)["stages"]
    a = torch.load(tmp_path / "ref" / "checkpoints" / "last.pt", weights_only=False)
    b = torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=False)
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])


def test_width_sweep_resumes_an_interrupted_run_and_reports(tmp_path, monkeypatch) -> None:
    """The README's sweep shape (strategy keys given once for every swept width strategy),
    started where one of its runs had been interrupted after a widening: that run resumes
    from its widened checkpoint to the uninterrupted result, the other runs fresh."""
    sweep = tmp_path / "sweep"
    overrides = [*WIDE, "train.epochs_per_stage=2", "seed=0"]
    reference = run_in_process([*overrides, "strategy=net2wider"], tmp_path / "ref")
    original = solo_runner.train_epoch
    calls = {"n": 0}

    def dies_after_the_first_widening(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:
            raise Interrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(solo_runner, "train_epoch", dies_after_the_first_widening)
    interrupted = sweep / sweep_folder([*overrides, "strategy=net2wider"])
    with pytest.raises(Interrupt):
        run_in_process([*overrides, "strategy=net2wider"], interrupted)
    monkeypatch.setattr(solo_runner, "train_epoch", original)

    args = ["-m", "strategy=net2wider,from-scratch-wide", *overrides, f"hydra.sweep.dir={sweep}"]
    result = run_cli(args, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    runs = sweep_runs(sweep)
    assert runs[0] == interrupted
    summaries = [read_summary(r) for r in runs]
    assert [s["strategy"] for s in summaries] == ["net2wider", "from-scratch-wide"]
    assert [s["resumes"] for s in summaries] == [1, 0]
    assert all(s["width"] == 24 and s["status"] == "completed" for s in summaries)
    assert without_timing(summaries[0]["stages"]) == without_timing(reference["stages"])

    report = subprocess.run(
        [sys.executable, "-m", "growlab.report", str(sweep)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert report.returncode == 0, report.stderr[-2000:]
    rows = list(csv.DictReader((sweep / "runs.csv").open()))
    assert {r["strategy"]: r["width"] for r in rows} == {
        "net2wider": "24",
        "from-scratch-wide": "24",
    }
    assert "from-scratch-wide" in (sweep / "report.md").read_text()


@pytest.mark.parametrize("model", ["mlp", "cnn"])
@pytest.mark.parametrize("final", [32, 48])
def test_net2wider_keeps_a_layer_norm_network_when_every_unit_is_copied_equally(
    tmp_path, model: str, final: int
) -> None:
    summary = run_in_process(
        [
            "debug=fast",
            "strategy=net2wider",
            f"model={model}",
            "model.norm=layer",
            "model.width=16",
            f"strategy.final_width={final}",
            f"strategy.widen_by={final - 16}",
            "train.epochs_per_stage=1",
        ],
        tmp_path / "run",
    )
    grown = [s for s in summary["stages"] if s["phase"] == "grow"]
    assert [s["width"] for s in grown] == [final]
    # Duplicated units leave LayerNorm's mean and variance as they were; float rounding only.
    assert grown[0]["preservation_error"] <= 1e-5
