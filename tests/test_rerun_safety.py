"""A rerun never destroys a result: a finished run is left exactly as it was, a changed config
is refused with the keys that differ, damage is named, and two processes never share a run."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import mark_interrupted, read_summary, run_cli

from growlab.engine.run_directory.folder import RunDirLock
from growlab.engine.run_directory.records import write_summary

BASE = ["train.epochs_per_stage=2", "depth=3", "logger=none"]
AE = [
    "strategy=greedy-autoencoder",
    "data=blobs",
    "depth=2",
    "train.epochs_per_stage=2",
    "strategy.objective.classifier_epochs=2",
    "logger=none",
]


def snapshot(run_dir: Path) -> dict[str, tuple[bytes, int]]:
    """Every file's bytes and mtime: a rerun that "changes nothing" keeps all of them."""
    return {
        str(p.relative_to(run_dir)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(run_dir.rglob("*"))
        if p.is_file() and p.name not in ("growlab.log", ".growlab.lock")
    }


def grow(run_dir: Path, *overrides: str, base: list[str] = BASE):
    return run_cli([*base, *overrides, f"hydra.run.dir={run_dir}"], cwd=run_dir.parent)


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("finished") / "run"
    result = grow(run_dir)
    assert result.returncode == 0, result.stderr[-2000:]
    return run_dir


@pytest.fixture
def copy_of(finished: Path, tmp_path: Path) -> Path:
    run_dir = tmp_path / "run"
    shutil.copytree(finished, run_dir)
    return run_dir


def test_rerun_of_a_completed_run_changes_nothing(copy_of: Path) -> None:
    before = snapshot(copy_of)
    result = grow(copy_of)
    assert result.returncode == 0
    assert "already holds a completed run" in result.stdout
    assert snapshot(copy_of) == before


def test_rerun_with_another_config_is_refused_naming_the_keys(copy_of: Path) -> None:
    before = snapshot(copy_of)
    result = grow(copy_of, "model.width=32", "depth=6", "seed=7")
    assert result.returncode == 2
    assert "model.width: 64 -> 32" in result.stdout
    assert "depth: 3 -> 6" in result.stdout and "seed: 0 -> 7" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    assert snapshot(copy_of) == before  # .hydra/config.yaml included


def test_keys_that_do_not_change_the_result_may_differ(copy_of: Path) -> None:
    result = grow(copy_of, "train.num_threads=1", "train.checkpoint_every_epochs=0")
    assert result.returncode == 0 and "already holds a completed run" in result.stdout


@pytest.mark.slow
def test_rerun_of_a_completed_autoencoder_run_changes_nothing(tmp_path) -> None:
    run_dir = tmp_path / "ae"
    assert grow(run_dir, base=AE).returncode == 0
    before = snapshot(run_dir)
    result = grow(run_dir, base=AE)
    assert result.returncode == 0, result.stdout[-2000:]
    assert snapshot(run_dir) == before
    assert read_summary(run_dir)["status"] == "completed"


def test_a_completed_run_with_a_damaged_last_checkpoint_stays_completed(copy_of: Path) -> None:
    last = copy_of / "checkpoints" / "last.pt"
    last.write_bytes(last.read_bytes()[:100])
    before = snapshot(copy_of)
    result = grow(copy_of)
    assert result.returncode == 0
    assert snapshot(copy_of) == before


@pytest.mark.parametrize(
    ("damage", "named"),
    [
        (lambda d: (d / "checkpoints/last.pt").write_bytes(b"\x00" * 64), "checkpoints/last.pt"),
        (
            lambda d: (d / "metrics.jsonl").write_text(
                "".join((d / "metrics.jsonl").read_text().splitlines(True)[:3])
            ),
            "metrics.jsonl",
        ),
        (lambda d: (d / "metrics.jsonl").write_text("{not json\n" * 40), "metrics.jsonl"),
        (lambda d: (d / "checkpoints/stage_01.pt").write_bytes(b"PK\x03"), "stage_01.pt"),
        (lambda d: (d / "summary.json").write_text('{"status": "runn'), "summary.json"),
    ],
    ids=["last.pt", "truncated-metrics", "garbled-metrics", "stage-checkpoint", "summary"],
)
def test_damage_is_named_once_and_the_summary_kept(copy_of: Path, damage, named) -> None:
    mark_interrupted(copy_of)
    damage(copy_of)
    before = snapshot(copy_of)
    result = grow(copy_of)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output[-2000:]
    errors = [line for line in output.splitlines() if "ERROR" in line]
    assert len(errors) == 1 and named in errors[0] and "resume=restart" in errors[0]
    assert "Traceback" not in output
    assert snapshot(copy_of) == before


def test_resume_restart_discards_damage_and_runs_again(copy_of: Path) -> None:
    mark_interrupted(copy_of)
    (copy_of / "checkpoints" / "last.pt").write_bytes(b"junk")
    result = grow(copy_of, "resume=restart")
    assert result.returncode == 0, result.stdout[-2000:]
    summary = read_summary(copy_of)
    assert summary["status"] == "completed" and summary["resumes"] == 0
    assert len(summary["stages"]) == 3


def test_a_second_process_in_the_same_directory_is_refused(copy_of: Path) -> None:
    mark_interrupted(copy_of)
    before = snapshot(copy_of)
    with RunDirLock(copy_of):  # another growlab process holds the run
        result = grow(copy_of)
    assert result.returncode == 2
    assert "another growlab process is running" in result.stdout
    assert snapshot(copy_of) == before


def test_no_write_turns_a_completed_summary_into_anything_else(tmp_path) -> None:
    path = tmp_path / "summary.json"
    write_summary(path, {"status": "completed", "test_acc": 0.9})
    assert not write_summary(path, {"status": "failed", "error": "boom"})
    assert read_summary(tmp_path) == {"status": "completed", "test_acc": 0.9}
    assert write_summary(path, {"status": "completed", "test_acc": 0.8})


def test_outputs_honour_the_umask(finished: Path) -> None:
    """The run was made under the test process's umask (022 by default: 0644 files)."""
    import os

    mask = os.umask(0)
    os.umask(mask)
    expected = 0o666 & ~mask
    for path in [
        finished / "summary.json",
        finished / "metrics.jsonl",
        *(finished / "checkpoints").glob("*.pt"),
    ]:
        assert path.stat().st_mode & 0o777 == expected, path
