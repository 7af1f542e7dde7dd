"""Seeds trained together as a stack of replicas: each replica is its solo run, computed with
the others (growlab.engine.stacking, hydra.sweeper.stack_seeds)."""

from __future__ import annotations

import json
import logging
import math
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import (
    CONF,
    REPO,
    compose_cfg,
    read_summary,
    run_cli,
    run_in_process,
    sweep_runs,
    without_timing,
)

from growlab.engine.loop import Run
from growlab.engine.run_directory.records import read_metrics
from growlab.engine.stacking.session import StackSession

STACK_LINE = "as one stack"


def stacked(
    overrides: list[str], seeds: list[int], root: Path, metric: str = "val_acc"
) -> list[dict[str, Any]]:
    """Train these seeds as one stack in this process (each in root/seed<N>, returning
    `metric` to the sweeper); their summaries."""
    session = StackSession(len(seeds))
    for seed in seeds:
        session.join(compose_cfg([*overrides, f"seed={seed}"]), root / f"seed{seed}", metric)
    return [read_summary(root / f"seed{seed}") for seed in seeds]


def first_epoch_loss(run_dir: Path) -> float:
    rows = read_metrics(run_dir / "metrics.jsonl")
    return next(r["train_loss"] for r in rows if r["event"] == "epoch")


CASES = [
    ["model=mlp", "strategy=freeze-all-but-new"],
    ["model=mlp", "strategy=identity-insert"],
    ["model=cnn", "strategy=freeze-all-but-new"],
    ["model=cnn", "strategy=identity-insert"],
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(o.split("=")[1] for o in c))
def test_each_replica_matches_its_solo_run(case, tmp_path, caplog) -> None:
    overrides = [*case, "depth=3", "train.epochs_per_stage=4", "logger=none"]
    if "model=cnn" in case:
        # One thread: several on a busy 2-core machine are many times slower.
        # SGD and short stages: a CNN's stacked (vmap) and solo convolutions round differently,
        # and six Adam epochs per stage amplify that to points by the third stage (1e-7 after
        # two epochs per stage, 4e-4 after six, on the same code): chaos, not stacking.
        overrides += ["train.epochs_per_stage=3", "optimizer=sgd", "optimizer.lr=0.05"]
        overrides += ["train.num_threads=1"]
    seeds = [0, 1, 2]
    with caplog.at_level(logging.INFO, logger="growlab"):
        summaries = stacked(overrides, seeds, tmp_path / "stack")
    assert f"training 3 runs {STACK_LINE}" in caplog.text
    for seed, summary in zip(seeds, summaries, strict=True):
        solo = run_in_process([*overrides, f"seed={seed}"], tmp_path / f"solo{seed}")
        assert summary["status"] == solo["status"] == "completed"
        assert summary["stack_size"] == 3 and solo["stack_size"] == 1
        assert set(summary) == set(solo)
        stacked_loss = first_epoch_loss(tmp_path / "stack" / f"seed{seed}")
        solo_loss = first_epoch_loss(tmp_path / f"solo{seed}")
        assert stacked_loss == pytest.approx(solo_loss, rel=1e-4)
        assert abs(summary["test_acc"] - solo["test_acc"]) <= 0.01
        for ours, theirs in zip(summary["stages"], solo["stages"], strict=True):
            assert ours["val_loss"] == pytest.approx(theirs["val_loss"], rel=1e-2)
        assert [s["depth"] for s in summary["stages"]] == [s["depth"] for s in solo["stages"]]
        assert summary["train_flops"] == solo["train_flops"]
        if "strategy=identity-insert" in case:
            grown = [s for s in summary["stages"] if s["phase"] == "grow"]
            assert grown and all(s["preservation_error"] <= 1e-5 for s in grown)
    assert len({json.dumps(s["stages"][-1]["test_acc"]) for s in summaries}) > 1  # own seeds


# The transformer-growth strategies (model=gpt), on a tiny character model.
LM_STRATEGIES = {"zero-insert", "msg-depth", "gstack", "interpolate-depth", "widen-lm"}
LM = ["model=gpt", "data=shakespeare_char", "objective=lm", "model.n_embd=16", "model.n_head=2",
      "model.block_size=16", "data.eval_windows=128", "train.steps_per_epoch=4"]  # fmt: skip


def strategies() -> list[list[str]]:
    names = sorted(p.stem for p in (CONF / "strategy").glob("*.yaml"))
    cases = [
        [*(["model=cnn"] if "conv" in n else []), *(LM if n in LM_STRATEGIES else []),
         f"strategy={n}"]
        for n in names
    ]  # fmt: skip
    user = REPO / "examples" / "conf"
    return [*cases, [f"hydra.searchpath=[file://{user}]", "strategy=rezero-insert"]]


@pytest.mark.parametrize("case", strategies(), ids=lambda c: c[-1].split("=")[1])
def test_every_strategy_trains_stacked(case, tmp_path, caplog, monkeypatch) -> None:
    monkeypatch.syspath_prepend(str(REPO / "examples"))  # the researcher's own operator
    overrides = [*case, "debug=fast", "depth=2"]
    with caplog.at_level(logging.INFO, logger="growlab"):
        summaries = stacked(overrides, [0, 1], tmp_path)
    assert f"training 2 runs {STACK_LINE}" in caplog.text
    assert "one by one" not in caplog.text
    assert [s["status"] for s in summaries] == ["completed", "completed"]
    assert summaries[0]["stages"][-1]["val_loss"] != summaries[1]["stages"][-1]["val_loss"]


def test_dropout_falls_back_to_solo_runs_and_says_why(tmp_path, caplog) -> None:
    overrides = ["debug=fast", "model.dropout=0.2"]
    with caplog.at_level(logging.INFO, logger="growlab"):
        summaries = stacked(overrides, [0, 1], tmp_path / "stack")
    assert "train one by one: model.dropout > 0" in caplog.text
    for seed, summary in zip([0, 1], summaries, strict=True):
        solo = run_in_process([*overrides, f"seed={seed}"], tmp_path / f"solo{seed}")
        assert without_timing(summary["stages"]) == without_timing(solo["stages"])


def test_a_diverging_replica_is_masked_out_and_the_others_go_on(tmp_path, monkeypatch) -> None:
    overrides = ["debug=fast", "strategy=identity-insert"]
    reference = stacked(overrides, [0, 1, 2], tmp_path / "reference")
    begin_stage = Run.begin_stage

    def poisoned(self: Run, plan: Any) -> None:
        begin_stage(self, plan)
        if self.cfg.seed == 1 and self.progress.stage == 1:  # seed 1 blows up after growing
            with torch.no_grad():
                for p in self.net.parameters():
                    p.fill_(float("nan"))

    monkeypatch.setattr(Run, "begin_stage", poisoned)
    summaries = stacked(overrides, [0, 1, 2], tmp_path / "poisoned")
    assert [s["status"] for s in summaries] == ["completed", "diverged", "completed"]
    assert "training loss is nan" in summaries[1]["error"]
    assert len(summaries[1]["stages"]) == 1  # it stopped in its second stage
    for seed in (0, 2):
        ours, ref = summaries[seed], reference[seed]
        assert len(ours["stages"]) == len(ref["stages"])
        for a, b in zip(ours["stages"], ref["stages"], strict=True):
            assert math.isfinite(a["val_loss"])
            assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-5)
            assert abs(a["test_acc"] - b["test_acc"]) <= 0.01


def test_a_rerun_stack_keeps_finished_runs_and_trains_the_rest(tmp_path) -> None:
    overrides = ["debug=fast"]
    run_in_process([*overrides, "seed=0"], tmp_path / "seed0")
    finished = (tmp_path / "seed0" / "summary.json").read_text()
    summaries = stacked(overrides, [0, 1, 2], tmp_path)
    assert (tmp_path / "seed0" / "summary.json").read_text() == finished
    assert [s["status"] for s in summaries] == ["completed"] * 3
    assert summaries[0]["stack_size"] == 1 and summaries[1]["stack_size"] == 2


SWEEP = ["-m", "seed=0,1", "hydra.sweeper.stack_seeds=true", "logger=none"]
RESUMABLE = ["train.batch_size=8", "train.epochs_per_stage=6", "depth=2"]


def test_a_stacked_sweep_through_the_cli_gives_every_run_its_own_outputs(tmp_path) -> None:
    sweep = tmp_path / "sweep"
    result = run_cli([*SWEEP, "debug=fast", "depth=1,2", f"hydra.sweep.dir={sweep}"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "4 jobs in 2 stacks" in result.stdout + result.stderr
    runs = sorted(p for p in sweep.iterdir() if p.is_dir())
    assert len(runs) == 4
    for run in runs:
        summary = read_summary(run)
        seed = summary["seed"]
        assert summary["status"] == "completed" and summary["stack_size"] == 2
        assert f"seed={seed}" in (run / ".hydra" / "overrides.yaml").read_text()
        log = (run / "growlab.log").read_text()
        assert f"[seed {seed}] stage" in log and f"[seed {1 - seed}]" not in log
        assert (run / "checkpoints" / "last.pt").exists()
    depths = {read_summary(r)["depth"]: read_summary(r)["pid"] for r in runs}
    assert len(depths) == 2


@pytest.mark.slow
def test_a_stack_killed_by_sigterm_resumes_to_the_uninterrupted_result(tmp_path) -> None:
    ref = tmp_path / "ref"
    result = run_cli([*SWEEP, *RESUMABLE, f"hydra.sweep.dir={ref}"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]

    sweep = tmp_path / "sweep"
    args = [sys.executable, "-m", "growlab", *SWEEP, *RESUMABLE, f"hydra.sweep.dir={sweep}"]
    proc = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 120
    first = sweep_runs(sweep, timeout=120)[0] / "metrics.jsonl"
    while not first.exists() or len(first.read_text().splitlines()) < 3:
        assert time.time() < deadline and proc.poll() is None, "sweep ended before the signal"
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    assert proc.returncode != 0

    again = run_cli([*SWEEP, *RESUMABLE, f"hydra.sweep.dir={sweep}"], tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"training 2 runs {STACK_LINE}" in again.stdout
    for name in (run.name for run in sweep_runs(ref)):
        resumed, expected = read_summary(sweep / name), read_summary(ref / name)
        assert resumed["status"] == "completed" and resumed["resumes"] == 1
        assert without_timing(resumed["stages"]) == without_timing(expected["stages"])
        rows = read_metrics(sweep / name / "metrics.jsonl")
        assert without_timing(rows) == without_timing(read_metrics(ref / name / "metrics.jsonl"))


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (["hydra.sweeper.stack_seeds=maybe"], "stack_seeds=maybe; valid: true, false"),
        (["hydra.sweeper.runs_per_job=2"], "runs_per_job=2 with stack_seeds=true"),
        (["hydra/launcher=submitit_local"], "needs a launcher that stacks runs"),
        (["hydra/launcher=basic"], "got BasicLauncher; valid: hydra/launcher=in_process"),
    ],
)
def test_a_bad_stacking_request_is_refused_before_any_run(bad, message, tmp_path) -> None:
    sweep = tmp_path / "sweep"
    args = [*SWEEP, "debug=fast", f"hydra.sweep.dir={sweep}", *bad]
    if bad[0].startswith("hydra.sweeper.stack_seeds"):
        args.remove("hydra.sweeper.stack_seeds=true")
    result = run_cli(args, tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    assert message in result.stdout + result.stderr
    assert not sweep.exists() or not any(p.is_dir() for p in sweep.iterdir())


def test_a_stack_that_never_fills_trains_the_jobs_that_joined_when_the_launcher_finishes(
    tmp_path,
) -> None:
    """A job Hydra itself fails before its task runs never joins: the launcher's `finish`
    still trains the others, each to its own solo result."""
    overrides = ["depth=2", "train.epochs_per_stage=2", "logger=none"]
    session = StackSession(3)
    placeholders = [
        session.join(compose_cfg([*overrides, f"seed={seed}"]), tmp_path / f"seed{seed}", "val_acc")
        for seed in (0, 1)
    ]
    assert [p.status for p in placeholders] == ["stacked", "stacked"]
    assert not (tmp_path / "seed0" / "summary.json").exists()
    session.finish()
    outcomes = [session.final(p) for p in placeholders]
    assert [o.status for o in outcomes] == ["completed", "completed"]
    solo = run_in_process([*overrides, "seed=1"], tmp_path / "solo")
    assert read_summary(tmp_path / "seed1")["test_acc"] == solo["test_acc"]


def test_signals_wait_until_the_stacks_checkpoints_are_written() -> None:
    from growlab.engine.deferred_signals import CheckpointGuard

    events: list[str] = []
    previous = signal.signal(signal.SIGUSR2, lambda signum, frame: events.append("handler"))
    try:
        with CheckpointGuard(lambda: events.append("writes waited for")) as guard:
            with guard.handing_over_checkpoints():
                signal.raise_signal(signal.SIGUSR2)
                time.sleep(0.01)
                assert events == []  # held back while the checkpoints are handed over
            assert events == ["writes waited for", "handler"]
            signal.raise_signal(signal.SIGUSR2)  # between epochs: at once, after the writes
            time.sleep(0.01)
            assert events[2:] == ["writes waited for", "handler"]
        assert signal.getsignal(signal.SIGUSR2) is not guard.handle  # the old handler is back
    finally:
        signal.signal(signal.SIGUSR2, previous)


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is usable here")
def test_device_auto_says_why_it_falls_back_to_the_cpu(monkeypatch, caplog) -> None:
    from growlab.engine.optim import resolve_device

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")  # as SLURM sets it for a GPU request
    with caplog.at_level(logging.WARNING, logger="growlab"):
        assert resolve_device("auto").type == "cpu"
    assert "device=auto: CUDA is not usable (CUDA_VISIBLE_DEVICES=1" in caplog.text
    caplog.clear()
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    with caplog.at_level(logging.WARNING, logger="growlab"):
        assert resolve_device("auto").type == "cpu"
    assert "CUDA is not usable" not in caplog.text  # no GPU was asked for: nothing to say
