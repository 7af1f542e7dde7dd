"""The comparison report, from a real sweep made once with the command line."""

from __future__ import annotations

import base64
import csv
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, read_summary, run_cli
from omegaconf import OmegaConf

from growlab.engine.run_directory.result_identity import fingerprint
from growlab.report import make_report
from growlab.report.__main__ import main
from growlab.report.aggregate import Sweep, depth_curves
from growlab.report.collect import collect
from growlab.report.formats import mean_pm
from growlab.report.wandb_report import SPEC_FILE, build_report, publish

PNG = b"\x89PNG\r\n\x1a\n"
PLOTS = [
    "acc_vs_depth.png",
    "acc_vs_flops.png",
    "equal_compute.png",
    "train_vs_test.png",
    "helped_matrix.png",
    "preservation_error.png",
]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("report_sweep")
    sweep_dir = root / "sweep"
    args = ["-m", "strategy=freeze-all-but-new,identity-insert", "depth=2,3", "seed=0,1"]
    args += ["train.epochs_per_stage=1", "logger=none", f"hydra.sweep.dir={sweep_dir}"]
    result = run_cli(args, cwd=root)
    assert result.returncode == 0, result.stderr[-3000:]
    return sweep_dir


def run_dirs(sweep_dir: Path) -> list[Path]:
    return sorted(p for p in sweep_dir.iterdir() if (p / ".hydra").is_dir())


def find_run(sweep_dir: Path, strategy: str, depth: int, seed: int) -> Path:
    name = f"{strategy}-d{depth}-s{seed}-"
    (found,) = [p for p in run_dirs(sweep_dir) if p.name.startswith(name)]
    return found


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_report_files_from_a_real_sweep(sweep: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main([str(sweep), "--out", str(out)]) == 0
    for name in ["runs.csv", "report.md", "report.html", "report.json", *PLOTS]:
        assert (out / name).is_file(), name
    for name in PLOTS:
        assert (out / name).read_bytes().startswith(PNG)
    for name in ["verdict", "equal_compute", "stage_help", "results", "runs", "duplicates"]:
        assert (out / "tables" / f"{name}.csv").is_file()
        assert "\\bottomrule" in (out / "tables" / f"{name}.tex").read_text()
    rows = read_csv(out / "runs.csv")
    assert len(rows) == len(run_dirs(sweep)) == 8
    for row in rows:
        summary = read_summary(sweep / row["run"])
        assert row["status"] == "completed"
        assert float(row["test_acc"]) == summary["test_acc"]
        assert float(row["train_flops"]) == summary["train_flops"]
        assert (row["strategy"], int(row["depth"]), int(row["seed"])) == (
            summary["strategy"], summary["depth"], summary["seed"]
        )  # fmt: skip
        assert int(row["n_stages"]) == len(summary["stages"]) == summary["depth"]
    md = (out / "report.md").read_text()
    for strategy in ("freeze-all-but-new", "identity-insert"):
        for depth in (2, 3):
            accs = [read_summary(find_run(sweep, strategy, depth, s))["test_acc"] for s in (0, 1)]
            cell = mean_pm(statistics.fmean(accs), statistics.stdev(accs))
            assert f"| {strategy} | {depth} | 2 | 0,1 | {cell} |" in md
    assert "None: every run completed." in md


def test_html_is_self_contained(sweep: Path, tmp_path: Path) -> None:
    files = make_report(sweep, tmp_path)
    page = files.html.read_text()
    images = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", page)
    assert len(images) == len(PLOTS)
    assert all(base64.b64decode(data).startswith(PNG) for data in images)
    assert not re.search(r"src=['\"](?!data:)", page)  # nothing loaded from elsewhere
    assert "<table>" in page and "identity-insert" in page


def test_accuracy_vs_depth_counts_each_seed_once(sweep: Path) -> None:
    data = Sweep(collect(sweep))
    curves = {key[-1]: curve for key, curve in depth_curves(data).items()}
    for strategy in ("freeze-all-but-new", "identity-insert"):
        curve = curves[strategy]
        assert sorted(curve) == [1, 2, 3]
        # Depth 2 comes from the depth-2 runs, not again from the depth-3 runs that grew past it.
        accs = [read_summary(find_run(sweep, strategy, 2, s))["test_acc"] for s in (0, 1)]
        assert curve[2].n == 2
        assert curve[2].mean == pytest.approx(statistics.fmean(accs))
        assert curve[2].std == pytest.approx(statistics.stdev(accs))


def test_problem_runs_are_listed_never_averaged(sweep: Path, tmp_path: Path) -> None:
    broken = tmp_path / "sweep"
    shutil.copytree(sweep, broken, ignore=shutil.ignore_patterns("*.pt"))
    diverged = find_run(broken, "identity-insert", 3, 0)
    summary = read_summary(diverged)
    (diverged / "summary.json").write_text(json.dumps({**summary, "status": "diverged"}))
    failed = find_run(broken, "identity-insert", 3, 1)
    (failed / "summary.json").write_text(json.dumps({"status": "failed", "error": "Boom: x"}))
    killed = find_run(broken, "freeze-all-but-new", 2, 0)
    running = {**read_summary(killed), "status": "running"}
    (killed / "summary.json").write_text(json.dumps(running))
    never = find_run(broken, "freeze-all-but-new", 2, 1)
    (never / "summary.json").unlink()

    files = make_report(broken, tmp_path / "out")
    statuses = {row["run"]: row["status"] for row in read_csv(files.runs_csv)}
    assert statuses[diverged.name] == "diverged"
    assert statuses[failed.name] == "failed"
    assert statuses[killed.name] == statuses[never.name] == "incomplete"
    assert len(files.sweep.ok) == 4
    md = files.markdown.read_text()
    problems = md.split("## Failed, diverged or incomplete runs")[1].split("## Plots")[0]
    for run in (diverged, failed, killed, never):
        assert f"| {run.name} |" in problems
    assert "Boom: x" in problems
    results = md.split("## Final results")[1].split("##")[0]
    assert "| identity-insert | 3 |" not in results  # no completed run left in the group
    assert "| freeze-all-but-new | 2 |" not in results


def test_a_swept_config_key_splits_the_groups(sweep: Path, tmp_path: Path) -> None:
    varied = tmp_path / "sweep"
    shutil.copytree(sweep, varied, ignore=shutil.ignore_patterns("*.pt"))
    for seed in (0, 1):
        run = find_run(varied, "identity-insert", 3, seed)
        copy = run.with_name(run.name + "-lr")
        shutil.copytree(run, copy)
        cfg = OmegaConf.load(copy / ".hydra/config.yaml")
        cfg.optimizer.lr = 0.01
        OmegaConf.save(cfg, copy / ".hydra/config.yaml")
        summary = read_summary(copy)  # a different run records a different config
        summary["config"]["optimizer.lr"] = 0.01
        summary["config_fingerprint"] = fingerprint(summary["config"])
        (copy / "summary.json").write_text(json.dumps(summary))
    files = make_report(varied, tmp_path / "out")
    assert files.sweep.extra_keys == ["optimizer.lr"]
    md = files.markdown.read_text()
    assert "| strategy | optimizer.lr | depth | n |" in md
    assert "| identity-insert | 0.01 | 3 | 2 |" in md
    assert "| identity-insert | 0.001 | 3 | 2 |" in md
    assert "cfg.optimizer.lr" in read_csv(files.runs_csv)[0]


def test_wandb_report_is_built_offline(sweep: Path, tmp_path: Path) -> None:
    import wandb_workspaces.reports.v2 as wr

    report = build_report("growlab", "", "sweep", "| a |\n|---|\n| 1 |", runset_entity="")
    assert isinstance(report, wr.Report)
    (grid,) = [b for b in report.blocks if isinstance(b, wr.PanelGrid)]
    (runset,) = grid.runsets
    assert runset.groupby == ["config.strategy.name", "config.depth"]
    assert "sweep" in str(runset.filters) and "Group" in str(runset.filters)
    assert any(getattr(p, "x", None) == "depth" for p in grid.panels)

    message = publish(Sweep(collect(sweep)), sweep, tmp_path, "summary")
    assert "offline" in message
    spec = json.loads((tmp_path / SPEC_FILE).read_text())
    assert spec["project"]["name"] == "growlab"
    assert "depth/test_acc" in json.dumps(spec)


def test_command_line(sweep: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "growlab.report", str(sweep), "--out", str(tmp_path), "--wandb"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "WANDB_MODE": "offline"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "8 runs: 8 averaged" in result.stdout
    assert "W&B is offline" in result.stdout
    assert (tmp_path / SPEC_FILE).is_file() and (tmp_path / "report.html").is_file()
    missing = subprocess.run(
        [sys.executable, "-m", "growlab.report", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert missing.returncode == 2 and "does not exist" in missing.stderr
