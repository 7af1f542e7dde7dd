"""End-to-end behaviour of the stage loop and the output contract it writes."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import FAST, read_summary, run_in_process, without_timing

from growlab.data import load_data
from growlab.engine import run_base
from growlab.engine import runners as solo_runner
from growlab.engine.replica_axis import Solo
from growlab.engine.run_directory.checkpoint import load_network, stage_path
from growlab.engine.run_directory.records import read_metrics
from growlab.engine.training import evaluate

STAGE_KEYS = {
    "stage",
    "depth",
    "test_acc",
    "train_loss",
    "params_total",
    "params_trainable",
    "flops_per_sample",
    "preservation_error",
    "shock",
    "improved",
    "wall_s",
}


def test_summary_follows_the_output_contract(tmp_path) -> None:
    summary = run_in_process(FAST, tmp_path / "run")
    on_disk = read_summary(tmp_path / "run")
    assert on_disk["status"] == "completed"
    for key in ("strategy", "model", "data", "seed", "depth", "test_acc", "wall_s", "stages"):
        assert key in on_disk
    assert [s["depth"] for s in on_disk["stages"]] == [1, 2, 3]
    for stage in on_disk["stages"]:
        assert stage.keys() >= STAGE_KEYS
    assert on_disk["test_acc"] == on_disk["stages"][-1]["test_acc"] == summary["test_acc"]
    grown = on_disk["stages"][1]
    assert grown["preservation_error"] is None  # random init claims nothing
    assert grown["params_trainable"] < grown["params_total"]
    assert grown["flops_per_sample"] > on_disk["stages"][0]["flops_per_sample"]
    assert set(grown["shock"]) == {"acc_before", "acc_after", "loss_before", "loss_after"}
    assert on_disk["stages"][0]["improved"] is None
    assert isinstance(grown["improved"], bool)
    rows = read_metrics(tmp_path / "run" / "metrics.jsonl")
    assert [r["event"] for r in rows].count("epoch") == 6
    assert [r["event"] for r in rows].count("growth") == 2
    assert (tmp_path / "run" / "checkpoints" / "last.pt").exists()


def test_stage_checkpoint_reloads_and_reproduces_its_test_accuracy(tmp_path) -> None:
    summary = run_in_process([*FAST, "model.norm=batch"], tmp_path / "run")
    from conftest import compose_cfg

    data = load_data(compose_cfg([]).data)
    for record in summary["stages"]:
        net = load_network(stage_path(tmp_path / "run", record["stage"]))
        assert net.depth == record["depth"]
        acc = evaluate(Solo(net), data.x_test, data.y_test, 512)[0].acc
        assert acc == pytest.approx(record["test_acc"], abs=1e-9)


def test_same_config_and_seed_give_identical_metrics(tmp_path) -> None:
    a = run_in_process([*FAST, "seed=3"], tmp_path / "a")
    b = run_in_process([*FAST, "seed=3"], tmp_path / "b")
    c = run_in_process([*FAST, "seed=4"], tmp_path / "c")
    assert without_timing(a) == without_timing(b)
    assert without_timing(a)["stages"] != without_timing(c)["stages"]


def test_identity_insert_records_its_preservation_error(tmp_path) -> None:
    summary = run_in_process([*FAST, "strategy=identity-insert"], tmp_path / "run")
    grown = summary["stages"][1:]
    assert all(s["preservation_error"] <= 1e-5 for s in grown)
    assert all(s["shock"]["acc_before"] == s["shock"]["acc_after"] for s in grown)
    assert all(s["params_trainable"] == s["params_total"] for s in summary["stages"])


def test_literal_seed_gate_reports_its_large_preservation_error(tmp_path) -> None:
    summary = run_in_process(
        [
            *FAST,
            "model=cnn",
            "model.width=4",
            "strategy=conv-multiplicative",
            "strategy.literal_seed_init=true",
        ],
        tmp_path / "run",
    )
    assert summary["stages"][1]["preservation_error"] > 1e-2


def test_finetune_all_after_adds_a_finetune_stage_at_a_lower_lr(tmp_path) -> None:
    summary = run_in_process(
        [*FAST, "strategy=finetune-all-after", "strategy.finetune_epochs=1"], tmp_path / "run"
    )
    last = summary["stages"][-1]
    assert last["phase"] == "finetune" and last["depth"] == 3
    assert last["params_trainable"] == last["params_total"]
    rows = read_metrics(tmp_path / "run" / "metrics.jsonl")
    lrs = [r["lr"] for r in rows if r["event"] == "epoch" and r["stage"] == last["stage"]]
    assert lrs == [pytest.approx(1e-4)]


def test_from_scratch_trains_the_final_depth_for_the_whole_schedule(tmp_path) -> None:
    summary = run_in_process([*FAST, "strategy=from-scratch"], tmp_path / "run")
    assert [s["depth"] for s in summary["stages"]] == [3, 3, 3]
    assert [s["phase"] for s in summary["stages"]] == ["train"] * 3  # one run, no new optimizer
    assert all(s["preservation_error"] is None and s["shock"] is None for s in summary["stages"])
    rows = read_metrics(tmp_path / "run" / "metrics.jsonl")
    assert sum(r["event"] == "epoch" for r in rows) == 6


def test_optimizer_state_is_carried_only_when_asked(tmp_path, monkeypatch) -> None:
    seen: list[int] = []
    original = run_base.carry_state

    def spy(old, new, moved=None):
        carried = original(old, new, moved)
        assert not moved  # inserting a block replaces no parameter
        seen.append(carried)
        # Carried moments are the very tensors the old optimizer had.
        for group in new.param_groups:
            for p in group["params"]:
                if p in old.state:
                    assert new.state[p]["exp_avg"] is old.state[p]["exp_avg"]
        return carried

    monkeypatch.setattr(run_base, "carry_state", spy)
    run_in_process([*FAST, "strategy=identity-insert"], tmp_path / "off")
    assert seen == []
    run_in_process(
        [*FAST, "strategy=identity-insert", "train.carry_optimizer_state=true"], tmp_path / "on"
    )
    # Stage 2 keeps block 0 and the head (3 tensors... weight+bias each = 4), stage 3 keeps 6.
    assert seen == [4, 6]


@pytest.mark.parametrize("norm", ["none", "batch"])
def test_frozen_feature_cache_gives_the_same_metrics(tmp_path, norm) -> None:
    overrides = [*FAST, "depth=4", f"model.norm={norm}"]
    cached = run_in_process([*overrides, "train.cache_frozen_features=true"], tmp_path / "c")
    plain = run_in_process([*overrides, "train.cache_frozen_features=false"], tmp_path / "p")
    for a, b in zip(cached["stages"], plain["stages"], strict=True):
        assert a["test_acc"] == pytest.approx(b["test_acc"], abs=1e-9)
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-5)


class Interrupt(Exception):
    pass


def test_interrupted_run_resumes_to_the_same_result(tmp_path, monkeypatch) -> None:
    overrides = [
        *FAST,
        "depth=3",
        "strategy=finetune-all-after",
        "strategy.finetune_epochs=2",
        "model.norm=batch",
        "train.carry_optimizer_state=true",
    ]
    reference = run_in_process(overrides, tmp_path / "ref")

    calls = {"n": 0}
    original = solo_runner.train_epoch

    def dies_at_epoch_4(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:
            raise Interrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(solo_runner, "train_epoch", dies_at_epoch_4)
    with pytest.raises(Interrupt):
        run_in_process(overrides, tmp_path / "run")
    assert read_summary(tmp_path / "run")["status"] == "failed"
    monkeypatch.setattr(solo_runner, "train_epoch", original)
    resumed = run_in_process(overrides, tmp_path / "run")

    assert resumed["resumes"] == 1
    assert without_timing(resumed)["stages"] == without_timing(reference)["stages"]
    ref_rows = read_metrics(tmp_path / "ref" / "metrics.jsonl")
    rows = read_metrics(tmp_path / "run" / "metrics.jsonl")
    assert without_timing(rows) == without_timing(ref_rows)
    # Weights at the end are identical too.
    a = torch.load(tmp_path / "ref" / "checkpoints" / "last.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=False)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["status"] == "completed"


def test_stage_starts_reuse_exactly_the_evaluation_of_the_weights_they_start_from(
    tmp_path,
) -> None:
    """A growth's "before" and a fine-tune's start are the previous stage's final weights:
    their numbers must equal that stage's validation figures, to the bit."""
    overrides = [*FAST, "strategy=finetune-all-after", "strategy.finetune_epochs=1", "depth=3"]
    stages = run_in_process(overrides, tmp_path / "run")["stages"]
    for previous, stage in zip(stages, stages[1:], strict=False):
        if stage["phase"] == "grow":
            assert stage["shock"]["acc_before"] == previous["val_acc"]
            assert stage["shock"]["loss_before"] == previous["val_loss"]
            assert stage["start_loss"] == stage["shock"]["loss_after"]
        else:
            assert stage["start_loss"] == previous["val_loss"]
