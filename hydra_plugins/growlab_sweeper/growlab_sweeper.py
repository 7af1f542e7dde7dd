"""Hydra's basic sweeper, made safe for long sweeps.

- Before anything is written or launched, every job's config is composed and checked with
  growlab's own validation: a bad value anywhere in the sweep refuses the whole sweep (exit 2,
  one line per distinct problem naming the jobs), instead of failing after earlier jobs ran.
  With a local launcher the machine checks (GPU, dataset files) run too; a SLURM sweep's jobs
  run elsewhere, so they check those themselves.
- `runs_per_job=K` packs K runs into each launched job (one process, start-up and data loading
  paid once) with growlab's submitit launchers (`hydra/launcher=slurm` or `local`). The basic
  launcher already runs the whole sweep in this one process, so K changes nothing there.
- `stack_seeds=true` trains the jobs that differ only in `seed` together, as one stack of
  replicas in one process: growlab's launchers group the jobs into stacks
  (hydra_plugins/growlab_launcher/stacks.py), the default one here, the submitit ones one job
  (one SLURM array task) per stack. Each job keeps its own
  run directory and outputs.
- A job that fails or diverges never stops the others: growlab's task returns its status
  instead of raising, and at the end the sweep's last line says how many runs did not complete
  and the exit status is 1.

(It lives in `hydra_plugins` because Hydra only instantiates plugins from that namespace, and it
loads them without `sys.modules`, so no `from __future__ import annotations` here: dataclasses
could not resolve string annotations.)
"""

import logging
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper, BasicSweeperConf
from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobReturn, JobStatus
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

from hydra_plugins.growlab_sweeper.composition import ComposeOncePerGroupChoice
from hydra_plugins.growlab_sweeper.run_plan import batches, plan_runs, write_sweep_runs

log = logging.getLogger(__name__)

# Launchers that run every job in this process (the default is growlab's InProcessLauncher).
LOCAL_LAUNCHERS = ("BasicLauncher", "InProcessLauncher")
EXIT_REFUSED, EXIT_INCOMPLETE = 2, 1


def job_status(result: JobReturn) -> str:
    """The growlab status a job reported ("failed" when the task itself raised)."""
    if result.status is not JobStatus.COMPLETED:
        return "failed"
    value = result._return_value
    if isinstance(value, dict):
        return str(value.get("status", "failed"))
    return str(getattr(value, "status", "failed"))  # growlab's RunOutcome


class GrowlabSweeper(BasicSweeper):
    def __init__(
        self,
        max_batch_size: Any = None,
        params: Any = None,
        runs_per_job: Any = 1,
        stack_seeds: Any = False,
    ):
        super().__init__(max_batch_size=max_batch_size, params=params)
        self.runs_per_job = runs_per_job
        self.stack_seeds = stack_seeds

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        """The launcher (and every process it starts) composes each group choice once."""
        loader = ComposeOncePerGroupChoice(hydra_context.config_loader)
        context = HydraContext(config_loader=loader, callbacks=hydra_context.callbacks)  # type: ignore[arg-type]
        super().setup(hydra_context=context, task_function=task_function, config=config)

    def check_packing(self) -> None:
        """`runs_per_job` must be a positive int and the launcher able to pack (or local)."""
        k = self.runs_per_job
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            log.error("invalid configuration: hydra.sweeper.runs_per_job=%s; valid: an int >= 1", k)
            raise SystemExit(EXIT_REFUSED)
        if k == 1:
            return
        if hasattr(self.launcher, "runs_per_job"):
            self.launcher.runs_per_job = k  # type: ignore[union-attr]
        elif type(self.launcher).__name__ in LOCAL_LAUNCHERS:
            log.info("runs_per_job=%d: the basic launcher runs every job in this process anyway", k)
        else:
            log.error(
                "invalid configuration: hydra.sweeper.runs_per_job=%d needs a launcher that packs "
                "runs, got %s; valid: hydra/launcher=slurm, hydra/launcher=local, or "
                "runs_per_job=1",
                k,
                type(self.launcher).__name__,
            )
            raise SystemExit(EXIT_REFUSED)

    def check_stacking(self) -> None:
        """`stack_seeds` must be a bool, one stack per job, and the launcher able to stack."""
        if not isinstance(self.stack_seeds, bool):
            log.error(
                "invalid configuration: hydra.sweeper.stack_seeds=%s; valid: true, false",
                self.stack_seeds,
            )
            raise SystemExit(EXIT_REFUSED)
        if not self.stack_seeds:
            return
        if self.runs_per_job != 1:
            log.error(
                "invalid configuration: hydra.sweeper.runs_per_job=%s with stack_seeds=true; "
                "a stack is one job already; valid: runs_per_job=1",
                self.runs_per_job,
            )
            raise SystemExit(EXIT_REFUSED)
        if not hasattr(self.launcher, "stacks"):
            log.error(
                "invalid configuration: hydra.sweeper.stack_seeds=true needs a launcher that "
                "stacks runs, got %s; valid: hydra/launcher=in_process (the default), "
                "hydra/launcher=slurm, hydra/launcher=local",
                type(self.launcher).__name__,
            )
            raise SystemExit(EXIT_REFUSED)

    def validate_jobs(self, jobs: Sequence[Sequence[str]]) -> list[DictConfig]:
        """Compose and validate every job; refuse the sweep with every distinct problem.
        Returns the composed configs."""
        # Not at module level: Hydra imports every plugin for every app, and this pulls torch.
        from growlab.config import ConfigError
        from growlab.validated import start_sweep, validate_for_jobs

        assert self.config is not None and self.hydra_context is not None
        launcher = str(OmegaConf.select(self.config, "hydra.launcher._target_", default=""))
        local = launcher.endswith(LOCAL_LAUNCHERS)
        problems: dict[str, list[int]] = {}
        configs = list(self.compose_jobs(jobs))
        start_sweep()
        for num, cfg in enumerate(configs):
            try:
                validate_for_jobs(cfg, environment=local)
            except ConfigError as exc:
                problems.setdefault(str(exc), []).append(num)
        for message, nums in problems.items():
            shown = ", ".join(map(str, nums[:10])) + (", ..." if len(nums) > 10 else "")
            log.error("invalid configuration in job(s) %s: %s", shown, message)
        if problems:
            bad = sum(len(n) for n in problems.values())
            log.error(
                "sweep refused: %d of %d jobs are invalid; no job was started", bad, len(jobs)
            )
            raise SystemExit(EXIT_REFUSED)
        return configs

    def compose_jobs(self, jobs: Sequence[Sequence[str]]) -> Iterator[DictConfig]:
        """Each job's config as Hydra composes it, composition paid once per group choice."""
        assert self.config is not None and self.hydra_context is not None
        for overrides in jobs:
            yield self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))

    def sweep(self, arguments: list[str]) -> Any:
        assert self.config is not None and self.launcher is not None
        assert self.hydra_context is not None
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        overrides = parser.parse_overrides(self._parse_config() + list(arguments))
        self.check_packing()
        self.check_stacking()
        jobs = [job for batch in self.split_arguments(overrides, None) for job in batch]
        plan = plan_runs(jobs, self.validate_jobs(jobs), self.stack_seeds)
        for line in plan.duplicates:
            log.info("%s", line)
        for line in plan.conflicts:
            log.error("invalid configuration: %s", line)
        if plan.conflicts:
            log.error("sweep refused: runs share a run folder; no job was started")
            raise SystemExit(EXIT_REFUSED)
        self.overrides = batches(plan.jobs, self.max_batch_size)

        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        # This sweep's runs, for each run's "K of N finished" line (growlab.engine.progress):
        # the folder may hold runs of earlier sweeps too.
        write_sweep_runs(sweep_dir, plan.folders)
        returns: list[Sequence[JobReturn]] = []
        if self.stack_seeds:
            returns = self.launch_stacks(plan.jobs, plan.stacks)
        first = 0
        while not self.stack_seeds and not self.is_done():
            batch = self.get_job_batch()
            returns.append(self.launcher.launch(batch, initial_job_idx=first))
            first += len(batch)
        self.report(sweep_dir, [r for batch in returns for r in batch], len(plan.duplicates))
        return returns

    def launch_stacks(
        self, jobs: list[Sequence[str]], stacks: list[list[Sequence[str]]]
    ) -> list[Sequence[JobReturn]]:
        """Launch the jobs grouped into stacks of seeds (consecutive job numbers)."""
        sizes = [len(stack) for stack in stacks]
        log.info(
            "stack_seeds: %d jobs in %d stacks (%s runs each)",
            len(jobs),
            len(stacks),
            ",".join(map(str, sorted(set(sizes)))),
        )
        ordered = [job for stack in stacks for job in stack]
        assert self.launcher is not None
        self.launcher.stacks = sizes  # type: ignore[attr-defined]  # checked by check_stacking
        return [self.launcher.launch(ordered, initial_job_idx=0)]

    @staticmethod
    def report(sweep_dir: Path, results: list[JobReturn], duplicates: int = 0) -> None:
        counts = Counter(job_status(r) for r in results)
        incomplete = len(results) - counts["completed"]
        detail = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()) if s != "completed")
        line = f"sweep {sweep_dir}: {counts['completed']} of {len(results)} runs completed"
        if duplicates:
            line += f" ({duplicates} duplicate job(s) of these runs not run again)"
        if incomplete:
            log.error("%s; %d did not complete (%s)", line, incomplete, detail)
            raise SystemExit(EXIT_INCOMPLETE)
        log.info(line)


@dataclass
class GrowlabSweeperConf(BasicSweeperConf):
    _target_: str = "hydra_plugins.growlab_sweeper.growlab_sweeper.GrowlabSweeper"
    # Runs per launched job (one process, one SLURM array task); see the module docstring.
    runs_per_job: Any = 1
    # Train the jobs that differ only in `seed` together, as one stack (module docstring).
    stack_seeds: Any = False


ConfigStore.instance().store(
    group="hydra/sweeper", name="growlab", node=GrowlabSweeperConf, provider="growlab"
)
