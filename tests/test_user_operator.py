"""A researcher's own operator, in their own package with their own config directory, runs
through the real entry point from outside growlab with no edit inside it (examples/)."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import REPO, read_summary, run_cli

EXAMPLES = REPO / "examples"
SEARCHPATH = f"hydra.searchpath=[file://{EXAMPLES / 'conf'}]"
FAST = ["train.epochs_per_stage=2", "depth=3", "logger=none"]


def user_env() -> dict[str, str]:
    # The user's package first; an existing PYTHONPATH (a growlab checkout) stays after it.
    path = os.pathsep.join(p for p in (str(EXAMPLES), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path, "WANDB_MODE": "offline"}


def run_user(args: list[str], cwd) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "growlab", *args],
        cwd=cwd,
        env=user_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_user_strategy_from_a_search_path_preserves_and_replays(tmp_path) -> None:
    run_dir = tmp_path / "run"
    # BatchNorm and dropout: the example's block is growlab's standard block, which has both.
    norm = ["model.norm=batch", "model.dropout=0.1"]
    result = run_user(
        [SEARCHPATH, "strategy=rezero-insert", *norm, *FAST, f"hydra.run.dir={run_dir}"],
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    summary = read_summary(run_dir)
    assert summary["status"] == "completed" and summary["operator"] == "ReZeroResidual"
    grown = [s for s in summary["stages"] if s["phase"] == "grow"]
    assert len(grown) == 2 and all(s["preservation_error"] == 0.0 for s in grown)
    # The checkpoint is rebuilt by replaying the user's operator from the run's config.
    evaluate = subprocess.run(
        [sys.executable, "-m", "growlab.evaluate", str(run_dir)],
        cwd=tmp_path,
        env=user_env(),
        capture_output=True,
        text=True,
    )
    assert evaluate.returncode == 0 and "reproduced" in evaluate.stdout, evaluate.stderr[-2000:]


def test_user_operator_by_target_override_with_a_field(tmp_path) -> None:
    run_dir = tmp_path / "run"
    args = [
        "strategy=identity-insert",
        "strategy.operator._target_=my_growth.ops.ReZeroResidual",
        "+strategy.operator.alpha_init=0.5",
        *FAST,
        f"hydra.run.dir={run_dir}",
    ]
    result = run_user(args, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    summary = read_summary(run_dir)
    assert summary["config"]["strategy.operator.alpha_init"] == 0.5
    # alpha starts at 0.5: the function changes at insertion, and the error measured says so.
    assert all(s["preservation_error"] > 0 for s in summary["stages"] if s["phase"] == "grow")


def test_user_operator_requirements_are_checked_before_any_work(tmp_path) -> None:
    run_dir = tmp_path / "run"
    result = run_user(
        [SEARCHPATH, "strategy=rezero-insert", "model=cnn", *FAST, f"hydra.run.dir={run_dir}"],
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "ReZeroResidual needs model=mlp|backbone, got model=cnn" in result.stdout
    assert not (run_dir / "checkpoints").exists()


def test_a_strategy_composed_from_parts_in_one_yaml(tmp_path) -> None:
    run_dir = tmp_path / "run"
    result = run_cli(
        [SEARCHPATH, "strategy=identity-then-finetune", *FAST, f"hydra.run.dir={run_dir}"],
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-2000:]
    stages = read_summary(run_dir)["stages"]
    assert [s["phase"] for s in stages] == ["train", "grow", "grow", "finetune"]
    assert all(s["preservation_error"] == 0.0 for s in stages if s["phase"] == "grow")
    grown = stages[1]
    assert grown["params_trainable"] < grown["params_total"]  # new block and head only
    assert stages[-1]["params_trainable"] == stages[-1]["params_total"]


def test_an_unknown_operator_target_is_refused_by_name(tmp_path) -> None:
    result = run_user(
        [
            "strategy.operator._target_=my_growth.ops.Nope",
            *FAST,
            f"hydra.run.dir={tmp_path / 'run'}",
        ],
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "my_growth.ops.Nope" in result.stdout and "Traceback" not in result.stdout
    assert "is its package importable here? e.g. PYTHONPATH=" in result.stdout


def test_user_config_folder_from_the_environment_in_a_sweep(tmp_path) -> None:
    sweep = tmp_path / "sweep"
    env = {**user_env(), "GROWLAB_CONFIG_PATH": str(EXAMPLES / "conf")}
    result = subprocess.run(
        [sys.executable, "-m", "growlab", "-m", "strategy=rezero-insert", "debug=fast",
         "depth=2", "seed=0,1", f"hydra.sweep.dir={sweep}"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    runs = sorted(p for p in sweep.iterdir() if p.is_dir())
    assert [read_summary(r)["operator"] for r in runs] == ["ReZeroResidual"] * 2
