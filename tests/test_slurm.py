"""Sweeps through hydra/launcher=slurm against a real one-node SLURM cluster on localhost.

scripts/test.sh (and so CI) brings the cluster up with scripts/slurm/up.sh. Without a reachable
cluster these tests fail under CI and are skipped elsewhere.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import run_in_process, sweep_runs, without_timing

from growlab.engine.run_directory.records import read_metrics

pytestmark = pytest.mark.slurm


def cluster_ready() -> bool:
    if shutil.which("sinfo") is None:
        return False
    result = subprocess.run(
        ["sinfo", "-h", "-N", "-n", "localhost", "-o", "%T"],
        capture_output=True,
        text=True,
        timeout=20,
    )
    return result.returncode == 0 and result.stdout.strip().startswith(("idle", "mix", "alloc"))


@pytest.fixture(scope="module", autouse=True)
def slurm_cluster() -> None:
    if not cluster_ready():
        message = "no local SLURM cluster: run scripts/slurm/up.sh (as root) first"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def sweep_command(sweep_dir: Path, *overrides: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "growlab",
        "-m",
        "hydra/launcher=slurm",
        "hydra.launcher.cpus_per_task=1",
        "hydra.launcher.timeout_min=10",
        f"hydra.sweep.dir={sweep_dir}",
        "logger=none",
        *overrides,
    ]


def run_sweep(sweep_dir: Path, *overrides: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": "offline"}
    return subprocess.run(
        sweep_command(sweep_dir, *overrides),
        cwd=sweep_dir.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def run_dirs(sweep_dir: Path) -> list[Path]:
    return sorted(p for p in sweep_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


def sacct_states(job_ids: list[str]) -> dict[str, str]:
    out = subprocess.run(
        ["sacct", "-n", "-X", "-P", "-o", "JobID,State", "-j", ",".join(job_ids)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    return dict(line.split("|", 1) for line in out.split())


def assert_array_tasks_completed(array_id: str, tasks: int) -> None:
    """SLURM's accounting shows the array with exactly `tasks` tasks, all completed."""
    deadline = time.time() + 30
    while time.time() < deadline:
        states = sacct_states([array_id])
        found = {k: v for k, v in states.items() if k.startswith(f"{array_id}_")}
        if len(found) == tasks and set(found.values()) == {"COMPLETED"}:
            return
        time.sleep(1)
    pytest.fail(f"sacct does not show {tasks} completed array tasks: {states}")


def test_six_job_sweep_runs_under_slurm(tmp_path) -> None:
    sweep = tmp_path / "sweep"
    result = run_sweep(
        sweep,
        "strategy=freeze-all-but-new,identity-insert,from-scratch",
        "depth=2,3",
        "train.epochs_per_stage=2",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    runs = run_dirs(sweep)
    assert len(runs) == 6
    summaries = [json.loads((r / "summary.json").read_text()) for r in runs]
    assert all(s["status"] == "completed" for s in summaries)
    job_ids = [s["slurm_job_id"] for s in summaries]
    assert all(job_ids) and len(set(job_ids)) == 6
    array_ids = {s["slurm_array_job_id"] for s in summaries}
    assert len(array_ids) == 1 and None not in array_ids
    # SLURM's own accounting knows these jobs and saw them complete.
    deadline = time.time() + 30
    while time.time() < deadline:
        states = sacct_states(job_ids)
        if all(
            states.get(f"{s['slurm_array_job_id']}_{s['slurm_array_task_id']}") == "COMPLETED"
            for s in summaries
        ):
            break
        time.sleep(1)
    else:
        pytest.fail(f"sacct does not show the jobs completed: {states}")


@pytest.mark.slow
def test_a_diverged_job_is_counted_and_the_other_results_kept(tmp_path) -> None:
    sweep = tmp_path / "sweep"
    result = run_sweep(sweep, "optimizer.lr=0.001,1e6", "depth=2", "train.epochs_per_stage=1")
    assert result.returncode == 1, result.stderr[-3000:]
    summaries = {r.name: json.loads((r / "summary.json").read_text()) for r in run_dirs(sweep)}
    assert sorted(s["status"] for s in summaries.values()) == ["completed", "diverged"]
    good = next(s for s in summaries.values() if s["status"] == "completed")
    assert good["test_acc"] > 0.5 and good["slurm_array_job_id"] is not None
    last = result.stdout.strip().splitlines()[-1]
    assert "1 of 2 runs completed" in last and "1 diverged" in last


def test_an_invalid_job_refuses_the_sweep_before_submitting(tmp_path) -> None:
    sweep = tmp_path / "sweep"
    result = run_sweep(sweep, "model=mlp", "strategy=freeze-all-but-new,conv-multiplicative")
    assert result.returncode == 2
    assert "needs model=cnn, got model=mlp" in result.stdout + result.stderr
    assert not sweep.exists()  # nothing submitted, nothing written


def wait_for_rows(metrics: Path, rows: int, timeout: float) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= rows:
            return
        time.sleep(0.2)
    raise AssertionError(f"{metrics} never reached {rows} rows")


def start_sweep(sweep: Path, *overrides: str) -> subprocess.Popen:
    env = {**os.environ, "WANDB_MODE": "offline"}
    return subprocess.Popen(
        sweep_command(sweep, *overrides),
        cwd=sweep.parent,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def requeue_with_usr2(job_id: str, victim: Path) -> float:
    """Signal the job as SLURM does before its time limit; seconds until `victim` resumed."""
    signalled = time.time()
    subprocess.run(["scancel", "--signal=USR2", job_id], check=True, timeout=30)
    while "resuming from" not in (victim / "growlab.log").read_text():
        assert time.time() - signalled < 180, f"{victim.name} was never resumed"
        time.sleep(0.2)
    return time.time() - signalled


def finish(proc: subprocess.Popen) -> None:
    output, _ = proc.communicate(timeout=400)
    assert proc.returncode == 0, output[-3000:]


def assert_resumed_to(victim: Path, reference: Path) -> None:
    """`victim` resumed once and ended exactly as the uninterrupted `reference` did."""
    resumed, expected = (json.loads((d / "summary.json").read_text()) for d in (victim, reference))
    assert resumed["status"] == "completed" and resumed["resumes"] == 1
    assert without_timing(resumed["stages"]) == without_timing(expected["stages"])
    assert without_timing(read_metrics(victim / "metrics.jsonl")) == without_timing(
        read_metrics(reference / "metrics.jsonl")
    )


@pytest.mark.slow
def test_usr2_requeues_and_resumes_to_the_uninterrupted_result(tmp_path) -> None:
    sweep = tmp_path / "sweep"
    overrides = ["data=fashion_mnist", "model.width=32", "depth=2", "train.epochs_per_stage=4"]
    # The uninterrupted reference, on one thread as in the one-CPU job (a sweep runs two
    # identical jobs once, so the reference cannot be a second job of it).
    reference = tmp_path / "reference"
    run_in_process([*overrides, "logger=none", "train.num_threads=1"], reference)
    proc = start_sweep(sweep, *overrides, "train.checkpoint_every_epochs=1")
    try:
        (victim,) = sweep_runs(sweep, timeout=120)
        wait_for_rows(victim / "metrics.jsonl", 2, timeout=120)
        waited = requeue_with_usr2(slurm_job_of(victim), victim)
        print(f"USR2 signal to resumed training: {waited:.1f}s")
        finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert_resumed_to(victim, reference)


def slurm_job_of(run_dir: Path) -> str:
    """The job id of a running run, from the growlab.log header SLURM-aware runs write."""
    for _ in range(100):
        log = run_dir / "growlab.log"
        if log.exists():
            for line in log.read_text().splitlines():
                if "slurm job " in line:
                    return line.rsplit("slurm job ", 1)[1].split()[0]
        time.sleep(0.2)
    raise AssertionError(f"no slurm job id logged in {run_dir}")


@pytest.mark.slow
def test_a_packed_sweep_runs_three_runs_in_each_array_task(tmp_path) -> None:
    sweep = tmp_path / "sweep"
    result = run_sweep(
        sweep,
        "seed=0,1,2,3,4,5",
        "depth=2",
        "train.epochs_per_stage=1",
        "hydra.sweeper.runs_per_job=3",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summaries = [json.loads((r / "summary.json").read_text()) for r in run_dirs(sweep)]
    assert len(summaries) == 6 and all(s["status"] == "completed" for s in summaries)
    by_job = {s["seed"]: s["slurm_job_id"] for s in summaries}
    assert by_job[0] == by_job[1] == by_job[2] != by_job[3] == by_job[4] == by_job[5]
    array = {s["slurm_array_job_id"] for s in summaries}
    assert len(array) == 1 and None not in array
    # SLURM's accounting: one array of exactly two tasks, both completed.
    assert_array_tasks_completed(next(iter(array)), 2)


@pytest.mark.slow
def test_a_requeued_pack_skips_its_finished_run_and_resumes_the_interrupted_one(
    tmp_path,
) -> None:
    sweep = tmp_path / "sweep"
    # One pack of two runs: the first finishes, the second is interrupted, requeued and must
    # end exactly as its uninterrupted run (made here, on one thread as in the job) does.
    overrides = ["data=fashion_mnist", "model.width=32", "depth=2", "train.epochs_per_stage=3"]
    reference = tmp_path / "reference"
    run_in_process([*overrides, "logger=none", "train.num_threads=1", "seed=1"], reference)
    proc = start_sweep(sweep, *overrides, "seed=0,1", "hydra.sweeper.runs_per_job=2")
    try:
        first, victim = sweep_runs(sweep, timeout=120)
        deadline = time.time() + 300
        while time.time() < deadline and not (victim / "metrics.jsonl").exists():
            time.sleep(0.2)
        wait_for_rows(victim / "metrics.jsonl", 2, timeout=120)
        finished = {name: (first / name).read_bytes() for name in ("summary.json", "growlab.log")}
        job_id = slurm_job_of(victim)
        assert job_id == slurm_job_of(first)  # both runs in one array task
        requeue_with_usr2(job_id, victim)
        finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    # The finished run was skipped, not run again: its files are untouched.
    assert {name: (first / name).read_bytes() for name in finished} == finished
    assert_resumed_to(victim, reference)


def test_stacked_seeds_run_one_array_task_per_stack_and_get_the_gpu_they_ask_for(
    tmp_path,
) -> None:
    sweep = tmp_path / "sweep"
    result = run_sweep(
        sweep,
        "seed=0,1,2",
        "depth=1,2",
        "train.epochs_per_stage=1",
        "hydra.sweeper.stack_seeds=true",
        # The test cluster advertises two fake GPUs (scripts/slurm/up.sh): the request is
        # scheduled and reaches the job, and device=auto falls back to the CPU, saying why.
        "hydra.launcher.gpus_per_node=1",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    runs = run_dirs(sweep)
    summaries = [json.loads((r / "summary.json").read_text()) for r in runs]
    assert len(summaries) == 6 and all(s["status"] == "completed" for s in summaries)
    stacks: dict[int, set] = {}
    for s in summaries:
        stacks.setdefault(s["depth"], set()).add((s["slurm_job_id"], s["pid"]))
        assert s["stack_size"] == 3 and s["device"] == "cpu"
        assert s["cuda_visible_devices"] not in (None, "")
    assert all(len(jobs) == 1 for jobs in stacks.values())  # one task, one process per stack
    assert stacks[1] != stacks[2]
    for run in runs:
        log = (run / "growlab.log").read_text()
        assert "device=auto: CUDA is not usable (CUDA_VISIBLE_DEVICES=" in log
    array = {s["slurm_array_job_id"] for s in summaries}
    assert len(array) == 1 and None not in array
    assert_array_tasks_completed(next(iter(array)), 2)


@pytest.mark.slow
def test_a_requeued_stack_resumes_every_replica_to_the_uninterrupted_result(tmp_path) -> None:
    from conftest import compose_cfg

    from growlab.engine.stacking.session import StackSession

    overrides = [
        "data=fashion_mnist",
        "model.width=32",
        "depth=2",
        "train.epochs_per_stage=3",
        "train.num_threads=1",  # as in the one-CPU job, so the reference computes alike
    ]
    reference = tmp_path / "reference"
    session = StackSession(2)
    for seed in (0, 1):
        cfg = compose_cfg([*overrides, "logger=none", f"seed={seed}"])
        session.join(cfg, reference / f"seed{seed}", "val_acc")

    sweep = tmp_path / "sweep"
    proc = start_sweep(sweep, *overrides, "seed=0,1", "hydra.sweeper.stack_seeds=true")
    try:
        victims = sweep_runs(sweep, timeout=120)
        deadline = time.time() + 300
        while time.time() < deadline and not all((v / "metrics.jsonl").exists() for v in victims):
            time.sleep(0.2)
        wait_for_rows(victims[1] / "metrics.jsonl", 2, timeout=120)
        requeue_with_usr2(slurm_job_of(victims[0]), victims[0])
        finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    for seed, victim in enumerate(victims):
        log = (victim / "growlab.log").read_text()
        assert log.count("training 2 runs as one stack") == 2  # before and after the requeue
        assert_resumed_to(victim, reference / f"seed{seed}")
