"""`hydra.sweeper.runs_per_job=K`: K runs per launched process, each with its own directory and
the same results as unpacked runs; bad packing settings are refused before anything starts.
(The SLURM side, including a requeued pack, is in tests/test_slurm.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_cli, sweep_runs, without_timing

FAST = ["train.epochs_per_stage=1", "depth=2", "logger=none"]


def summaries(sweep: Path) -> dict[int, dict]:
    """Each run's summary by job number."""
    return {
        num: json.loads((run / "summary.json").read_text())
        for num, run in enumerate(sweep_runs(sweep))
    }


def test_local_runs_are_packed_three_per_process_with_unchanged_results(tmp_path) -> None:
    packed, plain = tmp_path / "packed", tmp_path / "plain"
    common = ["-m", "seed=0,1,2,3,4", *FAST]
    result = run_cli(
        [
            *common,
            "hydra/launcher=local",
            "hydra.sweeper.runs_per_job=3",
            f"hydra.sweep.dir={packed}",
        ],
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "5 runs packed into 2 jobs" in result.stdout + result.stderr
    runs = summaries(packed)
    assert sorted(runs) == [0, 1, 2, 3, 4]
    assert all(s["status"] == "completed" for s in runs.values())
    processes = [{runs[i]["pid"] for i in pack} for pack in ([0, 1, 2], [3, 4])]
    assert all(len(p) == 1 for p in processes) and processes[0] != processes[1]
    assert runs[0]["pid"] != __import__("os").getpid()

    result = run_cli([*common, f"hydra.sweep.dir={plain}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    reference = summaries(plain)
    for i in range(5):
        assert without_timing(runs[i]["stages"]) == without_timing(reference[i]["stages"])


@pytest.mark.slow
def test_rerunning_a_packed_sweep_changes_no_finished_result(tmp_path) -> None:
    sweep = tmp_path / "sweep"
    args = [
        "-m",
        "seed=0,1",
        *FAST,
        "hydra/launcher=local",
        "hydra.sweeper.runs_per_job=2",
        f"hydra.sweep.dir={sweep}",
    ]
    assert run_cli(args, cwd=tmp_path).returncode == 0
    before = {d.name: (d / "summary.json").read_bytes() for d in sweep.glob("[0-9]*")}
    again = run_cli(args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "2 of 2 runs completed" in again.stdout + again.stderr
    after = {d.name: (d / "summary.json").read_bytes() for d in sweep.glob("[0-9]*")}
    assert after == before


@pytest.mark.slow
def test_bad_packing_settings_are_refused_before_anything_runs(tmp_path) -> None:
    sweep = tmp_path / "sweep"
    for value in ("0", "-2", "abc", "1.5"):
        result = run_cli(
            [
                "-m",
                "seed=0,1",
                *FAST,
                f"hydra.sweeper.runs_per_job={value}",
                f"hydra.sweep.dir={sweep}",
            ],
            cwd=tmp_path,
        )
        output = result.stdout + result.stderr
        assert result.returncode == 2, (value, output[-2000:])
        assert f"hydra.sweeper.runs_per_job={value}" in output and "int >= 1" in output
        assert "Traceback" not in output and not sweep.exists()

    # Hydra's own submitit launcher cannot pack: refused with the launchers that can.
    result = run_cli(
        [
            "-m",
            "seed=0,1",
            *FAST,
            "hydra/launcher=submitit_local",
            "hydra.sweeper.runs_per_job=2",
            f"hydra.sweep.dir={sweep}",
        ],
        cwd=tmp_path,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 2, output[-2000:]
    assert "hydra/launcher=slurm" in output and "LocalLauncher" in output
    assert not sweep.exists()


def test_the_basic_launcher_accepts_packing_and_runs_everything_in_one_process(tmp_path) -> None:
    sweep = tmp_path / "sweep"
    result = run_cli(
        ["-m", "seed=0,1,2", *FAST, "hydra.sweeper.runs_per_job=2", f"hydra.sweep.dir={sweep}"],
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert len({s["pid"] for s in summaries(sweep).values()}) == 1
