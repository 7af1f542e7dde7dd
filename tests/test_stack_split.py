"""Stacked seeds whose growth triggers decide differently: the stack splits, members that agree
go on stacked together, the others solo, the log says so, and every run's results equal its
solo run's."""

from __future__ import annotations

import pytest
from conftest import FAST, read_summary, run_cli, sweep_runs

# Merit on digits: stage 2 ends after 4 epochs for seed 2 and 5 for seeds 0, 1, 3; stage 3
# after 3 epochs for seeds 0 and 3 and 4 for seed 1.
MERIT = [
    *FAST,
    "trigger=merit",
    "trigger.threshold=0.6",
    "trigger.max_share=1.0",  # one whole batch: the signals the epochs below come from
    "trigger.stop_without_gain=false",  # every stage grows: the splits come from stage ends
    "depth=3",
    "train.epochs_per_stage=[6,5,5]",
    "seed=0,1,2,3",
    "logger=none",
]


def test_a_stack_splits_into_the_members_that_agree_with_solo_results(tmp_path) -> None:
    solo = run_cli(["-m", *MERIT, f"hydra.sweep.dir={tmp_path / 'solo'}"], tmp_path)
    assert solo.returncode == 0, solo.stderr[-3000:]
    args = ["-m", *MERIT, "hydra.sweeper.stack_seeds=true", f"hydra.sweep.dir={tmp_path / 's'}"]
    stacked = run_cli(args, tmp_path)
    assert stacked.returncode == 0, stacked.stderr[-3000:]
    log = stacked.stdout + stacked.stderr
    assert (
        "the stack of seeds 0,1,2,3 splits: the growth trigger ends stage 2 after 4 epoch(s) "
        "for seeds 2 only; seeds 0,1,3 go on stacked; seed 2 alone"
    ) in log
    assert (
        "the stack of seeds 0,1,3 splits: the growth trigger ends stage 3 after 3 epoch(s) "
        "for seeds 0,3 only; seeds 0,3 go on stacked; seed 1 alone"
    ) in log
    sizes = {}
    for one, two in zip(sweep_runs(tmp_path / "solo"), sweep_runs(tmp_path / "s"), strict=True):
        a, b = read_summary(one), read_summary(two)
        assert [s["epochs"] for s in a["stages"]] == [s["epochs"] for s in b["stages"]]
        for x, y in zip(a["stages"], b["stages"], strict=True):
            assert y["val_loss"] == pytest.approx(x["val_loss"], rel=1e-4)
            assert y["cum_train_flops"] == x["cum_train_flops"]
        sizes[b["seed"]] = [s["stack_size"] for s in b["stages"]]
    assert sizes == {0: [4, 3, 2], 1: [4, 3, 1], 2: [4, 1, 1], 3: [4, 3, 2]}


def test_a_stack_splits_when_growth_stops_for_some_seeds_only(tmp_path) -> None:
    # Merit's best signal in stage 1: 0.56 for seed 0, about 0.6 for seeds 1, 2 and 3.
    stops = [a for a in MERIT if not a.startswith("trigger.threshold")]
    stops += ["trigger.threshold=1e9", "trigger.stop_below=0.58", "hydra.sweeper.stack_seeds=true"]
    done = run_cli(["-m", *stops, f"hydra.sweep.dir={tmp_path / 's'}"], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (
        "the stack of seeds 0,1,2,3 splits: the growth trigger stops growing for seeds 0 only; "
        "seed 0 alone; seeds 1,2,3 go on stacked"
    ) in done.stdout + done.stderr
    runs = {read_summary(run)["seed"]: read_summary(run) for run in sweep_runs(tmp_path / "s")}
    assert runs[0]["stopped_growing"]["stage"] == 0 and len(runs[0]["stages"]) == 1
    for seed in (1, 2, 3):
        assert "stopped_growing" not in runs[seed]
        assert [s["stack_size"] for s in runs[seed]["stages"]] == [4, 3, 3]
