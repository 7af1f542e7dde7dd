"""A run is its config: sweeps rerun or extended into the same folder train only what is new,
duplicates run once, the report counts each run once, and a result's identity includes the
defaults and the code of the classes its strategy names (issue 22)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CONF, REPO, compose_cfg, read_summary, run_cli, sweep_runs
from hydra import compose, initialize_config_dir

from growlab.engine.run_directory.result_identity import fingerprint, result_config
from growlab.report import make_report
from growlab.report.__main__ import main as report_main

FAST = ["-m", "debug=fast", "logger=none", "depth=2"]
EXAMPLES = REPO / "examples"


def finished_bytes(sweep: Path) -> dict[str, bytes]:
    return {p.parent.name: p.read_bytes() for p in sweep.glob("*/summary.json")}


def output(result: subprocess.CompletedProcess) -> str:
    return result.stdout + result.stderr


def test_extending_a_sweep_trains_only_the_new_seed_and_counts_distinct_runs(tmp_path) -> None:
    sweep = tmp_path / "sweep"
    first = run_cli([*FAST, "seed=0,1", f"hydra.sweep.dir={sweep}"], tmp_path)
    assert first.returncode == 0, output(first)[-3000:]
    before = finished_bytes(sweep)
    assert len(before) == 2

    extended = run_cli([*FAST, "seed=2,0,1", f"hydra.sweep.dir={sweep}"], tmp_path)
    assert extended.returncode == 0, output(extended)[-3000:]
    text = output(extended)
    assert "sweep " + str(sweep) + ": 3 of 3 runs completed" in text
    assert text.count("already holds a completed run") == 2
    after = finished_bytes(sweep)
    assert len(after) == 3  # one new folder, named by its config
    assert all(after[name] == data for name, data in before.items())  # untouched
    assert [read_summary(r)["seed"] for r in sweep_runs(sweep)] == [2, 0, 1]

    files = make_report(sweep, tmp_path / "out")
    assert sorted(r.seed for r in files.sweep.ok) == [0, 1, 2]
    assert not files.sweep.duplicates


def test_a_job_given_twice_runs_once_and_is_counted_once(tmp_path) -> None:
    sweep = tmp_path / "sweep"
    result = run_cli([*FAST, "seed=0,1,0", "depth=2", f"hydra.sweep.dir={sweep}"], tmp_path)
    assert result.returncode == 0, output(result)[-3000:]
    text = output(result)
    assert "job 2 (" in text and "is the same run as job 0" in text
    assert "2 of 2 runs completed (1 duplicate job(s)" in text
    assert len(list(sweep.glob("*/summary.json"))) == 2


@pytest.mark.parametrize("stack", ["false", "true"])
def test_different_runs_sharing_a_folder_refuse_the_sweep_before_anything(tmp_path, stack) -> None:
    sweep = tmp_path / "sweep"
    args = [*FAST, "seed=0,1", "hydra.sweep.subdir=same", f"hydra.sweeper.stack_seeds={stack}"]
    result = run_cli([*args, f"hydra.sweep.dir={sweep}"], tmp_path)
    assert result.returncode == 2
    assert "hydra.sweep.subdir names both 'same'" in output(result)
    assert "Traceback" not in output(result)
    assert not sweep.exists()


def test_the_report_counts_a_copied_run_once_and_lists_the_copy(tmp_path) -> None:
    sweep = tmp_path / "sweep"
    result = run_cli([*FAST, "strategy=identity-insert,from-scratch", "seed=0,1"]
                     + [f"hydra.sweep.dir={sweep}"], tmp_path)  # fmt: skip
    assert result.returncode == 0, output(result)[-3000:]
    runs = sweep_runs(sweep)
    shutil.copytree(runs[0], sweep / "copied-elsewhere", ignore=shutil.ignore_patterns("*.pt"))
    shutil.copytree(runs[2], sweep / "zz-copy", ignore=shutil.ignore_patterns("*.pt"))

    files = make_report(sweep, tmp_path / "out")
    assert len(files.sweep.runs) == 4
    assert {(d.run.name, d.same_as.name) for d in files.sweep.duplicates} == {
        (runs[0].name, "copied-elsewhere"),  # the first by name is kept
        ("zz-copy", runs[2].name),
    }
    for (_, depth), group in files.sweep.groups().items():
        assert sorted(r.seed for r in group) == [0, 1], depth
    report = json.loads(files.json.read_text())
    (verdict,) = [t for t in report["tables"] if t["title"].startswith("Against the baseline")]
    (row,) = verdict["rows"]
    assert row["n"] == 2 and row["unpaired_runs"] == 0
    md = files.markdown.read_text()
    assert "2 more folder(s) hold a run already counted" in md
    assert "| zz-copy | completed |" in md.split("## Duplicate runs")[1]


def test_a_summary_that_is_not_an_object_is_an_invalid_run_not_a_crash(tmp_path) -> None:
    sweep = tmp_path / "sweep"
    result = run_cli([*FAST, "seed=0,1", f"hydra.sweep.dir={sweep}"], tmp_path)
    assert result.returncode == 0, output(result)[-3000:]
    broken = sweep_runs(sweep)[0]
    (broken / "summary.json").write_text("[1, 2]")
    assert report_main([str(sweep), "--out", str(tmp_path / "out")]) == 0
    files = make_report(sweep, tmp_path / "out")
    (problem,) = files.sweep.problems
    assert problem.name == broken.name and problem.status == "invalid"
    assert "JSON list, not an object" in (problem.error or "")


def user_cfg(overrides: list[str]):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        search = f"hydra.searchpath=[file://{EXAMPLES / 'conf'}]"
        return compose(config_name="config", overrides=[search, *overrides])


def test_the_fingerprint_covers_operator_defaults_and_user_code(tmp_path, monkeypatch) -> None:
    package = tmp_path / "my_growth"
    shutil.copytree(EXAMPLES / "my_growth", package)
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in [m for m in sys.modules if m.startswith("my_growth")]:
        monkeypatch.delitem(sys.modules, name)
    # identity-insert's YAML has no alpha_init: the user's operator by `_target_` alone.
    rezero = ["strategy=identity-insert", "strategy.operator._target_=my_growth.ops.ReZeroResidual"]
    config = result_config(user_cfg(rezero))
    assert config["strategy.operator.alpha_init"] == 0.0  # a default the YAML never wrote
    assert len(config["code.my_growth.ops.ReZeroResidual"]) == 16
    given = result_config(user_cfg([*rezero, "+strategy.operator.alpha_init=0"]))
    assert fingerprint(given) == fingerprint(config)  # the default, written out: the same run
    written = result_config(user_cfg(["strategy=rezero-insert"]))  # its YAML writes it out
    assert written["strategy.operator.alpha_init"] == 0.0

    source = package / "ops.py"
    source.write_text(source.read_text().replace("block.alpha.fill_(", "block.alpha.fill_(0.5 + "))
    edited = result_config(user_cfg(rezero))
    key = "code.my_growth.ops.ReZeroResidual"
    assert edited[key] != config[key]
    assert fingerprint(edited) != fingerprint(config)

    # growlab's own classes are versioned with growlab: their defaults count, not a code hash.
    own = result_config(compose_cfg(["strategy=conv-multiplicative", "model=cnn"]))
    assert own["strategy.operator.literal_seed_init"] is False
    assert not [k for k in own if k.startswith("code.")]


def test_editing_a_user_operator_is_a_new_run_not_an_old_result(tmp_path) -> None:
    package = tmp_path / "pkg"
    shutil.copytree(EXAMPLES / "my_growth", package / "my_growth")
    path = os.pathsep.join(p for p in (str(package), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": path, "WANDB_MODE": "offline"}
    search = f"hydra.searchpath=[file://{EXAMPLES / 'conf'}]"
    run_dir = tmp_path / "run"
    args = [search, "strategy=rezero-insert", "debug=fast", "logger=none", "depth=2"]

    def run(*extra: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "growlab", *args, *extra]
        return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True)

    assert run(f"hydra.run.dir={run_dir}").returncode == 0
    summary = read_summary(run_dir)
    assert summary["operator_class"] == "my_growth.ops.ReZeroResidual"
    source = package / "my_growth" / "ops.py"
    source.write_text(source.read_text() + "\n# edited\n")

    again = run(f"hydra.run.dir={run_dir}")
    assert again.returncode == 2
    assert "code.my_growth.ops.ReZeroResidual" in output(again)
    assert "already holds" not in output(again)
    assert read_summary(run_dir) == summary
