"""Every exit status tells the truth: 0 all completed, 1 some run did not complete, 2 refused,
and a refusal is one line naming the bad value (and the valid choices), without a traceback and
without run outputs, through the real entry points: Hydra's own parsing, growlab's validation,
`growlab.evaluate`, an Optuna search with failing trials, a killed pack."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FAST, REPO, compose_cfg, mark_interrupted, read_summary
from omegaconf import OmegaConf

from growlab.config import ConfigError
from growlab.validation import validate

QUICK = ["train.epochs_per_stage=1", "depth=2", "logger=none"]


def run_module(
    module: str, args: list[str], cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    environment = {**os.environ, "WANDB_MODE": "offline", "HYDRA_FULL_ERROR": "0", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )


def assert_refused(result: subprocess.CompletedProcess, *named: str) -> str:
    """Exit 2, exactly one error line naming everything in `named`, no traceback."""
    output = result.stdout + result.stderr
    errors = [line for line in output.splitlines() if "ERROR" in line or "error:" in line]
    assert result.returncode == 2, output[-3000:]
    assert len(errors) == 1, output[-3000:]
    assert all(n in errors[0] for n in named), errors[0]
    assert "Traceback" not in output
    return errors[0]


HYDRA_CASES = [
    (["depth=abc"], ["depth=abc"]),
    (["strategy.nope=1"], ["strategy.nope", "valid keys:", "finetune_epochs"]),
    (["strategy.finetune_epoch=1"], ["strategy.finetune_epoch", "nearest valid key"]),
    pytest.param(["depth=["], ["depth=["], marks=pytest.mark.slow),
    (["model=nope"], ["model=nope", "valid choices: backbone, cnn, gpt, mlp"]),
    pytest.param(
        ["experiment=nonexistent"],
        ["experiment=nonexistent", "valid choices:", "anchor_fmnist_mlp", "seed004_unsupervised"],
        marks=pytest.mark.slow,
    ),
    (["-m", "depth=abc,2"], ["depth=abc"]),
    pytest.param(
        ["-m", "experiment=nonexistent,anchor_fmnist_mlp"],
        ["experiment=nonexistent"],
        marks=pytest.mark.slow,
    ),
    (["-m", "depth=interval(1,3)"], ["depth=interval(1,3)", "hydra/sweeper=optuna"]),
]


@pytest.mark.parametrize(("args", "named"), HYDRA_CASES)
def test_hydra_parse_errors_are_one_line_exit_2(tmp_path, args, named) -> None:
    run_dir, sweep = tmp_path / "run", tmp_path / "sweep"
    where = [f"hydra.run.dir={run_dir}", f"hydra.sweep.dir={sweep}"]
    quick = ["train.epochs_per_stage=1", "logger=none"]  # depth is one of the cases
    result = run_module("growlab", [*args, *quick, *where], cwd=tmp_path)
    assert_refused(result, *named)
    assert not run_dir.exists() and not sweep.exists()


@pytest.mark.parametrize(
    ("overrides", "line"),
    [
        (["hydra/launcher=nope"], "hydra/launcher=nope is not an option; valid choices: basic,"),
        (["resume=nope"], "resume=nope: Invalid value 'nope', expected one of [auto, restart]"),
        (["seed=1.5"], "seed=1.5: Value '1.5' of type 'float' could not be converted"),
        (["train.epoch_per_stage=1"], "nearest valid key: epochs_per_stage; valid keys:"),
    ],
)
def test_hydra_errors_become_one_line_naming_the_value(overrides, line) -> None:
    from growlab.cli.exit_status import one_line

    with pytest.raises(Exception) as caught:
        compose_cfg(overrides)
    assert line in one_line(caught.value) and "\n" not in one_line(caught.value)


def test_hydra_full_error_still_gives_the_whole_trace(tmp_path) -> None:
    result = run_module("growlab", ["depth=abc"], cwd=tmp_path, env={"HYDRA_FULL_ERROR": "1"})
    assert result.returncode != 0 and "Traceback" in result.stderr


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["run", "sweep"])
def test_an_output_folder_that_cannot_be_made_is_refused(tmp_path, mode) -> None:
    regular_file = tmp_path / "a_file"
    regular_file.write_text("")
    folder = regular_file / "out"
    args = [f"hydra.run.dir={folder}"] if mode == "run" else ["-m", f"hydra.sweep.dir={folder}"]
    assert_refused(run_module("growlab", [*args, *QUICK], cwd=tmp_path), str(folder))
    result = run_module("growlab", ["hydra.run.dir=/proc/x", *QUICK], cwd=tmp_path)
    assert_refused(result, "/proc/x")


CONFIG_CASES = [
    (["+train.epoch_per_stage=1"], ["train.epoch_per_stage", "train.epochs_per_stage"]),
    pytest.param(["+foo=1"], ["foo is not a key"], marks=pytest.mark.slow),
    (["seed=4294967296"], ["seed=4294967296", "0..4294967295"]),
    pytest.param(
        ["seed=18446744073709551616"],
        ["seed=18446744073709551616", "0..4294967295"],
        marks=pytest.mark.slow,
    ),
    (["strategy=net2wider", "strategy.layers=[]"], ["strategy.layers=[]"]),
]


@pytest.mark.parametrize(("args", "named"), CONFIG_CASES)
def test_config_refusals_through_the_cli(tmp_path, args, named) -> None:
    run_dir = tmp_path / "run"
    result = run_module("growlab", [*args, *QUICK, f"hydra.run.dir={run_dir}"], cwd=tmp_path)
    assert_refused(result, *named)
    assert not (run_dir / "checkpoints").exists() and not (run_dir / "metrics.jsonl").exists()


def test_a_sweep_with_an_unknown_key_starts_no_job(tmp_path) -> None:
    sweep = tmp_path / "sweep"
    args = ["-m", "seed=0,1", "+train.epoch_per_stage=1", *QUICK, f"hydra.sweep.dir={sweep}"]
    result = run_module("growlab", args, cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 2 and "Traceback" not in output, output[-3000:]
    assert "nearest valid key: train.epochs_per_stage" in output
    assert not list(sweep.glob("*/summary.json"))


VALUE_CASES = [
    (["seed=4294967296"], "seed=4294967296"),
    (["seed=-1"], "seed=-1"),
    (["data.split_seed=4294967296"], "data.split_seed"),
    (["+train.epoch_per_stage=1"], "nearest valid key: train.epochs_per_stage"),
    (["+strategy.finetune_epoch=2"], "nearest valid key: strategy.finetune_epochs"),
    (["+data.root=x"], "data.root is not a key"),
    (["+scheduler.foo=1"], "scheduler.foo is not a key"),
    (["strategy=random-widen", "strategy.layers=[]"], "strategy.layers=[]"),
    (["~depth"], "depth: Key 'depth' not in 'Config'"),
    (["seed=${oc.env:GROWLAB_TEST_UNSET}"], "GROWLAB_TEST_UNSET"),
    (["model.width=???"], "model.width=??? has no value"),
]


@pytest.mark.parametrize(("overrides", "named"), VALUE_CASES)
def test_validation_refuses(overrides, named) -> None:
    with pytest.raises(ConfigError) as caught:
        validate(compose_cfg(overrides), environment=False)
    assert named in str(caught.value)


@pytest.mark.parametrize(
    "overrides",
    [["seed=4294967295"], ["+optimizer.eps=1e-3"], ["strategy=net2wider", "strategy.layers=[0]"]],
)
def test_validation_accepts_the_edges(overrides) -> None:
    validate(compose_cfg(overrides), environment=False)


def test_an_unwritable_cache_folder_is_refused_for_fashion_mnist(tmp_path) -> None:
    regular_file = tmp_path / "a_file"
    regular_file.write_text("")
    run_dir = tmp_path / "run"
    args = ["data=fashion_mnist", *QUICK, f"hydra.run.dir={run_dir}"]
    env = {"GROWLAB_CACHE_DIR": str(regular_file / "cache")}
    assert_refused(run_module("growlab", args, cwd=tmp_path, env=env), "GROWLAB_CACHE_DIR")
    assert not (run_dir / "checkpoints").exists()


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("evaluate") / "run"
    result = run_module("growlab", [*QUICK, f"hydra.run.dir={run_dir}"], cwd=run_dir.parent)
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir


def damaged(run_dir: Path, tmp_path: Path, how: str) -> tuple[Path, list[str]]:
    """A copy of the finished run damaged `how`, and the evaluate arguments that reach it."""
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    if how == "stage":
        stage = copy / "checkpoints" / "stage_01.pt"
        stage.write_bytes(stage.read_bytes()[:300])
        return copy, [str(copy), "--stage", "1"]
    if how == "whole":
        (copy / "checkpoints" / "model_full.pt").write_text("garbage")
        return copy, [str(copy), "--whole-model"]
    if how == "incomplete":
        mark_interrupted(copy)
    if how == "operator":
        config = copy / ".hydra" / "config.yaml"
        cfg = OmegaConf.load(config)
        cfg.strategy.operator._target_ = "nope.Nope"
        OmegaConf.save(cfg, config)
    if how == "not an object":
        (copy / "summary.json").write_text("[1, 2]")
    if how == "sweep":
        sweep = tmp_path / "sweep"
        shutil.copytree(copy, sweep / "0_a")
        shutil.copytree(copy, sweep / "1_b")
        return sweep, [str(sweep)]
    return copy, [str(copy)]


EVALUATE_CASES = [
    ("stage 99", ["--stage 99", "valid: 0..1"]),
    ("stage", ["stage_01.pt", "cannot be read"]),
    ("whole", ["model_full.pt", "cannot be read"]),
    ("incomplete", ["no completed run", "running"]),
    ("operator", ["nope.Nope"]),
    ("not an object", ["summary.json"]),
    ("sweep", ["sweep folder", "0_a, 1_b"]),
]


@pytest.mark.parametrize(("how", "named"), EVALUATE_CASES)
def test_evaluate_refuses_what_it_cannot_evaluate(finished_run, tmp_path, how, named) -> None:
    if how == "stage 99":
        args = [str(finished_run), "--stage", "99"]
    else:
        _, args = damaged(finished_run, tmp_path, how)
    assert_refused(run_module("growlab.evaluate", args, cwd=tmp_path), *named)


OPTUNA = ["-m", "hydra/sweeper=optuna", "hydra.sweeper.sampler.seed=0", *FAST, "depth=2"]


@pytest.mark.slow
def test_a_diverging_trial_fails_and_the_search_goes_on(tmp_path) -> None:
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    sweep = tmp_path / "sweep"
    args = [*OPTUNA, "optimizer.lr=choice(1e-3,1e6)", "hydra.sweeper.n_trials=3"]
    result = run_module("growlab", [*args, f"hydra.sweep.dir={sweep}"], cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 1 and "Traceback" not in output, output[-3000:]
    statuses = sorted(read_summary(d)["status"] for d in sweep.iterdir() if d.is_dir())
    # Two trials draw lr=1e6: one run, one folder (named by its config); both are counted.
    assert sorted(statuses) == ["completed", "diverged"]
    assert "1 of 3 runs completed; 2 did not (2 diverged)" in output
    found = OmegaConf.load(sweep / "optimization_results.yaml")
    assert found.best_params["optimizer.lr"] == pytest.approx(1e-3)


@pytest.mark.slow
def test_a_search_where_no_trial_completes_says_so_in_one_line(tmp_path) -> None:
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    sweep = tmp_path / "sweep"
    args = [*OPTUNA, "train.batch_size=choice(0,-1)", "hydra.sweeper.n_trials=2"]
    result = run_module("growlab", [*args, f"hydra.sweep.dir={sweep}"], cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 1 and "Traceback" not in output, output[-3000:]
    assert "0 of 2 runs completed; 2 did not (2 refused)" in output
    assert not (sweep / "optimization_results.yaml").exists()


@pytest.mark.slow
@pytest.mark.parametrize("runs_per_job", [2, 1])
def test_a_killed_pack_counts_its_runs_and_exits_1(tmp_path, runs_per_job) -> None:
    """The job's process is SIGKILLed (as by the OOM killer) in its second run: the first run's
    result is read from its folder (or its own job), the second counts as failed, no submitit
    traceback."""
    sweep = tmp_path / "sweep"
    args = [
        "-m",
        "hydra/launcher=local",
        f"hydra.sweeper.runs_per_job={runs_per_job}",
        "strategy.operator._target_=killing_operator.KilledAtGrowth",
        "+strategy.operator.kill=false,true",
        *QUICK,
        f"hydra.sweep.dir={sweep}",
    ]
    path = os.pathsep.join([str(REPO / "tests"), os.environ.get("PYTHONPATH", "")])
    result = run_module("growlab", args, cwd=tmp_path, env={"PYTHONPATH": path})
    output = result.stdout + result.stderr
    assert result.returncode == 1, output[-3000:]
    assert "Traceback" not in output and "UncompletedJobError" not in output
    assert "ended without results" in output
    assert "1 of 2 runs completed; 1 did not complete (1 failed)" in output


class InProcessLauncher:
    """Stands in for growlab's submitit launcher inside a Pack: runs a job in this process.
    `preempt_after` simulates the requeue signal arriving once that run has started."""

    def __init__(self, root: Path, preempt_after: int | None) -> None:
        self.root, self.preempt_after = root, preempt_after

    def __call__(self, overrides, _dir_key, num, _job_id, _singletons):
        from hydra.core.utils import JobReturn, JobStatus

        from growlab.engine.job import run_job

        run_dir = self.root / str(num)
        run_dir.mkdir(parents=True, exist_ok=True)
        with open(self.root / "started.log", "a") as log:
            log.write(f"{num}\n")
        summary = run_job(compose_cfg(list(overrides)), run_dir)
        if num == self.preempt_after:
            self.preempt_after = None  # the requeued pack is not preempted again
            mark_interrupted(run_dir)  # killed before its summary said "completed"
            raise InterruptedError("preempted")
        return JobReturn(overrides=overrides, status=JobStatus.COMPLETED, _return_value=summary)


def test_a_requeued_pack_skips_finished_runs_and_resumes_the_interrupted_one(tmp_path) -> None:
    import pickle

    from hydra_plugins.growlab_launcher.packing import Pack

    runs = [([*QUICK, f"seed={s}"], "hydra.sweep.dir", s, f"job_{s}", {}) for s in (0, 1)]
    pack = Pack(InProcessLauncher(tmp_path, preempt_after=1), runs)  # type: ignore[arg-type]
    with pytest.raises(InterruptedError):
        pack()
    first = (tmp_path / "0" / "summary.json").read_text()
    requeued = pickle.loads(pickle.dumps(pack.checkpoint()))  # what submitit resubmits
    returns = requeued.function(*requeued.args, **requeued.kwargs)
    assert [r.return_value["status"] for r in returns] == ["completed", "completed"]
    assert (tmp_path / "started.log").read_text().split() == ["0", "1", "1"]
    assert (tmp_path / "0" / "summary.json").read_text() == first  # not retrained
    resumed = json.loads((tmp_path / "1" / "summary.json").read_text())
    assert resumed["resumes"] == 1  # from its `last` checkpoint, not from scratch
