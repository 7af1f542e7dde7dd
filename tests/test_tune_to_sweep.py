"""`python -m growlab.tune_to_sweep`: finished Optuna searches in, the comparison sweep out (the
printed commands, or experiment files), which runs each strategy with its own best values."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import read_summary, run_cli
from omegaconf import OmegaConf

from growlab.cli.tune_to_sweep import main

LR = "tag(log,interval(1e-3,1e-1))"
# Two trials of a 2-stage digits MLP, one epoch each: seconds per search.
SEARCH = ["-m", "hydra/sweeper=optuna", "hydra.sweeper.n_trials=2", "depth=2"]
SEARCH += ["train.epochs_per_stage=1", f"optimizer.lr={LR}", "logger=none"]
STRATEGIES = {"freeze-all-but-new": 0, "from-scratch": 1}  # strategy: the sampler's seed


def run_tool(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "growlab.tune_to_sweep", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def run_shell(script: str, cwd: Path) -> subprocess.CompletedProcess:
    """Printed commands as a user pastes them: `python` is this interpreter."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    env = {**os.environ, "PATH": path, "WANDB_MODE": "offline", "HYDRA_FULL_ERROR": "0"}
    return subprocess.run(
        ["bash", "-e", "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def searches(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A real Optuna search of the learning rate for each of two strategies (seed 0)."""
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    root = tmp_path_factory.mktemp("tune")
    folders = {}
    for strategy, sampler_seed in STRATEGIES.items():
        folder = root / strategy
        args = [*SEARCH, f"strategy={strategy}", f"hydra.sweeper.sampler.seed={sampler_seed}"]
        result = run_cli([*args, f"hydra.sweep.dir={folder}"], cwd=root)
        assert result.returncode == 0, result.stderr[-3000:]
        folders[strategy] = folder
    return folders


def best_lr(folder: Path) -> float:
    return OmegaConf.load(folder / "optimization_results.yaml").best_params["optimizer.lr"]


def growlab_commands(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith("python -m growlab -m ")]


@pytest.mark.slow
def test_the_printed_and_the_written_sweep_run_each_strategy_at_its_best_lr(
    searches: dict[str, Path], tmp_path: Path
) -> None:
    lrs = {s: best_lr(f) for s, f in searches.items()}
    assert len(set(lrs.values())) == 2, lrs  # each strategy must keep its own value
    compare = tmp_path / "compare"
    folders = [str(f) for f in searches.values()]
    printed = run_tool([*folders, "--seeds", "1,2", "--sweep-dir", str(compare)], tmp_path)
    assert printed.returncode == 0, printed.stderr
    commands = growlab_commands(printed.stdout)
    assert len(commands) == 2
    for strategy, lr in lrs.items():
        (line,) = [c for c in commands if f" strategy={strategy} " in c]
        assert f" optimizer.lr={lr!r} " in line and " seed=1,2 " in line
        assert " depth=2 " in line and " train.epochs_per_stage=1 " in line
        assert "logger=none" in line and f"hydra.sweep.dir={compare}" in line
        assert "optuna" not in line and "n_trials" not in line and "interval" not in line

    ran = run_shell(printed.stdout, tmp_path)  # the commands, then the report
    assert ran.returncode == 0, ran.stderr[-3000:]
    runs = sorted(compare.glob("*/summary.json"))
    summaries = [read_summary(p.parent) for p in runs]
    assert sorted((s["strategy"], s["seed"]) for s in summaries) == [
        (s, seed) for s in sorted(lrs) for seed in (1, 2)
    ]
    for summary in summaries:
        assert summary["status"] == "completed"
        assert summary["config"]["optimizer.lr"] == lrs[summary["strategy"]]
        assert summary["config"]["depth"] == 2
        assert summary["config"]["train.epochs_per_stage"] == 1
    assert (compare / "report.md").is_file()

    # Written as experiment files: the same runs (same configs), so nothing trains again.
    target = tmp_path / "conf" / "experiment" / "tuned.yaml"
    args = [*folders, "--seeds", "1,2", "--sweep-dir", str(compare), "--write", str(target)]
    written = run_tool(args, tmp_path)
    assert written.returncode == 0, written.stderr
    files = {s: target.with_name(f"tuned_{s}.yaml") for s in lrs}
    for strategy, path in files.items():
        text = path.read_text()
        assert text.startswith("# @package _global_\n")
        assert yaml.safe_load(text)["optimizer"]["lr"] == lrs[strategy]
    (alone,) = [
        line[len("# run: ") :]
        for line in files["from-scratch"].read_text().splitlines()
        if line.startswith("# run: ")
    ]
    (together,) = growlab_commands(written.stdout)
    assert "experiment=tuned_freeze-all-but-new,tuned_from-scratch" in together
    for script, jobs in ((alone, 2), (together, 4)):
        again = run_shell(script, tmp_path)
        assert again.returncode == 0, again.stderr[-3000:]
        output = again.stdout + again.stderr
        assert output.count("already holds a completed run of this config") == jobs
    assert sorted(compare.glob("*/summary.json")) == runs


@pytest.mark.slow
def test_default_seeds_leave_out_the_tuning_seed_and_runs_go_beside_the_searches(
    searches: dict[str, Path], tmp_path: Path
) -> None:
    folders = [str(f) for f in searches.values()]
    result = run_tool(folders, tmp_path)
    assert result.returncode == 0, result.stderr
    root = next(iter(searches.values())).parent
    for line in growlab_commands(result.stdout):
        assert line.endswith(f" seed=1,2,3,4,5 hydra.sweep.dir={root / 'compare'}")
    assert result.stdout.splitlines()[-1] == f"python -m growlab.report {root / 'compare'}"


def fake_search(
    folder: Path,
    strategy: str,
    lr: float,
    fixed: tuple[str, ...] = ("depth=2",),
    seed: int = 0,
    status: str = "completed",
    value: float = 0.9,
    metric: str = "val_acc",
    results: bool = True,
    searchpath: tuple[str, ...] = (),
) -> Path:
    """A search folder as hydra-optuna-sweeper and growlab leave it (one trial)."""
    trial = folder / f"{strategy}-trial"
    (trial / ".hydra").mkdir(parents=True)
    overrides = [f"optimizer.lr={lr}", f"strategy={strategy}", *fixed, f"seed={seed}"]
    (trial / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    choices = {"strategy": strategy, "logger": "none", "hydra/sweeper": "optuna"}
    hydra = {"hydra": {"searchpath": list(searchpath), "runtime": {"choices": choices}}}
    (trial / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump(hydra))
    (trial / ".hydra" / "config.yaml").write_text(yaml.safe_dump({"return_metric": metric}))
    summary = {"status": status, "strategy": strategy, "seed": seed}
    (trial / "summary.json").write_text(json.dumps(summary))
    if results:
        found = {"name": "optuna", "best_params": {"optimizer.lr": lr}, "best_value": value}
        (folder / "optimization_results.yaml").write_text(yaml.safe_dump(found))
    return folder


def refused(capsys: pytest.CaptureFixture[str], args: list[str]) -> str:
    assert main([str(a) for a in args]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1, err
    return err


def test_a_folder_that_is_no_finished_search_is_refused(tmp_path, capsys) -> None:
    (tmp_path / "runs").mkdir()
    err = refused(capsys, [tmp_path / "runs"])
    assert f"{tmp_path / 'runs'} has no optimization_results.yaml" in err
    assert "hydra/sweeper=optuna" in err
    err = refused(capsys, [tmp_path / "nope"])
    assert f"{tmp_path / 'nope'} is not a folder" in err


@pytest.mark.parametrize("results", [True, False])
def test_a_search_without_a_completed_trial_is_refused(tmp_path, capsys, results) -> None:
    folder = fake_search(tmp_path / "s", "from-scratch", 0.01, status="failed", results=results)
    err = refused(capsys, [folder])
    assert f"{folder}: no trial completed (1 failed)" in err


def test_two_searches_of_a_strategy_with_different_settings_are_refused(tmp_path, capsys) -> None:
    a = fake_search(tmp_path / "a", "from-scratch", 0.01, fixed=("depth=2",))
    b = fake_search(tmp_path / "b", "from-scratch", 0.02, fixed=("depth=4", "model.width=32"))
    err = refused(capsys, [a, b])
    assert f"{a} and {b} both tune from-scratch" in err
    assert "depth=2 vs depth=4" in err and "model.width unset vs model.width=32" in err


@pytest.mark.parametrize(("metric", "winner"), [("val_acc", 0.02), ("val_loss", 0.01)])
def test_two_searches_of_a_strategy_alike_keep_the_better(tmp_path, capsys, metric, winner) -> None:
    a = fake_search(tmp_path / "a", "from-scratch", 0.01, value=0.5, metric=metric)
    b = fake_search(tmp_path / "b", "from-scratch", 0.02, value=0.6, metric=metric)
    assert main([str(a), str(b)]) == 0
    (line,) = growlab_commands(capsys.readouterr().out)
    assert f" optimizer.lr={winner} " in line


def test_searches_of_different_settings_are_compared_with_a_note(tmp_path, capsys) -> None:
    a = fake_search(tmp_path / "a", "from-scratch", 0.01, fixed=("depth=2",))
    b = fake_search(tmp_path / "b", "identity-insert", 0.02, fixed=("depth=4",))
    assert main([str(a), str(b)]) == 0
    out, err = capsys.readouterr()
    assert len(growlab_commands(out)) == 2
    assert err == (
        "note: the searches differ in depth (from-scratch: depth=2; identity-insert: depth=4); "
        "the report pairs only runs that agree\n"
    )


def test_default_seeds_skip_every_tuning_seed(tmp_path, capsys) -> None:
    a = fake_search(tmp_path / "a", "from-scratch", 0.01, seed=0)
    b = fake_search(tmp_path / "b", "identity-insert", 0.02, seed=2)
    assert main([str(a), str(b)]) == 0
    commands = growlab_commands(capsys.readouterr().out)
    assert [c.split(" seed=")[1] for c in commands] == [
        f"1,3,4,5,6 hydra.sweep.dir={tmp_path}/compare"
    ] * 2


def test_the_search_path_of_a_search_carries_over(tmp_path, capsys) -> None:
    """A strategy of the user's own (GROWLAB_CONFIG_PATH, hydra.searchpath) stays findable."""
    mine = fake_search(tmp_path / "s", "mine", 0.01, searchpath=("file:///my/conf",))
    assert main([str(mine)]) == 0
    (line,) = growlab_commands(capsys.readouterr().out)
    assert line.startswith(
        "python -m growlab -m 'hydra.searchpath=[file:///my/conf]' strategy=mine"
    )
    target = tmp_path / "conf" / "experiment" / "tuned.yaml"
    assert main([str(mine), "--write", str(target)]) == 0
    (line,) = growlab_commands(capsys.readouterr().out)
    both = f"'hydra.searchpath=[file://{tmp_path / 'conf'},file:///my/conf]' experiment=tuned"
    assert line == f"python -m growlab -m {both}"
    text = target.read_text()
    assert f"# run: python -m growlab -m {both}\n" in text
    assert "- override /strategy: mine\n" in text and "seed: 1,2,3,4,5\n" in text


@pytest.mark.parametrize("seeds", ["1,x", "1,1", "-1", "", "4294967296", "0.5"])
def test_bad_seeds_are_refused(tmp_path, capsys, seeds) -> None:
    folder = fake_search(tmp_path / "s", "from-scratch", 0.01)
    err = refused(capsys, [folder, "--seeds", seeds])
    assert f"--seeds {seeds}: expected distinct integers 0..4294967295" in err


def test_write_refuses_a_path_outside_an_experiment_folder(tmp_path, capsys) -> None:
    folder = fake_search(tmp_path / "s", "from-scratch", 0.01)
    target = tmp_path / "conf" / "tuned.yaml"
    err = refused(capsys, [folder, "--write", target])
    assert f"--write {target}: expected CONF_DIR/experiment/NAME.yaml" in err
    assert not (tmp_path / "conf").exists()


def test_write_never_overwrites_a_hand_written_experiment(tmp_path, capsys) -> None:
    folder = fake_search(tmp_path / "s", "from-scratch", 0.01)
    target = tmp_path / "conf" / "experiment" / "tuned.yaml"
    target.parent.mkdir(parents=True)
    target.write_text("# @package _global_\ndepth: 7\n")
    err = refused(capsys, [folder, "--write", target])
    assert f"{target} exists and was not written by python -m growlab.tune_to_sweep" in err
    assert target.read_text() == "# @package _global_\ndepth: 7\n"


def test_the_module_refuses_in_one_line_with_exit_2(tmp_path) -> None:
    result = run_tool([str(tmp_path)], tmp_path)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [
        f"python -m growlab.tune_to_sweep: error: {tmp_path} has no optimization_results.yaml; "
        "expected the hydra.sweep.dir of a finished Optuna search "
        "(python -m growlab -m hydra/sweeper=optuna ...)"
    ]
