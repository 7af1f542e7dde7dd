"""What a run returns to Hydra's sweeper: a validation metric by default, so Optuna tunes on
validation and never on the test set, in the direction the metric is better in."""

from __future__ import annotations

import json
import pickle
import re
from pathlib import Path

import pytest
from conftest import FAST, run_cli
from hydra.core.utils import JobReturn, JobStatus
from omegaconf import OmegaConf

from growlab.engine.outcome import RunOutcome, outcome
from hydra_plugins.growlab_sweeper.growlab_sweeper import job_status


def final_stages(sweep: Path) -> list[dict]:
    summaries = [json.loads(p.read_text()) for p in sorted(sweep.glob("*/summary.json"))]
    assert summaries and all(s["status"] == "completed" for s in summaries)
    return [s["stages"][-1] for s in summaries]


@pytest.mark.parametrize(
    ("metric", "direction", "best"),
    [
        ("val_acc", "maximize", max),
        pytest.param("val_loss", "minimize", min, marks=pytest.mark.slow),
    ],
)
def test_optuna_tunes_the_validation_metric(tmp_path, metric, direction, best) -> None:
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    sweep = tmp_path / "sweep"
    args = ["-m", "hydra/sweeper=optuna", "optimizer.lr=interval(1e-4,1e-2)", *FAST, "depth=2"]
    args += ["hydra.sweeper.n_trials=2", f"return_metric={metric}", f"hydra.sweep.dir={sweep}"]
    result = run_cli(args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"Directions: ['{direction}']" in result.stderr + result.stdout
    found = OmegaConf.load(sweep / "optimization_results.yaml")
    values = [stage[metric] for stage in final_stages(sweep)]
    assert len(values) == 2
    assert found.best_value == pytest.approx(best(values))


def test_the_growlab_sweeper_reads_the_status_and_the_value_pickles(tmp_path) -> None:
    summary = {"status": "completed", "test_acc": 0.8, "stages": [{"val_acc": 0.7, "val_loss": 1}]}
    value = outcome(summary, "val_acc", str(tmp_path))
    assert float(value) == 0.7 and value.test_acc == 0.8
    copy = pickle.loads(pickle.dumps(value))  # submitit sends it back from the SLURM job
    assert float(copy) == 0.7 and copy.status == "completed" and copy.run_dir == str(tmp_path)
    diverged = outcome({**summary, "status": "diverged"}, "val_acc", "r")
    assert diverged != diverged  # NaN: Optuna records a failed trial, never a good one

    def returned(v: object) -> JobReturn:
        job = JobReturn()
        job.status, job.return_value = JobStatus.COMPLETED, v
        return job

    assert job_status(returned(value)) == "completed"
    assert job_status(returned(RunOutcome(None, "refused", "r", "val_acc"))) == "refused"
    assert job_status(returned({"status": "diverged"})) == "diverged"


def test_return_metric_is_a_choice(tmp_path) -> None:
    result = run_cli([*FAST, "return_metric=test_loss", f"hydra.run.dir={tmp_path}/r"], tmp_path)
    assert result.returncode != 0
    assert re.search(r"val_acc.*val_loss.*test_acc", result.stderr)


def test_hydra_basic_sweeper_still_composes(tmp_path) -> None:
    """Optuna's direction is added only for hydra/sweeper=optuna, never to other sweepers."""
    sweep = tmp_path / "sweep"
    args = ["-m", "hydra/sweeper=basic", *FAST, "depth=1", f"hydra.sweep.dir={sweep}"]
    result = run_cli(args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert final_stages(sweep)
