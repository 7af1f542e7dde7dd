"""Hydra's submitit launchers (SLURM and local), able to pack several runs into one job.

With `hydra.sweeper.runs_per_job=K` (set by growlab's sweeper) each submitted job, one task of
a SLURM job array, runs K runs of the sweep one after the other in one process: start-up, data
loading and scheduling are paid once per K runs. Every run keeps its own directory, summary and
Hydra job number, exactly as if it had been launched alone. With K = 1 these are Hydra's own
launchers, but for what a killed job returns (below).

Requeue (time limit, preemption, `scancel --signal=USR2`): submitit asks the pack to
checkpoint, the pack hands back itself with the results of the runs it has finished, and the
requeued task skips those and starts the interrupted run again, which resumes from its
`checkpoints/last.pt`.

A job that ends without results (the OOM killer, SIGKILL, a lost node) gives each of its runs a
return read from the run's folder: completed if its summary says so, else failed. The sweep
then prints its count line and exits 1 instead of ending in submitit's traceback.

(No `from __future__ import annotations`: Hydra instantiates plugins by dataclass config.)
"""

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, filter_overrides
from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import (
    BaseSubmititLauncher,
    LocalLauncher,
    SlurmLauncher,
)
from omegaconf import OmegaConf, open_dict

from hydra_plugins.growlab_launcher.stacks import run_stack

log = logging.getLogger(__name__)

RunArgs = tuple[list[str], str, int, str, dict[type, Singleton]]


class Pack:
    """Runs of a sweep in one submitit job: one after the other, or (`stacked`) trained
    together as a stack of seeds (stacks.py)."""

    def __init__(
        self, launcher: BaseSubmititLauncher, runs: list[RunArgs], stacked: bool = False
    ) -> None:
        self.launcher = launcher
        self.runs = runs
        self.stacked = stacked
        self.finished: dict[int, JobReturn] = {}

    def __call__(self) -> list[JobReturn]:
        if self.stacked:
            return self.run_stack()
        for index, run in enumerate(self.runs):
            if index in self.finished:
                log.info("pack: job #%d finished before the requeue; skipped", run[2])
                continue
            self.finished[index] = self.launcher(*run)
        return [self.finished[i] for i in range(len(self.runs))]

    def run_stack(self) -> list[JobReturn]:
        """A requeued stack starts over as a whole: each run resumes from its `last.pt`."""
        return run_stack(
            self.launcher, len(self.runs), lambda joining: [joining(*r) for r in self.runs]
        )

    def checkpoint(self) -> Any:
        import submitit

        return submitit.helpers.DelayedSubmission(self)


class PackingLauncher(BaseSubmititLauncher):
    """A submitit launcher that submits `runs_per_job` runs per job (1: Hydra's behaviour, but
    a job killed without results is counted as a pack is)."""

    runs_per_job: int = 1
    # Sizes of consecutive stacks of seeds to train together, one job each (stack_seeds).
    stacks: list[int] | None = None

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        from growlab.cli.exit_status import run_finished, work_started

        work_started()  # the runs start in other processes
        returns = self.launch_jobs(job_overrides, initial_job_idx)
        for result in returns:  # for a sweeper that does not count them (Optuna)
            value = result._return_value if result.status is JobStatus.COMPLETED else None
            run_finished(str(getattr(value, "status", "failed")))
        return returns

    def launch_jobs(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        assert self.config is not None
        runs: list[RunArgs] = []
        for offset, overrides in enumerate(job_overrides):
            idx = initial_job_idx + offset
            log.info(f"\t#{idx} : {' '.join(filter_overrides(overrides))}")
            runs.append(
                (
                    list(overrides),
                    "hydra.sweep.dir",
                    idx,
                    f"job_id_for_{idx}",
                    Singleton.get_state(),
                )
            )
        if self.runs_per_job <= 1 and self.stacks is None:
            return self.launch_one_per_job(runs)
        if self.stacks is not None:
            packs, first = [], 0
            for size in self.stacks:
                packs.append(Pack(self, runs[first : first + size], stacked=size > 1))
                first += size
            log.info(
                "submitit '%s': %d runs in %d jobs, one per stack of seeds, sweep output dir: %s",
                self._EXECUTOR,
                len(runs),
                len(packs),
                self.config.hydra.sweep.dir,
            )
        else:
            k = self.runs_per_job
            packs = [Pack(self, runs[i : i + k]) for i in range(0, len(runs), k)]
            log.info(
                "submitit '%s': %d runs packed into %d jobs of up to %d runs, sweep output dir: %s",
                self._EXECUTOR,
                len(runs),
                len(packs),
                k,
                self.config.hydra.sweep.dir,
            )
        executor = self._executor()
        with executor.batch():
            jobs = [executor.submit(pack) for pack in packs]
        return [
            result
            for job, pack in zip(jobs, packs, strict=True)
            for result in self.results(job, pack.runs)
        ]

    def launch_one_per_job(self, runs: list[RunArgs]) -> list[JobReturn]:
        """Hydra's own launch (the launcher itself runs each job), with `results`' recovery."""
        assert self.config is not None
        executor = self._executor()
        log.info(f"Submitit '{self._EXECUTOR}' sweep output dir : {self.config.hydra.sweep.dir}")
        jobs = executor.map_array(self, *zip(*runs, strict=True))
        pairs = zip(jobs, runs, strict=True)
        return [result for job, run in pairs for result in self.results(job, [run])]

    def results(self, job: Any, runs: list[RunArgs]) -> list[JobReturn]:
        """The job's returns, or for a job that ended without them, each run's from its folder."""
        from submitit.core.utils import FailedJobError, UncompletedJobError

        try:
            returned = job.results()[0]
        except (UncompletedJobError, FailedJobError) as exc:
            reason = " ".join(str(exc).strip().splitlines()[:2])
            log.error(
                "job %s ended without results (%s); its %d run(s) are counted from their folders",
                job.job_id,
                reason,
                len(runs),
            )
            return [self.recovered_return(run, exc) for run in runs]
        return returned if isinstance(returned, list) else [returned]  # a pack's, or one run's

    def recovered_return(self, run: RunArgs, error: Exception) -> JobReturn:
        """A run's return from its folder: completed if its summary says so, else failed."""
        from growlab.engine.outcome import outcome

        assert self.config is not None and self.hydra_context is not None
        overrides, dir_key, num = run[0], run[1], run[2]
        cfg = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
        with open_dict(cfg.hydra.job):
            cfg.hydra.job.num = num
        run_dir = Path(str(OmegaConf.select(cfg, dir_key))) / str(cfg.hydra.sweep.subdir)
        try:
            summary = json.loads((run_dir / "summary.json").read_text())
        except (OSError, ValueError):
            summary = None
        if isinstance(summary, dict) and summary.get("status") == "completed":
            value = outcome(summary, str(cfg.return_metric), str(run_dir))
            return JobReturn(overrides=overrides, status=JobStatus.COMPLETED, _return_value=value)
        return JobReturn(overrides=overrides, status=JobStatus.FAILED, _return_value=error)

    def _executor(self) -> Any:
        """submitit's executor with the launcher's parameters, as Hydra's `launch` builds it."""
        import submitit

        assert self.config is not None
        init_keys = {"submitit_folder", "max_num_timeout"}
        init = {"folder": self.params["submitit_folder"]}
        if "max_num_timeout" in self.params:
            init[f"{self._EXECUTOR}_max_num_timeout"] = self.params["max_num_timeout"]
        executor = submitit.AutoExecutor(cluster=self._EXECUTOR, **init)
        base = set(OmegaConf.structured(BaseQueueConf).keys())
        executor.update_parameters(
            **{
                key if key in base else f"{self._EXECUTOR}_{key}": value
                for key, value in self.params.items()
                if key not in init_keys
            }
        )
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        if "mode" in self.config.hydra.sweep:
            os.chmod(sweep_dir, mode=int(str(self.config.hydra.sweep.mode), 8))
        return executor


class PackingSlurmLauncher(PackingLauncher, SlurmLauncher):
    pass


class PackingLocalLauncher(PackingLauncher, LocalLauncher):
    pass
