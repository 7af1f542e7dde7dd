"""The command line, as a user runs it: one run and a basic-launcher sweep."""

from __future__ import annotations

import json

from conftest import run_cli


def test_sweep_writes_one_contract_run_dir_per_combination(tmp_path) -> None:
    sweep = tmp_path / "sweep"
    result = run_cli(
        [
            "-m",
            "strategy=freeze-all-but-new,identity-insert",
            "depth=2",
            "seed=0,1",
            "train.epochs_per_stage=1",
            f"hydra.sweep.dir={sweep}",
        ],
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    runs = sorted(p for p in sweep.iterdir() if p.is_dir())
    assert len(runs) == 4
    seen = set()
    for run in runs:
        summary = json.loads((run / "summary.json").read_text())
        assert summary["status"] == "completed"
        assert (run / ".hydra" / "config.yaml").exists()
        assert (run / "metrics.jsonl").stat().st_size > 0
        assert (run / "checkpoints" / "stage_01.pt").exists()
        seen.add((summary["strategy"], summary["seed"], summary["depth"]))
    strategies = ("freeze-all-but-new", "identity-insert")
    assert seen == {(s, seed, 2) for s in strategies for seed in (0, 1)}


def test_default_run_prints_one_line_per_stage(tmp_path) -> None:
    run_dir = tmp_path / "run"
    result = run_cli([f"hydra.run.dir={run_dir}", "train.epochs_per_stage=2"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [line for line in (result.stdout + result.stderr).splitlines() if "] depth " in line]
    assert len(lines) == 4
    assert "helped" in lines[1] or "did not help" in lines[1]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert [s["depth"] for s in summary["stages"]] == [1, 2, 3, 4]


def test_a_sweep_defined_in_a_config_file_counts_its_runs(tmp_path, monkeypatch) -> None:
    """`hydra.sweeper.params` in an experiment file: each run's "K of N" line knows N."""
    experiment = tmp_path / "conf" / "experiment"
    experiment.mkdir(parents=True)
    (experiment / "three_seeds.yaml").write_text(
        "# @package _global_\nhydra:\n  sweeper:\n    params:\n      seed: 0,1,2\n"
    )
    monkeypatch.setenv("GROWLAB_CONFIG_PATH", str(tmp_path / "conf"))
    sweep = tmp_path / "sweep"
    result = run_cli(
        ["-m", "experiment=three_seeds", "debug=fast", f"hydra.sweep.dir={sweep}"], cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-2000:]
    output = result.stdout + result.stderr
    assert "3 of 3 runs finished" in output and " of 1 runs" not in output
