"""Start-up and packing: what a run pays before training, and what SLURM packing saves."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from bench.common import log, run_process

# A 48-run digits sweep, each run short, so that start-up and scheduling dominate.
SLURM_GRID = [
    "strategy=freeze-all-but-new,identity-insert,from-scratch",
    "depth=2,3",
    "seed=0,1,2,3,4,5,6,7",
    "train.epochs_per_stage=1",
    "logger=none",
]


def bench_startup(rounds: int, tmp: Path) -> dict[str, Any]:
    """`python -m growlab logger=none train.epochs_per_stage=0` against `import torch`, both
    as whole processes, alternately; the best of `rounds` each (the digits cache warmed first)."""
    args = ["-m", "growlab", "logger=none", "train.epochs_per_stage=0"]
    run_process([*args, f"hydra.run.dir={tmp / 'startup_warm'}"])
    growlab_s: list[float] = []
    torch_s: list[float] = []
    for r in range(rounds):
        log(f"startup: zero-epoch run and `import torch` [{r + 1}/{rounds}]")
        growlab_s.append(run_process([*args, f"hydra.run.dir={tmp / f'startup_{r}'}"])[0])
        torch_s.append(run_process(["-c", "import torch"])[0])
    return {
        "growlab_s": min(growlab_s),
        "import_torch_s": min(torch_s),
        "ratio": min(growlab_s) / min(torch_s),
        "all_growlab_s": growlab_s,
        "all_import_torch_s": torch_s,
    }


def slurm_available() -> bool:
    if shutil.which("sinfo") is None:
        return False
    out = subprocess.run(
        ["sinfo", "-h", "-N", "-o", "%T"], capture_output=True, text=True, timeout=20
    )
    return out.returncode == 0 and out.stdout.strip().startswith(("idle", "mix"))


def _slurm_sweep(sweep_dir: Path, runs_per_job: int, grid: list[str]) -> dict[str, Any]:
    args = [
        "-m",
        "growlab",
        "-m",
        "hydra/launcher=slurm",
        "hydra.launcher.cpus_per_task=1",
        f"hydra.sweeper.runs_per_job={runs_per_job}",
        *grid,
        f"hydra.sweep.dir={sweep_dir}",
    ]
    wall, _ = run_process(args)
    summaries = [json.loads(p.read_text()) for p in sorted(sweep_dir.glob("*/summary.json"))]
    return {
        "wall_s": wall,
        "runs": len(summaries),
        "completed": sum(s["status"] == "completed" for s in summaries),
        "array_tasks": len({s["slurm_job_id"] for s in summaries}),
    }


def bench_slurm_packing(quick: bool, tmp: Path) -> dict[str, Any] | None:
    """The same sweep on the local SLURM cluster with one run per array task and with 8."""
    if not slurm_available():
        log("slurm packing: no SLURM cluster answers (scripts/slurm/up.sh); skipped")
        return None
    grid = [g for g in SLURM_GRID if not g.startswith("seed=")]
    grid.append("seed=0,1" if quick else "seed=0,1,2,3,4,5,6,7")
    results: dict[str, Any] = {"grid": grid}
    for k in (1, 8):
        log(f"slurm packing: {' '.join(grid)} with runs_per_job={k}")
        t0 = time.perf_counter()
        results[f"runs_per_job_{k}"] = _slurm_sweep(tmp / f"slurm_{k}", k, grid)
        log(f"slurm packing: runs_per_job={k} took {time.perf_counter() - t0:.1f} s")
    results["ratio"] = results["runs_per_job_8"]["wall_s"] / results["runs_per_job_1"]["wall_s"]
    return results
