"""The sweeper composes a covering subset of jobs up front, and still fails before any job."""

from __future__ import annotations

from conftest import run_cli

from hydra_plugins.growlab_sweeper.growlab_sweeper import covering_subset


def test_covering_subset_holds_every_swept_value_once() -> None:
    batch = [[f"strategy={s}", f"depth={d}", f"seed={n}"]
             for s in ("a", "b") for d in (2, 4, 8) for n in (0, 1, 2)]
    chosen = covering_subset(batch)
    assert len(chosen) <= 2 + 3 + 3 < len(batch)  # at most one job per swept value
    assert {o for job in chosen for o in job} == {o for job in batch for o in job}


def test_a_bad_value_anywhere_in_the_sweep_fails_before_any_run(tmp_path) -> None:
    sweep = tmp_path / "sweep"
    result = run_cli(
        ["-m", "depth=2,3,abc", "seed=0,1", "train.epochs_per_stage=1", "logger=none",
         f"hydra.sweep.dir={sweep}"],
        cwd=tmp_path,
    )
    assert result.returncode != 0
    assert "abc" in result.stderr
    assert not any(p.is_dir() for p in sweep.glob("*"))  # no job ran
